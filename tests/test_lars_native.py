"""LARS's C kernel (``lars_native.c``) equals the reference bit for bit: parameters and moments.

The kernel visits each parameter once: float64 sums of squares, the local rate, then Momentum's
update with the rescaled gradient (or the rescaled gradient written out, for any other wrapped
optimizer). The shapes cover what it walks whole (0-d, 1-element, vector tails) and what its
threads split (at least ``TEAM_MIN_NUMEL`` elements, or every tensor in the build with a tiny
threshold), and what it leaves to the compiled path (a gradient of another layout).
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import msoptim
from msoptim.kernels import _native
from msoptim.kernels import lars as kernels
from msoptim.kernels.lars import Rescaling, lars_fused, lars_momentum_step, lars_reference
from msoptim.kernels.momentum import momentum_reference
from native_kernels import (
    MIXED_SHAPES,
    RANDOM_SHAPES,
    assert_builds,
    assert_bumps_versions,
    assert_compiled_steps_equal_eager,
    column_major_matrices,
    poisoned,
    random_case,
    split_build,
    spy_native_steps,
    torch_threads,
    without_compiler,
)
from test_fast_path import bits, same_values

SHAPES = MIXED_SHAPES
EPSILON = float(np.float32(1e-5))
COEFFICIENT = float(np.float32(0.001))

needs_compiler = pytest.mark.skipif(
    kernels._load_native() is None, reason="no C compiler: LARS runs its compiled kernels"
)


def _tensors(shapes=SHAPES, seed: int = 1, grad_scale: float = 0.1):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(shape, generator=gen) * (i + 1) for i, shape in enumerate(shapes)]
    grads = [torch.randn(shape, generator=gen) * grad_scale for shape in shapes]
    moments = [torch.randn(shape, generator=gen) * 0.01 for shape in shapes]
    return params, grads, moments


def _decays(count: int, kind: str) -> list:
    values = [0.0 if i % 3 == 0 else 0.01 * (i + 1) for i in range(count)]
    if kind == "tensors":  # a weight-decay schedule's values
        return [torch.tensor(v, dtype=torch.float32) for v in values]
    return values


def _clip_lrs(count: int) -> list[torch.Tensor]:
    return [torch.tensor(0.05 * (1 + i % 2), dtype=torch.float32) for i in range(count)]


def _arguments(count: int, decays: str, use_clip: bool) -> dict:
    return {
        "weight_decays": _decays(count, decays),
        "lrs": _clip_lrs(count) if use_clip else None,
        "epsilon": EPSILON,
        "coefficient": COEFFICIENT,
        "use_clip": use_clip,
    }


def _reference_momentum(params, grads, moments, arguments, *, lr, nesterov, momentum=0.9):
    rescaled = lars_reference(params, grads, **arguments)
    momentum_reference(params, rescaled, moments, lr=lr, momentum=momentum, nesterov=nesterov)


def _step_momentum(params, grads, moments, arguments, *, lr, nesterov, momentum=0.9):
    lrs = arguments["lrs"] or [None] * len(params)
    rescaling = Rescaling(
        dict(zip(map(id, params), zip(arguments["weight_decays"], lrs))),
        epsilon=arguments["epsilon"],
        coefficient=arguments["coefficient"],
        use_clip=arguments["use_clip"],
    )
    lars_momentum_step(
        params, grads, moments, rescaling, lr=lr, momentum=momentum, nesterov=nesterov
    )


def _assert_momentum_steps_equal(shapes=SHAPES, *, decays="floats", use_clip=False,
                                 nesterov=False, steps=3, grad_layout=None, grad_scale=0.1):  # fmt: skip
    expected, got = _tensors(shapes, grad_scale=grad_scale), _tensors(shapes, grad_scale=grad_scale)
    arguments = _arguments(len(shapes), decays, use_clip)
    lr = torch.tensor(0.1)
    for step in range(steps):
        grads = [g * (step + 1) for g in expected[1]]
        if grad_layout is not None:
            grads = [grad_layout(g) for g in grads]
        _reference_momentum(expected[0], grads, expected[2], arguments, lr=lr, nesterov=nesterov)
        _step_momentum(got[0], [g.clone() for g in grads], got[2], arguments, lr=lr,
                       nesterov=nesterov)  # fmt: skip
        for name, a, b in zip(("param", "moment"), (expected[0], expected[2]), (got[0], got[2])):
            for index, (x, y) in enumerate(zip(a, b)):
                assert same_values(x, y), f"step {step}: {name} {index} differs"


@pytest.fixture
def native_calls(monkeypatch):
    """The modes of the C kernel's calls."""
    return spy_native_steps(monkeypatch, kernels, lambda mode, *rest: mode)


@needs_compiler
@pytest.mark.parametrize("nesterov", [False, True], ids=["plain", "nesterov"])
@pytest.mark.parametrize("use_clip", [False, True], ids=["no-clip", "clip"])
@pytest.mark.parametrize("decays", ["floats", "tensors"])
def test_momentum_mode_equals_the_reference_bitwise(native_calls, threads, nesterov, use_clip,
                                                    decays):  # fmt: skip
    _assert_momentum_steps_equal(decays=decays, use_clip=use_clip, nesterov=nesterov)
    assert native_calls == [kernels._MODE_MOMENTUM] * 3


@needs_compiler
@pytest.mark.parametrize("openmp", [True, False], ids=["openmp-workers", "own-threads"])
@pytest.mark.parametrize("team_threads", [2, 3, 4])
def test_every_tensor_split_among_the_threads_equals_the_reference(
    monkeypatch, team_threads, openmp
):
    """A build whose threads split every tensor of 8 elements or more: the shares' sums are
    added in thread order, each thread updates what it read; the bits stay the reference's,
    whether the threads are torch's OpenMP workers or the kernel's own."""
    split_build(monkeypatch, kernels, openmp=openmp)
    with torch_threads(team_threads):
        _assert_momentum_steps_equal(use_clip=True, nesterov=True, decays="tensors")
        _assert_momentum_steps_equal(shapes=[(9,), (8,), (1,), (40, 3)], steps=2)


@needs_compiler
@pytest.mark.parametrize("use_clip", [False, True], ids=["no-clip", "clip"])
def test_rescale_mode_equals_the_reference_bitwise(native_calls, threads, use_clip):
    """Around another optimizer, the rescaled gradients are written out (one visit each)."""
    params, grads, _ = _tensors()
    arguments = _arguments(len(params), "floats", use_clip)
    owner = torch.zeros(())
    got = lars_fused(params, grads, owner=owner, **arguments)
    expected = lars_reference(params, grads, **arguments)
    for index, (a, b) in enumerate(zip(expected, got)):
        assert a.shape == b.shape
        assert torch.equal(bits(a), bits(b)), f"gradient {index} differs"
    assert native_calls == [kernels._MODE_RESCALE]


@needs_compiler
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.0, -0.0], ids=str)
def test_non_finite_zero_and_signed_zero_inputs_match_the_reference(value):
    """A NaN or infinite gradient makes a norm NaN or infinite; all-zero weights make the local
    rate 0 (and the clip keeps -0 and NaN as the reference's clamps do)."""
    shapes = [(5,), (70001,), (3, 4), ()]

    poison = poisoned(value)
    _assert_momentum_steps_equal(shapes, grad_layout=poison, steps=2)
    _assert_momentum_steps_equal(shapes, grad_layout=poison, steps=2, use_clip=True, nesterov=True)
    _assert_momentum_steps_equal(shapes, grad_scale=0.0, steps=2, use_clip=True)
    zero_weights = _tensors(shapes)
    arguments = _arguments(len(shapes), "floats", True)
    expected = lars_reference([torch.zeros(s) for s in shapes], zero_weights[1], **arguments)
    got = lars_fused([torch.zeros(s) for s in shapes], zero_weights[1], owner=torch.zeros(()),
                     **arguments)  # fmt: skip
    for a, b in zip(expected, got):
        assert same_values(a, b)


@needs_compiler
def test_gradients_of_another_layout_run_the_compiled_path_exactly(native_calls):
    """Transposed gradients are not what the kernel walks: those parameters go to the compiled
    kernels, the others to the C kernel, all with the reference's bits."""
    shapes = [(300, 9), (7,), (64, 16, 3, 3), (40, 40)]

    _assert_momentum_steps_equal(shapes, grad_layout=column_major_matrices, steps=2)
    assert native_calls == [kernels._MODE_MOMENTUM] * 2


def test_without_a_compiler_the_rescaling_runs_in_momentums_compiled_kernel(monkeypatch, tmp_path):
    without_compiler(monkeypatch, tmp_path, kernels, "lars_native")
    from msoptim.kernels import _fused

    monkeypatch.setattr(_fused, "PARALLEL_MIN_NUMEL", 1 << 40)  # one (single-threaded) compile
    _assert_momentum_steps_equal([(30, 9), (7,), ()], use_clip=True, steps=2)
    assert any(k.name == "lars_momentum_update" for k in _fused._KERNELS.values())


@needs_compiler
def test_the_kernel_runs_on_torchs_openmp_workers(monkeypatch):
    """Where torch has an OpenMP runtime (Linux builds), the C kernel's threads are its workers:
    threads of its own would compete with them right after a torch op."""
    if not sys.platform.startswith("linux"):
        pytest.skip("OpenMP entry points are looked up in /proc/self/maps")
    points = _native.openmp_entry_points()
    assert points is not None
    assert all(points)
    seen = []
    real = _native.openmp_entry_points
    monkeypatch.setattr(_native, "openmp_entry_points", lambda: seen.append(1) or real())
    with torch_threads(2):
        _assert_momentum_steps_equal([(70001,), (5,)], steps=1)
    assert seen


@needs_compiler
def test_while_dynamo_traces_the_c_kernel_is_not_called(monkeypatch, native_calls):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert kernels._native_indices(*_tensors([(5,), (3, 3)])) == []


@needs_compiler
def test_the_step_never_syncs_with_the_host(native_calls):
    """Tensor weight decays, clip lrs and Momentum's lr are read by the kernel, not the host."""
    from test_compile import NoHostSync

    params, grads, moments = _tensors([(300, 9), (7,), ()])
    arguments = _arguments(3, "tensors", True)
    for _ in range(2):
        with NoHostSync():
            _step_momentum(params, grads, moments, arguments, lr=torch.tensor(0.1), nesterov=True)
    assert native_calls == [kernels._MODE_MOMENTUM] * 2


@needs_compiler
def test_the_c_kernel_bumps_version_counters():
    params, grads, moments = _tensors([(6, 20), (3,)])
    arguments = _arguments(2, "floats", False)
    lr = torch.tensor(0.1)
    step = lambda: _step_momentum(params, grads, moments, arguments, lr=lr, nesterov=False)  # noqa: E731
    assert_bumps_versions(step, params[0], moments[0])


@needs_compiler
@pytest.mark.parametrize("nesterov", [False, True])
def test_lars_over_a_fused_momentum_runs_the_c_kernel_with_the_reference_bits(native_calls,
                                                                              nesterov):  # fmt: skip
    """End to end through the optimizers: a ResNet-like model's flagged weights go through the C
    kernel; biases and norms (not flagged) through Momentum's own kernel."""
    shapes = {"conv.weight": (16, 8, 3, 3), "bn.gamma": (16,), "bn.beta": (16,),
              "fc.weight": (300, 257), "fc.bias": (300,)}  # fmt: skip

    def build(fused):
        gen = torch.Generator().manual_seed(3)
        params = [(n, torch.nn.Parameter(torch.randn(s, generator=gen))) for n, s in shapes.items()]
        impl = {"fused": True} if fused else {"foreach": False}
        inner = msoptim.Momentum(params, 0.1, 0.9, weight_decay=1e-4, use_nesterov=nesterov, **impl)
        return [p for _, p in params], msoptim.LARS(inner, coefficient=0.01, use_clip=True)

    (params_a, reference), (params_b, fused) = build(False), build(True)
    gen = torch.Generator().manual_seed(4)
    for _ in range(3):
        grads = tuple(torch.randn(p.shape, generator=gen) for p in params_a)
        reference(grads)
        fused(tuple(g.clone() for g in grads))
    for a, b in zip(params_a, params_b):
        assert torch.equal(bits(a.detach()), bits(b.detach()))
    assert native_calls == [kernels._MODE_MOMENTUM] * 3


def test_the_kernel_builds_wherever_there_is_a_compiler():
    """The tests above skip without a C compiler; with one, a failing build must not hide."""
    assert_builds(kernels, "lars_native")


@needs_compiler
@pytest.mark.parametrize("inner", ["Momentum", "SGD"])
def test_the_default_on_cpu_is_the_c_kernel_and_false_keeps_the_reference(native_calls, inner):
    """No ``fused``/``foreach`` asked for, on CPU: the C kernel (inside Momentum's update, or the
    rescaled gradients written out for another optimizer), the reference where it cannot run (a
    transposed gradient here); ``foreach=False`` on the wrapped optimizer: the reference."""
    shapes = {"conv.weight": (16, 8, 3, 3), "bn.beta": (16,), "fc.weight": (30, 7),
              "fc.bias": (30,)}  # fmt: skip

    def run(**impl):
        gen = torch.Generator().manual_seed(3)
        params = [(n, torch.nn.Parameter(torch.randn(s, generator=gen))) for n, s in shapes.items()]
        if inner == "Momentum":
            opt = msoptim.Momentum(params, 0.1, 0.9, weight_decay=1e-4, **impl)
        else:
            opt = msoptim.SGD(params, 0.1, momentum=0.5, weight_decay=1e-4, **impl)
        lars = msoptim.LARS(opt, coefficient=0.01)
        grads = torch.Generator().manual_seed(4)
        for _ in range(2):
            step = [torch.randn(p.shape, generator=grads) for _, p in params]
            step[2] = step[2].t().contiguous().t()  # fc.weight's: the reference takes it
            lars(tuple(step))
        return [p.detach() for _, p in params]

    by_default = run()
    mode = kernels._MODE_MOMENTUM if inner == "Momentum" else kernels._MODE_RESCALE
    assert native_calls == [mode, mode]
    for a, b in zip(run(foreach=False), by_default):
        assert same_values(a, b)
    assert native_calls == [mode, mode]


@needs_compiler
@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    shapes=RANDOM_SHAPES,
    nesterov=st.booleans(),
    use_clip=st.booleans(),
    decays=st.sampled_from(["floats", "tensors"]),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    team=st.booleans(),
)
def test_random_shapes_and_configs_equal_the_reference(
    shapes, nesterov, use_clip, decays, scale, team
):
    """Random shape lists (tails around the 16-element vectors and shares, tensors above the
    split threshold) and settings, with two threads; ``team`` builds the kernel that splits
    every tensor of 8 elements or more."""
    run = functools.partial(
        _assert_momentum_steps_equal, shapes, decays=decays, use_clip=use_clip,
        nesterov=nesterov, steps=2, grad_scale=scale,
    )  # fmt: skip
    assert random_case(kernels, run, team=team) == [kernels._MODE_MOMENTUM] * 2


@needs_compiler
def test_under_torch_compile_the_default_is_the_reference_math(native_calls):
    """While dynamo traces ``opt.step``, LARS's default takes the reference (a ctypes call cannot be
    traced); the results equal an eager default run's, which runs the C kernel."""
    shapes = {"conv.weight": (8, 4, 3, 3), "fc.weight": (30, 7), "fc.bias": (30,)}

    def make(named):
        inner = msoptim.Momentum(named, 0.1, 0.9, weight_decay=1e-4)
        return msoptim.LARS(inner, coefficient=0.01)

    assert_compiled_steps_equal_eager(make, shapes)
    assert native_calls == [kernels._MODE_MOMENTUM] * 3  # the eager run's steps only
