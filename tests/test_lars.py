"""LARS: a float64 reference of spec §2.8, the takeover of the inner optimizer, the optimizer surface.

MindSpore 2.10 has no CPU (or GPU) kernel for ``LARSUpdate``, so the truth is a float64 NumPy
transcription of the documented formula (the Ascend kernel's epsilon placement)::

    g <- g / loss_scale
    LARS-flagged:  c = coefficient*||w|| / (wd*||w|| + ||g|| + epsilon)
                   use_clip: c = min(max(c / lr, 0), 1);     g <- c * (g + wd*w)
    then the wrapped optimizer (no weight decay, no unscaling of its own)

with ``wd`` = 0 where the wrapped optimizer's decay flag is off. LARS must also behave as an
optimizer for torch tools (``step()``, schedulers, ``GradScaler``, checkpoints).
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch

import msoptim
from golden_replay import REF_ULPS, assert_float32_close
from msoptim.kernels.lars import lars_foreach, lars_reference
from msoptim.optimizers.lars import LARS, ParameterName, default_lars_filter

SHAPES = {
    "conv.weight": (4, 3, 2, 2),
    "fc.weight": (3, 5),
    "fc.bias": (3,),
    "bn.gamma": (4,),
    "bn.beta": (4,),
    "LayerNorm.weight": (5,),
    "scalar": (),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: a second OpenMP thread only spins against the other processes on the machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _export(monkeypatch):
    monkeypatch.setattr(msoptim, "LARS", LARS, raising=False)


def named_params(seed: int = 0) -> list[tuple[str, torch.nn.Parameter]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (name, torch.nn.Parameter(torch.randn(shape, generator=gen)))
        for name, shape in SHAPES.items()
    ]


def grad_sets(params, steps: int, seed: int = 1, scale: float = 1.0) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        [scale * 0.5 * torch.randn(p.shape, generator=gen) for _, p in params] for _ in range(steps)
    ]


def as_numpy(params, grads):
    return (
        {n: p.detach().numpy().copy() for n, p in params},
        [{n: g.numpy() for (n, _), g in zip(params, step)} for step in grads],
    )


# ----------------------------------------------------------------------------- float64 reference


def lars_momentum_numpy(
    params: dict[str, np.ndarray],
    grads: list[dict[str, np.ndarray]],
    *,
    lr,
    momentum: float,
    weight_decay,
    lars_flag,
    loss_scale: float = 1.0,
    epsilon: float = 1e-5,
    coefficient: float = 0.001,
    use_clip: bool = False,
) -> dict[str, np.ndarray]:
    """LARS(Momentum) in float64. ``lr(name, step0)`` and ``weight_decay(name, step0)`` (0 where
    the decay flag is off) per parameter and 0-based step; ``lars_flag(name)``."""
    w = {n: p.astype(np.float64) for n, p in params.items()}
    moments = {n: np.zeros_like(p) for n, p in w.items()}
    for step0, step_grads in enumerate(grads):
        for n, g in step_grads.items():
            g = g.astype(np.float64) / loss_scale
            if lars_flag(n):
                wd = weight_decay(n, step0)
                w_norm, g_norm = np.linalg.norm(w[n]), np.linalg.norm(g)
                c = coefficient * w_norm / (wd * w_norm + g_norm + epsilon)
                if use_clip:
                    c = min(max(c / lr(n, step0), 0.0), 1.0)
                g = c * (g + wd * w[n])
            moments[n] = momentum * moments[n] + g
            w[n] = w[n] - lr(n, step0) * moments[n]
    return w


def run(opt, grads, *, style: str = "call"):
    for step_grads in grads:
        if style == "call":
            opt(tuple(step_grads))
        else:
            for p, g in zip(opt.parameters, step_grads):
                p.grad = g.clone()
            opt.step()
    return opt


def flags_by_default(name: str) -> bool:
    return "LayerNorm" not in name and "bias" not in name


@pytest.mark.parametrize("style", ["call", "step"])
@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    ("wd", "loss_scale", "use_clip"),
    [
        (0.0, 1.0, False),
        (0.01, 1.0, False),
        (0.05, 32.0, False),
        (0.01, 4.0, True),
        (0.0, 1.0, True),
    ],
)
def test_lars_momentum_matches_reference(style, foreach, wd, loss_scale, use_clip):
    params = named_params()
    grads = grad_sets(params, 4, scale=loss_scale)
    w0, g_np = as_numpy(params, grads)
    inner = msoptim.Momentum(params, 0.1, 0.9, weight_decay=wd, loss_scale=loss_scale)
    opt = LARS(inner, epsilon=1e-4, coefficient=0.02, use_clip=use_clip, foreach=foreach)
    run(opt, grads, style=style)

    def decay(n, step):  # no groups: MindSpore's name rule (biases decay, gamma/beta do not)
        return 0.0 if ("gamma" in n or "beta" in n) else wd

    want = lars_momentum_numpy(
        w0, g_np, lr=lambda n, s: 0.1, momentum=0.9, weight_decay=decay,
        lars_flag=flags_by_default, loss_scale=loss_scale, epsilon=1e-4, coefficient=0.02,
        use_clip=use_clip,
    )  # fmt: skip
    for n, p in params:
        assert_float32_close(p, want[n], what=n, ulps=REF_ULPS)
    assert opt.global_step.tolist() == [4]


@pytest.mark.parametrize("foreach", [False, True])
def test_groups_filter_dynamic_lr_and_dynamic_weight_decay(foreach):
    params = named_params()
    grads = grad_sets(params, 5)
    w0, g_np = as_numpy(params, grads)
    wd_schedule = msoptim.ExponentialDecayLR(0.05, 0.5, 1)
    groups = [
        {"params": params[:3], "weight_decay": wd_schedule},
        {"params": params[3:5], "weight_decay": 0.02},  # gamma/beta decay: grouped rule
        {"params": params[5:]},
    ]
    schedule = msoptim.CosineDecayLR(0.01, 0.1, 4)
    inner = msoptim.Momentum(groups, schedule, 0.9)
    opt = LARS(inner, use_clip=True, lars_filter=lambda p: p.param.ndim != 1, foreach=foreach)
    run(opt, grads)

    def lr(n, step):
        return float(schedule(torch.tensor(step, dtype=torch.int32)))

    def decay(n, step):
        index = [name for name, _ in params].index(n)
        return 0.05 * 0.5**step if index < 3 else 0.02 if index < 5 else 0.0

    want = lars_momentum_numpy(
        w0, g_np, lr=lr, momentum=0.9, weight_decay=decay,
        lars_flag=lambda n: len(SHAPES[n]) != 1, use_clip=True,
    )  # fmt: skip
    for n, p in params:
        assert_float32_close(p, want[n], what=n, ulps=REF_ULPS)
    # one increment per call, also with a dynamic weight decay and a dynamic lr
    assert opt.global_step.tolist() == [5]


def test_global_step_single_increment_with_dynamic_weight_decay_and_static_lr():
    """The case where MindSpore 2.10 advances global_step twice per call; msoptim: once."""
    params = named_params()
    inner = msoptim.Momentum(params, 0.1, 0.9, weight_decay=msoptim.ExponentialDecayLR(0.1, 0.5, 1))
    opt = LARS(inner)
    run(opt, grad_sets(params, 3))
    assert opt.global_step.tolist() == [3]
    assert float(opt.get_weight_decay()) == pytest.approx(0.1 * 0.5**3, rel=1e-6)


def test_params_without_the_flag_pass_through_undecayed():
    """Filtered-out parameters get exactly what the inner optimizer would get without decay."""
    params_a, params_b = named_params(), named_params()
    grads = grad_sets(params_a, 3, scale=8.0)
    lars = LARS(
        msoptim.Momentum(params_a, 0.1, 0.9, weight_decay=0.1, loss_scale=8.0),
        lars_filter=lambda name: False,
    )
    plain = msoptim.Momentum(params_b, 0.1, 0.9, loss_scale=8.0)
    run(lars, grads)
    run(plain, grads)
    for (_, a), (_, b) in zip(params_a, params_b):
        assert torch.equal(a, b)


def test_user_gradients_are_not_modified():
    params = named_params()
    grads = grad_sets(params, 1, scale=4.0)[0]
    before = [g.clone() for g in grads]
    opt = LARS(msoptim.Momentum(params, 0.1, 0.9, weight_decay=0.1, loss_scale=4.0))
    opt(tuple(grads))
    for p, g in zip(opt.parameters, grads):
        p.grad = g
    opt.step()
    for g, b in zip(grads, before):
        assert torch.equal(g, b)


# ----------------------------------------------------------------------------- reference == foreach


def test_reference_equals_foreach_bitwise():
    results = {}
    for foreach in (False, True):
        params = named_params(3)
        gen = torch.Generator().manual_seed(4)
        params.append(("t.weight", torch.nn.Parameter(torch.randn(5, 2, generator=gen).t())))
        params.append(("zero.weight", torch.nn.Parameter(torch.zeros(2, 3))))
        groups = [
            {"params": params[:4], "weight_decay": msoptim.ExponentialDecayLR(0.1, 0.9, 1)},
            {"params": params[4:], "weight_decay": 0.03, "lr": 0.05},
        ]
        opt = LARS(
            msoptim.Momentum(groups, 0.1, 0.9, loss_scale=2.0),
            use_clip=True,
            lars_filter=lambda n: True,
            foreach=foreach,
        )
        history = []
        for step_grads in grad_sets(params, 3, seed=6):
            opt(tuple(step_grads))
            history.append([p.detach().clone() for _, p in params])
        results[foreach] = history
    for step, (a_list, b_list) in enumerate(zip(results[False], results[True])):
        for a, b in zip(a_list, b_list):
            assert torch.equal(a, b), f"step {step}"


def test_kernels_direct_call_bitwise():
    gen = torch.Generator().manual_seed(2)
    params = [torch.randn(3, 4, generator=gen), torch.randn((), generator=gen), torch.zeros(2)]
    grads = [torch.randn(p.shape, generator=gen) for p in params]
    for decays in ([0.01, 0.0, 0.5], [torch.tensor(0.01), torch.tensor(0.0), torch.tensor(0.5)]):
        for use_clip in (False, True):
            kwargs = {
                "weight_decays": decays,
                "lrs": [torch.tensor(0.1)] * 3 if use_clip else None,
                "epsilon": 1e-5,
                "coefficient": 0.001,
                "use_clip": use_clip,
            }
            ref = lars_reference(params, grads, **kwargs)
            fe = lars_foreach(params, grads, **kwargs)
            for a, b in zip(ref, fe):
                assert torch.equal(a, b)
            assert torch.equal(ref[2], torch.zeros(2)), "||w|| = 0 gives a zero coefficient"


# ----------------------------------------------------------------------------- takeover


def test_takes_over_weight_decay_and_loss_scale():
    params = named_params()
    inner = msoptim.Momentum(params, 0.1, 0.9, weight_decay=0.01, loss_scale=16.0)
    original_flags = inner.decay_flags
    opt = LARS(inner)
    assert opt.decay_flags == original_flags == (True, True, True, False, False, True, True)
    assert inner.decay_flags == (False,) * len(params)
    assert not inner.exec_weight_decay
    assert not inner.need_scale
    assert inner.loss_scale == 1.0
    assert all(group["weight_decay"] == 0.0 for group in inner.param_groups)
    assert opt.loss_scale == 16.0
    assert opt.need_scale
    assert float(opt.weight_decay) == pytest.approx(0.16)
    assert opt.lars_flags == (True, True, False, True, True, False, True)


def test_filter_forms():
    params = [(n, p) for n, p in named_params()]
    mindspore_style = LARS(
        msoptim.Momentum(params, 0.1, 0.9), lars_filter=lambda x: "bias" not in x.name
    )
    assert mindspore_style.lars_flags == tuple("bias" not in n for n in SHAPES)
    seen = []
    LARS(msoptim.Momentum(named_params(), 0.1, 0.9), lars_filter=lambda x: seen.append(x) or True)
    assert all(isinstance(x, ParameterName) and isinstance(x, str) for x in seen)
    assert [str(x) for x in seen] == list(SHAPES)
    assert [tuple(x.param.shape) for x in seen] == list(SHAPES.values())
    assert default_lars_filter("encoder.LayerNorm.gamma") is False
    assert default_lars_filter("layer1.0.bn1.gamma") is True  # MindSpore's default keeps BN params


def test_with_trainable_params_of_a_module():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3), torch.nn.Linear(3, 2))
    opt = LARS(msoptim.Momentum(msoptim.trainable_params(model), 0.1, 0.9, weight_decay=1e-4))
    flags = dict(zip(opt.parameter_names, opt.lars_flags))
    assert flags == {
        "0.weight": True, "0.bias": False, "1.gamma": True, "1.beta": True,
        "2.weight": True, "2.bias": False,
    }  # fmt: skip


# ----------------------------------------------------------------------------- validation


def test_argument_errors_and_atomic_construction():
    params = named_params()
    with pytest.raises(TypeError, match=r"'optimizer' must be an msoptim optimizer"):
        LARS(torch.optim.SGD([p for _, p in params], lr=0.1))
    inner = msoptim.Momentum(params, 0.1, 0.9, weight_decay=0.01)
    for kwargs, exc, match in [
        ({"epsilon": 1}, TypeError, r"'epsilon' must be a float"),
        ({"coefficient": 0}, TypeError, r"'coefficient' must be a float"),
        ({"use_clip": 1}, TypeError, r"'use_clip' must be a bool"),
        ({"lars_filter": "bias"}, TypeError, r"'lars_filter' must be a callable"),
    ]:
        with pytest.raises(exc, match=match):
            LARS(inner, **kwargs)

    def broken(name):
        raise RuntimeError("filter failed")

    with pytest.raises(RuntimeError, match="filter failed"):
        LARS(inner, lars_filter=broken)
    assert inner.exec_weight_decay
    assert inner.param_groups[0]["weight_decay"] == 0.01
    lars = LARS(inner)
    with pytest.raises(TypeError, match="not a LARS"):
        LARS(lars)
    with pytest.raises(ValueError, match="already wrapped"):
        LARS(inner)
    with pytest.raises(NotImplementedError, match="add_param_group"):
        lars.add_param_group({"params": [torch.nn.Parameter(torch.ones(1))]})


def test_use_clip_rejects_group_and_dynamic_lr():
    params = named_params()
    groups = [{"params": params[:3], "lr": [0.1, 0.2]}, {"params": params[3:]}]
    inner = msoptim.Momentum(groups, 0.1, 0.9)
    with pytest.raises(ValueError, match="use_clip"):
        LARS(inner, use_clip=True)
    LARS(inner, use_clip=False)


# ----------------------------------------------------------------------------- optimizer surface


def test_looks_like_an_optimizer():
    params = named_params()
    inner = msoptim.Momentum(params, 0.1, 0.9)
    opt = LARS(inner)
    assert isinstance(opt, torch.optim.Optimizer)
    assert isinstance(opt, msoptim.Optimizer)
    assert opt.param_groups is inner.param_groups
    assert opt.state is inner.state
    assert opt.parameters == inner.parameters
    assert opt.parameter_names == inner.parameter_names
    assert opt.global_step is inner.global_step
    assert opt.learning_rate is inner.learning_rate
    assert opt.get_lr() is inner.get_lr()
    assert opt.ms_state_dict().keys() == inner.ms_state_dict().keys()
    for _, p in params:
        p.grad = torch.ones_like(p)
    opt.zero_grad()
    assert all(p.grad is None for _, p in params)
    calls = []
    opt.register_step_post_hook(lambda *_: calls.append(1))
    for _, p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    assert calls == [1]
    assert opt.global_step.tolist() == [1]
    assert "LARS" in repr(opt)


def test_torch_lr_scheduler_drives_the_inner_lr():
    params = named_params()
    opt = LARS(msoptim.Momentum(params, 0.1, 0.9))
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for step_grads in grad_sets(params, 2):
        for p, g in zip(opt.parameters, step_grads):
            p.grad = g
        opt.step()
        scheduler.step()
    assert float(opt.get_lr()) == pytest.approx(0.025)
    assert float(opt.optimizer.learning_rate) == pytest.approx(0.025)


def test_grad_scaler_unscales_and_skips_infinite_steps():
    params = named_params()
    opt = LARS(msoptim.Momentum(params, 0.1, 0.9, weight_decay=0.01))
    reference_params = named_params()
    reference = LARS(msoptim.Momentum(reference_params, 0.1, 0.9, weight_decay=0.01))
    scaler = torch.amp.GradScaler("cpu", init_scale=64.0)
    grads = grad_sets(params, 2)
    for step_grads in grads:
        opt.zero_grad()
        loss = sum((p * g).sum() for p, g in zip(opt.parameters, step_grads))
        scaler.scale(loss).backward()  # p.grad = g * scale
        scaler.step(opt)
        scaler.update()
        reference(tuple(step_grads))
    for (_, a), (_, b) in zip(params, reference_params):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    before = [p.detach().clone() for _, p in params]
    opt.zero_grad()
    scaler.scale(sum(p.sum() for p in opt.parameters) * float("inf")).backward()
    scaler.step(opt)
    scaler.update()
    assert all(torch.equal(p, b) for (_, p), b in zip(params, before))
    assert opt.global_step.tolist() == [2]


def test_state_dict_round_trip_continues_bitwise():
    params = named_params()
    grads = grad_sets(params, 6)

    def build(ps):
        inner = msoptim.Momentum(ps, [0.1, 0.09, 0.08, 0.07, 0.06, 0.05], 0.9, weight_decay=0.01)
        return LARS(inner, use_clip=True)

    opt = build(params)
    run(opt, grads[:3])
    buffer = io.BytesIO()
    torch.save(copy.deepcopy(opt.state_dict()), buffer)
    resumed_params = [(n, torch.nn.Parameter(p.detach().clone())) for n, p in params]
    resumed = build(resumed_params)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    assert saved["lars"]["use_clip"] is True
    resumed.load_state_dict(saved)
    assert resumed.optimizer.decay_flags == (False,) * len(params)
    assert not resumed.optimizer.exec_weight_decay
    run(opt, grads[3:])
    run(resumed, grads[3:])
    for (_, a), (_, b) in zip(params, resumed_params):
        assert torch.equal(a, b)
    assert resumed.global_step.tolist() == [6]

    other = LARS(
        msoptim.Momentum(named_params(), [0.1] * 6, 0.9, weight_decay=0.01), coefficient=0.1
    )
    with pytest.raises(ValueError, match="coefficient"):
        other.load_state_dict(saved)
    # A state dict without LARS's settings (e.g. through torch.distributed.checkpoint) loads.
    bare = {k: v for k, v in copy.deepcopy(opt.state_dict()).items() if k != "lars"}
    build([(n, torch.nn.Parameter(p.detach().clone())) for n, p in params]).load_state_dict(bare)


# ----------------------------------------------------------------------------- convergence


def test_converges_on_a_small_regression():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 6, generator=gen)
    y = x @ torch.randn(6, 2, generator=gen) + 0.5
    model = torch.nn.Linear(6, 2)
    opt = LARS(
        msoptim.Momentum(msoptim.trainable_params(model), 0.5, 0.9, weight_decay=1e-4),
        coefficient=0.02,
    )
    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
    assert losses[-1] < 1e-2 * losses[0], (losses[0], losses[-1])


def test_parameters_added_after_wrapping_are_refused():
    params = named_params()
    inner = msoptim.Momentum([{"params": params[:3]}], 0.1, 0.9)
    opt = LARS(inner)
    inner.add_param_group({"params": params[3:]})
    with pytest.raises(RuntimeError, match="Add parameter groups before wrapping"):
        opt(tuple(torch.zeros_like(p) for p in opt.parameters))


def test_use_clip_with_static_group_lrs_matches_reference():
    params = named_params()
    grads = grad_sets(params, 3, scale=2.0)
    w0, g_np = as_numpy(params, grads)
    groups = [{"params": params[:4], "lr": 0.05, "weight_decay": 0.01}, {"params": params[4:]}]
    opt = LARS(msoptim.Momentum(groups, 0.2, 0.8, loss_scale=2.0), use_clip=True, coefficient=0.5)
    run(opt, grads)
    names = [n for n, _ in params]
    want = lars_momentum_numpy(
        w0, g_np, lr=lambda n, s: 0.05 if names.index(n) < 4 else 0.2, momentum=0.8,
        weight_decay=lambda n, s: 0.01 if names.index(n) < 4 else 0.0,
        lars_flag=flags_by_default, loss_scale=2.0, coefficient=0.5, use_clip=True,
    )  # fmt: skip
    for n, p in params:
        assert_float32_close(p, want[n], what=n, ulps=REF_ULPS)
