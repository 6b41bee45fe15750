"""The fast paths equal the reference bit for bit: parameters AND every state buffer.

``fused=True`` (each optimizer's per-tensor update compiled by Inductor, see
:mod:`msoptim.kernels._fused`) is compared with the reference loop on mixed shapes: 0-d, one
element, non-contiguous (transposed, channels-last), a gradient whose layout differs from its
parameter's (the eager fallback inside the fused path), float64, and tensors above
``PARALLEL_MIN_NUMEL`` (the multi-threaded build of a kernel); with parameter groups on a
dynamic-lr table, a schedule and static lrs, weight decay and a loss scale.

Compile budget (2 CI cores): compiled kernels are shared by every test of the session (a
process-wide cache keyed by the update function and its constants), shapes are small, and each
optimizer is exercised with few distinct constant sets. The threaded build of every kernel is
covered by a ``slow`` test; the default run compiles it for three representative updates.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import msoptim
from msoptim.kernels import _fused, _norms, adam, adam_weight_decay, lamb
from msoptim.kernels import lars as lars_kernels
from msoptim.kernels import momentum as momentum_kernels
from msoptim.kernels import sgd as sgd_kernels

ROOT = Path(__file__).resolve().parents[1]
STEPS = 3
TABLE = msoptim.cosine_decay_lr(0.01, 0.1, total_step=6, step_per_epoch=2, decay_epoch=3)

#: (optimizer, constructor kwargs, takes group lrs and dynamic lrs). One compile per entry.
CASES = [
    ("Momentum", {"learning_rate": 0.1, "momentum": 0.9}, True),
    (
        "Momentum",
        {"learning_rate": 0.1, "momentum": 0.9, "use_nesterov": True, "loss_scale": 8.0},
        True,
    ),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "dampening": 0.1}, True),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, True),
    ("RMSProp", {"learning_rate": 0.01, "momentum": 0.9}, True),
    ("RMSProp", {"learning_rate": 0.01, "momentum": 0.5, "centered": True}, True),
    ("Adagrad", {"learning_rate": 0.1}, True),
    ("ProximalAdagrad", {"learning_rate": 0.1, "l1": 0.01, "l2": 0.02}, True),
    ("Adadelta", {"learning_rate": 1.0}, True),
    ("FTRL", {"learning_rate": 0.1, "l1": 0.01, "l2": 0.02}, False),
    ("FTRL", {"learning_rate": 0.1, "lr_power": -0.3}, False),
    ("ASGD", {"learning_rate": 0.1, "t0": 1.0}, True),
    ("Rprop", {"learning_rate": 0.1}, True),
    ("Adam", {"learning_rate": 0.01}, True),
    ("Adam", {"learning_rate": 0.01, "use_nesterov": True, "weight_decay": 0.01}, True),
    ("LazyAdam", {"learning_rate": 0.01}, True),
    ("AdamWeightDecay", {"learning_rate": 0.01, "weight_decay": 0.01}, True),
    ("AdaMax", {"learning_rate": 0.01}, True),
    ("Lamb", {"learning_rate": 0.01, "weight_decay": 0.01}, True),
    ("Lamb", {"learning_rate": 0.01}, False),
]
IDS = [
    f"{name}-{'-'.join(k for k in kwargs if k != 'learning_rate') or 'plain'}"
    for name, kwargs, _ in CASES
]


def rand(generator: torch.Generator, *shape: int, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=dtype)


def mixed_params(seed: int = 0, *, large: int = 0) -> list[tuple[str, nn.Parameter]]:
    """0-d, 1 element, transposed, channels-last, plain, gamma (no weight decay), float64."""
    g = torch.Generator().manual_seed(seed)
    params = [
        ("scalar.weight", rand(g)),
        ("one.bias", rand(g, 1)),
        ("transposed.weight", rand(g, 6, 5).t()),
        ("conv.weight", rand(g, 4, 8, 3, 3).to(memory_format=torch.channels_last)),
        ("fc.weight", rand(g, 33, 7)),
        ("bn.gamma", 1 + 0.1 * rand(g, 7)),
        ("odd.weight", rand(g, 3, 5).t()),  # its gradient is contiguous: layouts differ
        ("double.weight", rand(g, 9, dtype=torch.float64)),
    ]
    if large:
        params.append(("large.weight", rand(g, large)))
    return [(name, nn.Parameter(value)) for name, value in params]


def gradients(params, step: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(100 + step)
    grads = []
    for name, param in params:
        # A few exact zeros and sign flips, so Rprop/FTRL/ProximalAdagrad branches all run.
        value = 0.5 * torch.randn(param.shape, generator=g, dtype=param.dtype)
        value = torch.where(value.abs() < 0.05, torch.zeros_like(value), value)
        if name == "odd.weight":
            grads.append(value.contiguous())
        else:
            grads.append(torch.empty_like(param).copy_(value))
    return tuple(grads)


def grouped(params, kwargs: dict, dynamic: bool) -> list[dict]:
    """Three groups: a dynamic-lr table, a schedule with weight decay, the default lr."""
    if not dynamic:
        return [{"params": params[:4], "weight_decay": 0.01}, {"params": params[4:]}]
    lr = kwargs.get("learning_rate", 0.1)
    return [
        {"params": params[:3], "lr": [lr * f for f in TABLE]},
        {
            "params": params[3:6],
            "lr": msoptim.CosineDecayLR(0.1 * lr, lr, 4),
            "weight_decay": 0.01,
        },
        {"params": params[6:]},
    ]


def build(name: str, kwargs: dict, dynamic: bool, params, **impl) -> msoptim.Optimizer:
    return getattr(msoptim, name)(grouped(params, kwargs, dynamic), **kwargs, **impl)


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """The raw bits of a tensor (torch.equal treats -0.0 == 0.0 and NaN != NaN)."""
    tensor = tensor.detach()
    if not tensor.is_floating_point():
        return tensor
    view = {2: torch.int16, 4: torch.int32, 8: torch.int64}[tensor.element_size()]
    return tensor.contiguous().view(view)


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bits where finite or infinite, NaN at the same places (a NaN's sign and payload
    depend on which operand an instruction propagates)."""
    nan = torch.isnan(a)
    return torch.equal(nan, torch.isnan(b)) and torch.equal(bits(a[~nan]), bits(b[~nan]))


def assert_identical(params_a, params_b, opt_a, opt_b, step: int) -> None:
    """Report the first diverging parameter or state buffer at this step."""
    for (name, a), (_, b) in zip(params_a, params_b):
        assert torch.equal(bits(a), bits(b)), f"step {step}: parameter {name} differs"
        assert a.stride() == b.stride(), f"step {step}: parameter {name} changed layout"
    state_a, state_b = opt_a.ms_state_dict(), opt_b.ms_state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(bits(state_a[key]), bits(state_b[key])), f"step {step}: {key} differs"


def run_pair(name: str, kwargs: dict, dynamic: bool, *, large: int = 0) -> None:
    params_a, params_b = mixed_params(large=large), mixed_params(large=large)
    reference = build(name, kwargs, dynamic, params_a, foreach=False)
    fused = build(name, kwargs, dynamic, params_b, fused=True)
    for step in range(STEPS):
        grads = gradients(params_a, step)
        reference(grads)
        fused(tuple(g.clone() for g in grads))
        assert_identical(params_a, params_b, reference, fused, step)


@pytest.fixture
def serial_only(monkeypatch):
    """Every tensor on the single-threaded build: one compile per kernel in the default run."""
    monkeypatch.setattr(_fused, "PARALLEL_MIN_NUMEL", 1 << 40)


@pytest.mark.parametrize(("name", "kwargs", "dynamic"), CASES, ids=IDS)
def test_fused_matches_reference(serial_only, name, kwargs, dynamic):
    run_pair(name, kwargs, dynamic)


@pytest.mark.parametrize(
    ("name", "kwargs", "dynamic"),
    [CASES[0], CASES[5], CASES[9], CASES[10]],
    ids=[IDS[0], IDS[5], IDS[9], IDS[10]],
)
def test_threaded_kernel_matches_reference(name, kwargs, dynamic):
    """Above PARALLEL_MIN_NUMEL the OpenMP build runs; same bits (square roots, powers)."""
    run_pair(name, kwargs, dynamic, large=_fused.PARALLEL_MIN_NUMEL + 1000)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kwargs", "dynamic"), CASES, ids=IDS)
def test_threaded_kernel_matches_reference_everywhere(name, kwargs, dynamic):
    run_pair(name, kwargs, dynamic, large=_fused.PARALLEL_MIN_NUMEL + 1000)


def test_fused_path_runs_compiled_kernels_directly(serial_only):
    """After the first call a kernel runs without dynamo (its speed depends on it)."""
    run_pair(*CASES[0])
    kernels = [k for k in _fused._KERNELS.values() if k.name == "momentum_update"]
    assert kernels
    assert all(k._raw is not None for k in kernels), "the compiled kernel was not captured"


@pytest.fixture
def compiled_paths(monkeypatch):
    """``fused=True``'s compiled kernels (CUDA's, and CPU's without a C compiler) instead of the C
    kernels it takes first on CPU: Lamb's two passes, Adam's, AdamWeightDecay's, Momentum's and
    SGD's one (``tests/test_lamb_native.py``, ``tests/test_adam_native.py``,
    ``tests/test_adam_weight_decay_native.py``, ``tests/test_momentum_native.py``,
    ``tests/test_sgd_native.py``)."""
    for module in (adam, adam_weight_decay, lamb, momentum_kernels, sgd_kernels):
        monkeypatch.setattr(
            module, "_step_native", lambda lists, *flags, **options: list(range(len(lists[0])))
        )


def test_lamb_sums_its_norms_inside_the_direct_kernel(serial_only, compiled_paths):
    """Lamb's compiled first pass writes its float64 sums of squares from the C++ kernel itself
    (the buffer Inductor allocates for the reduction is kept), and a step plan is kept for it."""
    g = torch.Generator().manual_seed(4)
    shapes = [(40, 3), (7,), (1,), (5, 5)]
    params_a = [(f"p{i}.weight", nn.Parameter(rand(g, *s))) for i, s in enumerate(shapes)]
    params_b = [(n, nn.Parameter(p.detach().clone())) for n, p in params_a]
    reference = msoptim.Lamb(params_a, learning_rate=0.01, weight_decay=0.01, foreach=False)
    fused = msoptim.Lamb(params_b, learning_rate=0.01, weight_decay=0.01, fused=True)
    for step in range(3):  # the third step runs from the kept plan
        grads = gradients(params_a, step)
        reference(grads)
        fused(tuple(x.clone() for x in grads))
        assert_identical(params_a, params_b, reference, fused, step)
    kernels = [k for k in _fused._KERNELS.values() if k.name == "lamb_moments_update"]
    assert kernels
    assert all(k.direct is not None for k in kernels)
    assert all(k.mutated == (2, 3, 4, 5) for k in kernels)  # m, v and both sums
    assert any(key[0] is lamb.lamb_moments_update for key in _fused._PLANS)


@pytest.mark.parametrize("dynamic", [False, True])
def test_lamb_cuda_form_matches_reference_on_cpu(serial_only, monkeypatch, compiled_paths, dynamic):
    """The first pass CUDA uses (``g_hat`` written, multi-tensor float64 norms), run on CPU."""
    monkeypatch.setattr(lamb, "_moments_and_square_sums", lamb._moments_and_g_hat_norms)
    run_pair("Lamb", {"learning_rate": 0.01, "weight_decay": 0.01}, dynamic)
    assert any(k.name == "lamb_g_hat_update" for k in _fused._KERNELS.values())


def test_the_norms_are_the_float64_norm_rounded_once():
    """Lamb's and LARS's norms: any summation order gives the same float32 norm, the float64
    value rounded once."""
    x = torch.randn(300_001, generator=torch.Generator().manual_seed(5))
    expected = np.float32(np.linalg.norm(x.double().numpy()))
    assert _norms.tensor_norm(x).item() == expected
    shuffled = x[torch.randperm(x.numel(), generator=torch.Generator().manual_seed(6))]
    assert _norms.tensor_norm(shuffled).item() == expected
    total = torch.zeros(1, dtype=torch.float64)
    chunks = torch.zeros(1, dtype=torch.float64)
    for piece in x.split(4097):
        chunks += _norms.square_sum(piece)
    total += _norms.square_sum(x)
    assert torch.sqrt(chunks).float().item() == torch.sqrt(total).float().item() == expected


def test_half_precision_falls_back_to_the_reference_arithmetic(serial_only):
    g = torch.Generator().manual_seed(3)
    a = nn.Parameter(rand(g, 40).to(torch.bfloat16))
    b = nn.Parameter(a.detach().clone())
    reference = msoptim.Momentum([a], 0.1, 0.9, foreach=False)
    fused = msoptim.Momentum([b], 0.1, 0.9, fused=True)
    for step in range(STEPS):
        grad = rand(torch.Generator().manual_seed(step), 40).to(torch.bfloat16)
        reference((grad,))
        fused((grad.clone(),))
        assert torch.equal(bits(a), bits(b))


def test_fused_bumps_version_counters(serial_only):
    """Autograd must still see the in-place update (a saved parameter modified by a step)."""
    params = mixed_params()
    opt = msoptim.Momentum(params, 0.1, 0.9, fused=True)
    opt(gradients(params, 0))  # compiles
    weight = params[4][1]
    before = weight._version
    opt(gradients(params, 1))
    assert weight._version > before


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"foreach": True, "fused": True}, ValueError, r"'foreach' and 'fused' cannot both"),
        ({"fused": "yes"}, TypeError, r"'fused' must be None, True or False"),
        ({"foreach": 1}, TypeError, r"'foreach' must be None, True or False"),
    ],
)
def test_bad_impl_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        msoptim.Momentum(mixed_params(), 0.1, 0.9, **kwargs)


def test_checkpoint_without_fused_key_still_loads():
    """Checkpoints saved before the ``fused`` option existed load (``group.get``)."""
    params = mixed_params()
    opt = msoptim.Momentum(params, 0.1, 0.9)
    state = opt.state_dict()
    for group in state["param_groups"]:
        del group["fused"]
    fresh = msoptim.Momentum(mixed_params(), 0.1, 0.9)
    fresh.load_state_dict(state)
    fresh(gradients(params, 0))
    assert all(math.isfinite(float(p.detach().sum())) for _, p in params)


def test_bench_quick_smoke():
    """``python -m bench --quick`` runs end to end (so the benchmark cannot rot)."""
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--optimizers", "Momentum,Adagrad"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "Momentum" in result.stdout
    assert "GB/s" in result.stdout


def _length_dependent(param: torch.Tensor, grad: torch.Tensor, lr: torch.Tensor) -> None:
    # A branch on the length: the compiled graph carries a guard on it.
    if param.numel() % 2:
        param.add_(grad * lr)
    else:
        param.sub_(grad * lr)


def test_a_graph_with_shape_guards_is_never_called_past_its_guards(serial_only):
    """Calling a compiled kernel directly skips dynamo's guards: allowed only without any."""
    lr = torch.tensor(0.5)
    params = [torch.ones(4), torch.ones(5), torch.ones(6), torch.ones(7)]
    grads = [torch.ones_like(p) for p in params]
    _fused.fused_apply(_length_dependent, (params, grads), (lr,))
    assert [p[0].item() for p in params] == [0.5, 1.5, 0.5, 1.5]
    kernel = next(k for k in _fused._KERNELS.values() if k.name == "_length_dependent")
    assert kernel._shape_guards
    assert kernel.direct is None


def _fma_update(out: torch.Tensor, a: torch.Tensor, c: torch.Tensor, b: torch.Tensor) -> None:
    from msoptim.kernels.adam import fused_multiply_add

    out.copy_(fused_multiply_add(a, b, c))


def test_compiled_fma_is_the_exact_fused_multiply_add(serial_only):
    """In a compiled kernel MindSpore's fused multiply-adds are one hardware FMA (msoptim::fma):
    the same bits as the eager float64 emulation, at ties, in the subnormal range, at overflow."""
    from msoptim.kernels.adam import fused_multiply_add

    g = torch.Generator().manual_seed(5)
    n = 4096
    scale = torch.exp2(torch.randint(-30, 30, (n,), generator=g).float())
    tie = (1 - 2**-23) * 2**-24
    cases = {
        "random": (torch.randn(n, generator=g), torch.randn(n, generator=g)),
        "near ties": (
            torch.randn(n, generator=g) * scale / 2**24,
            torch.randn(n, generator=g) * scale,
        ),
        "exact ties": (torch.full((64,), tie), torch.full((64,), 1 + 2**-23)),
        "subnormal": (torch.randn(n, generator=g) * 1e-20, torch.randn(n, generator=g) * 1e-38),
        "overflow": (
            torch.tensor([3e38, -3e38, 1e38, 0.0, -0.0]),
            torch.tensor([3e38, -3e38, 1.0, -0.0, 0.0]),
        ),
    }
    for name, (a, c) in cases.items():
        for b in (torch.tensor(1 + 2**-23), torch.tensor(0.1), torch.tensor(2.0)):
            out = torch.empty_like(a)
            _fused.fused_apply(_fma_update, ([out], [a], [c]), (b,))
            expected = fused_multiply_add(a, b.expand_as(a).contiguous(), c)
            assert torch.equal(bits(out), bits(expected)), name
    kernel = next(k for k in _fused._KERNELS.values() if k.name == "_fma_update")
    assert kernel.direct is not None


LARS_CASES = {
    "default": ({}, {}),
    "clip": ({"use_clip": True, "coefficient": 0.01}, {}),
    "nesterov": ({}, {"use_nesterov": True}),
    "loss-scale": ({}, {"loss_scale": 8.0}),
    "groups": ({"coefficient": 0.01}, {"groups": True}),
}


@pytest.mark.parametrize("plain", [False, True], ids=["mixed-layouts", "plain"])
@pytest.mark.parametrize("case", LARS_CASES)
def test_lars_over_a_fused_momentum_matches_the_reference(serial_only, monkeypatch, plain, case):
    """LARS's fast rescaling and its inner optimizer's kernels: the reference's bits. Around
    plain float32 parameters without a loss scale, the rescaling runs inside Momentum's update
    (the C kernel; its compiled form without a compiler: ``tests/test_lars_native.py``)."""
    lars_kwargs, inner_kwargs = LARS_CASES[case]
    modes = []
    native_step = lars_kernels._native_step
    monkeypatch.setattr(
        lars_kernels,
        "_native_step",
        lambda mode, *a, **k: (modes.append(mode), native_step(mode, *a, **k)),
    )
    make = plain_params if plain else mixed_params
    params_a, params_b = make(), make()

    def inner(params, **impl):
        if inner_kwargs.get("groups"):  # a table, a schedule with weight decay, the rest
            return msoptim.Momentum(grouped(params, {}, True), 0.1, 0.9, **impl)
        return msoptim.Momentum(params, 0.1, 0.9, weight_decay=0.01, **inner_kwargs, **impl)

    _fused.clear_cache()
    reference = msoptim.LARS(inner(params_a, foreach=False), **lars_kwargs)
    fused = msoptim.LARS(inner(params_b, fused=True), **lars_kwargs)  # fused follows the inner
    assert fused._fused_rescaling()
    assert not reference._fused_rescaling()
    for step in range(STEPS + 1):
        scale = reference.loss_scale
        grads = tuple(g * scale for g in gradients(params_a, step))
        grads = tuple(g.contiguous() if plain else g for g in grads)
        reference(grads)
        fused(tuple(g.clone() for g in grads))
        assert_identical(params_a, params_b, reference, fused, step)
    inside = lars_kernels._MODE_MOMENTUM in modes
    if lars_kernels._load_native() is None:
        inside = any(k.name == "lars_momentum_update" for k in _fused._KERNELS.values())
    assert inside == (plain and case != "loss-scale")


# ------------------------------------------------------------------ step plans (the fast loop)


def plain_params(seed: int = 0) -> list[tuple[str, nn.Parameter]]:
    """Contiguous float32 parameters (and a 0-d and a 1-element one): a plan is kept for them."""
    g = torch.Generator().manual_seed(seed)
    params = [
        ("scalar.weight", rand(g)),
        ("fc.weight", rand(g, 33, 7)),
        ("one.bias", rand(g, 1)),
        ("conv.weight", rand(g, 4, 8, 3, 3)),
        ("bn.gamma", 1 + 0.1 * rand(g, 7)),
        ("fc2.weight", rand(g, 5, 6)),
        ("fc2.bias", rand(g, 5)),
        ("head.weight", rand(g, 3, 11)),
    ]
    return [(name, nn.Parameter(value)) for name, value in params]


@pytest.fixture
def plan_runs(monkeypatch, compiled_paths):
    """Counts the steps served by a kept plan (of the compiled kernels, not the C ones)."""
    calls = []
    run = _fused._Plan.run

    def counted(self, *args, **kwargs):
        calls.append(self)
        return run(self, *args, **kwargs)

    monkeypatch.setattr(_fused._Plan, "run", counted)
    return calls


def run_plain_pair(name, kwargs, dynamic, steps, *, change=None):
    """Reference and fused over plain parameters; ``change(step, params, opt)`` edits both."""
    params_a, params_b = plain_params(), plain_params()
    reference = build(name, kwargs, dynamic, params_a, foreach=False)
    fused = build(name, kwargs, dynamic, params_b, fused=True)
    for step in range(steps):
        if change is not None:
            change(step, params_a, reference)
            change(step, params_b, fused)
        grads = tuple(g.contiguous() for g in gradients(params_a, step))
        reference(grads)
        fused(tuple(g.clone() for g in grads))
        assert_identical(params_a, params_b, reference, fused, step)
    return params_b, fused


@pytest.mark.parametrize(("name", "kwargs", "dynamic"), CASES, ids=IDS)
def test_a_kept_plan_runs_the_same_arithmetic(
    serial_only, plan_runs, compiled_paths, name, kwargs, dynamic
):
    """From the second step on the plan serves every group, with the reference's bits."""
    run_plain_pair(name, kwargs, dynamic, steps=4)
    assert len(plan_runs) >= 2, "no step was served by a kept plan"


def test_a_plan_never_serves_a_changed_layout(serial_only, plan_runs):
    """``p.data = <other layout>`` keeps the tensor object: the plan re-checks parameters."""

    def transpose(step, params, opt):
        if step == 2:
            weight = params[5][1]
            weight.data = weight.data.t().contiguous().t()  # same shape, not contiguous

    params, _ = run_plain_pair(*CASES[0], steps=4, change=transpose)
    assert not params[5][1].is_contiguous()
    assert plan_runs, "the plan was never used before the change"


def test_a_replaced_state_buffer_is_the_one_updated(serial_only, plan_runs):
    def replace(step, params, opt):
        if step == 2:
            weight = params[1][1]
            # Same shape, another layout: the plan must not hand its memory to the kernel.
            opt.state[weight]["moments"] = opt.state[weight]["moments"].t().contiguous().t()

    params, fused = run_plain_pair(*CASES[0], steps=4, change=replace)
    replaced = fused.state[params[1][1]]["moments"]
    assert not replaced.is_contiguous()
    assert replaced.abs().sum() > 0


def test_a_missing_or_strided_gradient_leaves_the_plan(serial_only, plan_runs):
    params_a, params_b = plain_params(), plain_params()
    reference = msoptim.Momentum(params_a, 0.1, 0.9, foreach=False)
    fused = msoptim.Momentum(params_b, 0.1, 0.9, fused=True)
    for step in range(6):
        grads = list(gradients(params_a, step))
        if step == 3:
            grads[1] = grads[1].t().contiguous().t()  # a non-contiguous gradient
        if step == 5:
            grads[3] = None  # conv.weight skips a step
        reference(tuple(grads))
        fused(tuple(None if g is None else g.clone() for g in grads))
        assert_identical(params_a, params_b, reference, fused, step)
    assert len(plan_runs) >= 2


def test_a_plan_holds_no_tensor_alive(serial_only, compiled_paths):
    import gc
    import weakref

    params = plain_params()
    opt = msoptim.Momentum(params, 0.1, 0.9, fused=True)
    for step in range(3):
        opt(gradients(params, step))
    alive = weakref.ref(params[1][1])
    state = weakref.ref(opt.state[params[1][1]]["moments"])
    del opt, params
    gc.collect()
    assert alive() is None
    assert state() is None


def test_float32_square_root_is_the_rounded_float64_half_power():
    """FTRL's compiled kernel takes ``x ** 0.5`` as one float32 square root (see ftrl._power)."""
    import numpy as np

    g = np.random.default_rng(0)
    patterns = g.integers(0, 0x7F800000, size=1 << 21, dtype=np.uint32)  # every finite x >= 0
    x = patterns.view(np.float32)
    rounded_power = torch.pow(torch.from_numpy(x).double(), 0.5).float().numpy()
    assert np.array_equal(np.sqrt(x).view(np.uint32), rounded_power.view(np.uint32))


def test_the_default_stays_unfused_off_cuda_and_an_explicit_choice_is_kept():
    from msoptim.kernels import use_fused

    cpu = [torch.zeros(3)]
    assert not use_fused({"fused": None, "foreach": None}, cpu, multi_tensor=True)
    assert use_fused({"fused": True, "foreach": None}, cpu)
    assert not use_fused({"fused": False, "foreach": None}, cpu, multi_tensor=True)
    assert not use_fused({}, cpu)  # a checkpoint from before the option


def test_only_the_32_bit_indexing_bound_of_a_length_is_an_acceptable_guard():
    import sympy

    from msoptim.kernels._fused import INDEX_LIMIT, _is_index_bound

    length = sympy.Symbol("s7", integer=True, positive=True)
    assert _is_index_bound(length <= INDEX_LIMIT)
    assert not _is_index_bound(length <= 1024)
    assert not _is_index_bound(sympy.Eq(sympy.Mod(length, 8), 0))
    assert not _is_index_bound(length >= 2)
