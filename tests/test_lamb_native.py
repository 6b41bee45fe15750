"""Lamb's C kernel (``lamb_native.c``) equals the reference bit for bit: parameters and moments.

The kernel visits each parameter once: the new moments and the float64 sums of squares of ``w``
and ``g_hat``, then the trust ratio and the update while the tensors are in cache. The shapes
cover what it walks whole (0-d, 1-element, vector tails) and what its threads split (at least
``TEAM_MIN_NUMEL`` elements, or every tensor in the build with a tiny threshold), and what it
leaves to the compiled passes (a gradient of another layout).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import msoptim
from msoptim.kernels import _native
from msoptim.kernels import lamb as kernels
from msoptim.kernels.lamb import lamb_fused, lamb_reference
from native_kernels import (
    assert_builds,
    assert_compiled_steps_equal_eager,
    column_major_matrices,
    spy_native_steps,
    torch_threads,
    without_compiler,
)
from test_fast_path import same_values

SHAPES = [(), (1,), (7,), (33,), (2, 3), (300, 9), (64, 16, 3, 3), (70001,), (300, 257)]

needs_compiler = pytest.mark.skipif(
    kernels._load_native() is None, reason="no C compiler: Lamb runs its compiled passes"
)


def _state(shapes, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(shape, generator=gen) * (i + 1) for i, shape in enumerate(shapes)]
    exp_avgs = [torch.randn(shape, generator=gen) * 0.01 for shape in shapes]
    exp_avg_sqs = [torch.rand(shape, generator=gen) * 0.01 for shape in shapes]
    return params, exp_avgs, exp_avg_sqs


def _options(count: int, *, weight_decay=0.01, lr=0.05, **hyper):
    return {
        "lr": torch.tensor(lr, dtype=torch.float32),
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-6,
        "weight_decay": weight_decay,
        "decay_flags": [i % 3 != 0 for i in range(count)],
        **hyper,
    }


def _assert_steps_equal(shapes=SHAPES, *, steps=3, grad_layout=None, grad_scale=0.1, **options):
    expected, got = _state(shapes), _state(shapes)
    gen = torch.Generator().manual_seed(2)
    for step in range(1, steps + 1):
        grads = [torch.randn(shape, generator=gen) * grad_scale for shape in shapes]
        if grad_layout is not None:
            grads = [grad_layout(g) for g in grads]
        kwargs = {**_options(len(shapes)), **options, "step": torch.tensor(float(step))}
        lamb_reference(expected[0], grads, expected[1], expected[2], **kwargs)
        lamb_fused(got[0], [g.clone() for g in grads], got[1], got[2], **kwargs)
        for name, a, b in zip(("param", "m", "v"), expected, got):
            for index, (x, y) in enumerate(zip(a, b)):
                assert same_values(x, y), f"step {step}: {name} {index} differs"


@pytest.fixture
def native_calls(monkeypatch):
    """How many parameters each call of the C kernel took."""
    return spy_native_steps(monkeypatch, kernels, lambda lists, *rest: len(lists[0]))


@needs_compiler
@pytest.mark.parametrize(
    "options",
    [{}, {"weight_decay": 0.0}, {"weight_decay": torch.tensor(0.02)}, {"beta1": 0.5, "eps": 1e-3}],
    ids=["decay", "no-decay", "scheduled-decay", "other-hyper"],
)
def test_the_c_kernel_equals_the_reference_bitwise(native_calls, threads, options):
    _assert_steps_equal(**options)
    assert native_calls == [len(SHAPES)] * 3


@needs_compiler
@pytest.mark.parametrize("openmp", [True, False], ids=["openmp-workers", "own-threads"])
@pytest.mark.parametrize("team_threads", [2, 3, 4])
def test_every_tensor_split_among_the_threads_equals_the_reference(
    monkeypatch, team_threads, openmp
):
    """A build whose threads split every tensor of 8 elements or more: each thread updates the
    moments of its share and sums its squares, the sums are added in thread order, each applies
    the update to what it read; the bits stay the reference's."""
    if openmp and _native.openmp_entry_points() is None:
        pytest.skip("torch has no OpenMP runtime here")
    monkeypatch.setattr(kernels, "NATIVE_FLAGS", ("-DTEAM_MIN_NUMEL=8",))
    monkeypatch.setattr(kernels, "USE_OPENMP", openmp)
    with torch_threads(team_threads):
        _assert_steps_equal()
        _assert_steps_equal([(9,), (8,), (1,), (40, 3)], steps=2, weight_decay=0.0)


@needs_compiler
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.0, -0.0], ids=str)
def test_non_finite_zero_and_signed_zero_inputs_match_the_reference(value):
    """A NaN or infinite gradient makes a norm NaN or infinite (trust ratio 0 or the cap); zero
    gradients and zero weights take the ratio's 1 branches."""
    shapes = [(5,), (70001,), (3, 4), ()]

    def poison(g):
        g = g.clone()
        g.view(-1)[0] = value
        return g

    _assert_steps_equal(shapes, grad_layout=poison, steps=2)
    _assert_steps_equal(shapes, grad_scale=0.0, steps=2)
    _assert_steps_equal(shapes, grad_scale=0.0, steps=2, weight_decay=0.0)
    for weights in ("zero", "infinite"):  # an infinite weight with decay: inf / inf -> ratio 0
        state = _state(shapes)
        for w in state[0]:
            w.zero_() if weights == "zero" else w.view(-1)[0].fill_(float("inf"))
        expected = [[t.clone() for t in items] for items in state]
        grads = [torch.randn(s) for s in shapes]
        kwargs = {**_options(len(shapes)), "step": torch.tensor(1.0)}
        kwargs["decay_flags"] = [True] * len(shapes)
        lamb_reference(expected[0], grads, expected[1], expected[2], **kwargs)
        lamb_fused(state[0], grads, state[1], state[2], **kwargs)
        for a, b in zip(expected, state):
            for x, y in zip(a, b):
                assert same_values(x, y), weights


@needs_compiler
def test_gradients_of_another_layout_run_the_compiled_passes_exactly(native_calls):
    """Transposed gradients are not what the kernel walks: those parameters go to the compiled
    passes, the others to the C kernel, all with the reference's bits."""
    shapes = [(300, 9), (7,), (64, 16, 3, 3), (40, 40)]

    _assert_steps_equal(shapes, grad_layout=column_major_matrices, steps=2)
    assert native_calls == [2, 2]


def test_without_a_compiler_lamb_runs_its_compiled_passes(monkeypatch, tmp_path):
    without_compiler(monkeypatch, tmp_path, kernels, "lamb_native")
    from msoptim.kernels import _fused

    monkeypatch.setattr(_fused, "PARALLEL_MIN_NUMEL", 1 << 40)  # one (single-threaded) compile
    _assert_steps_equal([(30, 9), (7,), ()], steps=2)
    assert any(k.name == "lamb_moments_update" for k in _fused._KERNELS.values())


@needs_compiler
def test_while_dynamo_traces_the_c_kernel_is_not_called(monkeypatch, native_calls):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    params, m, v = _state([(5,), (3, 3)])
    lists = (params, [torch.ones_like(p) for p in params], m, v)
    kwargs = {**_options(2), "step": torch.tensor(1.0)}
    decay_flags = kwargs.pop("decay_flags")
    assert kernels._step_native(lists, decay_flags, **kwargs) == [0, 1]
    assert native_calls == []


@needs_compiler
def test_the_step_never_syncs_with_the_host(native_calls):
    """The lr, bias corrections and a scheduled weight decay are read by the kernel, not the
    host."""
    from test_compile import NoHostSync

    shapes = [(300, 9), (7,), ()]
    params, m, v = _state(shapes)
    grads = [torch.randn(s) for s in shapes]
    for step in (1, 2):
        kwargs = {**_options(3, weight_decay=torch.tensor(0.01)), "step": torch.tensor(float(step))}
        with NoHostSync():
            lamb_fused(params, grads, m, v, **kwargs)
    assert native_calls == [3, 3]


@needs_compiler
def test_the_c_kernel_bumps_version_counters():
    """Autograd must see the in-place update: a parameter saved for backward, then stepped."""
    params, m, v = _state([(6, 20), (3,)])
    weight = params[0].requires_grad_()
    saved = (weight * weight).sum()  # saves weight for backward
    before = (weight._version, m[0]._version, v[0]._version)
    with torch.no_grad():
        lamb_fused(params, [torch.ones(6, 20), torch.ones(3)], m, v,
                   **_options(2), step=torch.tensor(1.0))  # fmt: skip
    assert weight._version > before[0]
    assert m[0]._version > before[1]
    assert v[0]._version > before[2]
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        saved.backward()


@needs_compiler
def test_the_optimizer_runs_the_c_kernel_with_the_reference_bits(native_calls):
    """End to end through msoptim.Lamb (its decay filter, a dynamic lr): ``fused=True`` on CPU
    steps every plain parameter in the C kernel."""
    shapes = {"conv.weight": (16, 8, 3, 3), "bn.gamma": (16,), "fc.weight": (300, 257),
              "fc.bias": (300,)}  # fmt: skip

    def build(**impl):
        gen = torch.Generator().manual_seed(3)
        params = [(n, torch.nn.Parameter(torch.randn(s, generator=gen))) for n, s in shapes.items()]
        lr = msoptim.PolynomialDecayLR(0.01, 0.001, 10, power=1.0)
        return [p for _, p in params], msoptim.Lamb(params, lr, weight_decay=0.01, **impl)

    (params_a, reference), (params_b, fused) = build(foreach=False), build(fused=True)
    gen = torch.Generator().manual_seed(4)
    for _ in range(3):
        grads = tuple(torch.randn(p.shape, generator=gen) for p in params_a)
        reference(grads)
        fused(tuple(g.clone() for g in grads))
    for a, b in zip(params_a, params_b):
        assert same_values(a.detach(), b.detach())
    assert native_calls == [len(shapes)] * 3


def test_the_kernel_builds_wherever_there_is_a_compiler():
    """The tests above skip without a C compiler; with one, a failing build must not hide."""
    assert_builds(kernels, "lamb_native")


@needs_compiler
def test_the_default_on_cpu_is_the_c_kernel_and_false_keeps_the_reference(native_calls):
    """``fused`` and ``foreach`` unset: the C kernel (nothing to compile, the reference's bits);
    ``fused=False`` or ``foreach=False``: the reference."""
    shapes = {"fc.weight": (30, 7), "fc.bias": (30,), "w": (5,)}

    def run(**impl):
        gen = torch.Generator().manual_seed(3)
        params = [(n, torch.nn.Parameter(torch.randn(s, generator=gen))) for n, s in shapes.items()]
        opt = msoptim.Lamb(params, 0.01, weight_decay=0.01, **impl)
        grads = torch.Generator().manual_seed(4)
        for _ in range(2):
            opt(tuple(torch.randn(p.shape, generator=grads) for _, p in params))
        return [p.detach() for _, p in params]

    by_default = run()
    assert native_calls == [3, 3]
    for impl in ({"fused": False}, {"foreach": False}):
        for a, b in zip(run(**impl), by_default):
            assert same_values(a, b)
    assert native_calls == [3, 3]


_DIMENSION = st.sampled_from([1, 2, 3, 7, 15, 16, 17, 33, 300])


@needs_compiler
@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    shapes=st.lists(st.lists(_DIMENSION, min_size=0, max_size=3), min_size=1, max_size=5),
    weight_decay=st.sampled_from([0.0, 0.01, 0.5]),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    lr=st.sampled_from([1e-3, 0.1, 2.0]),
    team=st.booleans(),
)
def test_random_shapes_and_configs_equal_the_reference(shapes, weight_decay, scale, lr, team):
    """Random shape lists (tails around the 16-element vectors and 512-element chunks, tensors
    above the split threshold) and settings, with two threads; ``team`` builds the kernel that
    splits every tensor of 8 elements or more."""
    flags = ("-DTEAM_MIN_NUMEL=8",) if team else ()
    with pytest.MonkeyPatch.context() as patch, torch_threads(2):
        patch.setattr(kernels, "NATIVE_FLAGS", flags)
        calls = spy_native_steps(patch, kernels, lambda lists, *rest: len(lists[0]))
        _assert_steps_equal(
            [tuple(s) for s in shapes], steps=2, grad_scale=scale, weight_decay=weight_decay,
            lr=torch.tensor(lr, dtype=torch.float32),
        )  # fmt: skip
    assert calls == [len(shapes)] * 2


@needs_compiler
def test_under_torch_compile_the_default_is_the_reference_math(native_calls):
    """While dynamo traces ``opt.step``, Lamb's default takes the reference (a ctypes call cannot be
    traced); the results equal an eager default run's, which runs the C kernel."""
    shapes = {"conv.weight": (8, 4, 3, 3), "fc.weight": (30, 7), "fc.bias": (30,)}
    assert_compiled_steps_equal_eager(
        lambda named: msoptim.Lamb(named, 0.01, weight_decay=0.01), shapes
    )
    assert native_calls == [len(shapes)] * 3  # the eager run's steps only
