"""Lamb's C kernel (``lamb_native.c``) equals the reference bit for bit: parameters and moments.

The kernel visits each parameter once: the new moments and the float64 sums of squares of ``w``
and ``g_hat``, then the trust ratio and the update while the tensors are in cache. The shapes
cover what it walks whole (0-d, 1-element, vector tails) and what its threads split (at least
``TEAM_MIN_NUMEL`` elements, or every tensor in the build with a tiny threshold), and what it
leaves to the compiled passes (a gradient of another layout).
"""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import msoptim
from msoptim.kernels import lamb as kernels
from msoptim.kernels.lamb import lamb_fused, lamb_reference
from native_kernels import (
    MIXED_SHAPES,
    RANDOM_SHAPES,
    assert_builds,
    assert_bumps_versions,
    assert_compiled_steps_equal_eager,
    assert_default_and_fused_are_native,
    assert_steps_equal,
    column_major_matrices,
    moment_state,
    poisoned,
    random_case,
    split_build,
    torch_threads,
    without_compiler,
)
from test_fast_path import same_values

SHAPES = MIXED_SHAPES

needs_compiler = pytest.mark.skipif(
    kernels._load_native() is None, reason="no C compiler: Lamb runs its compiled passes"
)


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
    def step_options(step: int) -> dict:
        return {**_options(len(shapes)), **options, "step": torch.tensor(float(step))}

    assert_steps_equal(
        lamb_reference, lamb_fused, (moment_state(shapes), moment_state(shapes)), ("param", "m", "v"),
        step_options, steps=steps, grad_scale=grad_scale, grad_layout=grad_layout,
    )  # fmt: skip


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
    split_build(monkeypatch, kernels, openmp=openmp)
    with torch_threads(team_threads):
        _assert_steps_equal()
        _assert_steps_equal([(9,), (8,), (1,), (40, 3)], steps=2, weight_decay=0.0)


@needs_compiler
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.0, -0.0], ids=str)
def test_non_finite_zero_and_signed_zero_inputs_match_the_reference(value):
    """A NaN or infinite gradient makes a norm NaN or infinite (trust ratio 0 or the cap); zero
    gradients and zero weights take the ratio's 1 branches."""
    shapes = [(5,), (70001,), (3, 4), ()]

    poison = poisoned(value)
    _assert_steps_equal(shapes, grad_layout=poison, steps=2)
    _assert_steps_equal(shapes, grad_scale=0.0, steps=2)
    _assert_steps_equal(shapes, grad_scale=0.0, steps=2, weight_decay=0.0)
    for weights in ("zero", "infinite"):  # an infinite weight with decay: inf / inf -> ratio 0
        state = moment_state(shapes)
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
    params, m, v = moment_state([(5,), (3, 3)])
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
    params, m, v = moment_state(shapes)
    grads = [torch.randn(s) for s in shapes]
    for step in (1, 2):
        kwargs = {**_options(3, weight_decay=torch.tensor(0.01)), "step": torch.tensor(float(step))}
        with NoHostSync():
            lamb_fused(params, grads, m, v, **kwargs)
    assert native_calls == [3, 3]


@needs_compiler
def test_the_c_kernel_bumps_version_counters():
    params, m, v = moment_state([(6, 20), (3,)])
    grads = [torch.ones(6, 20), torch.ones(3)]
    options = {**_options(2), "step": torch.tensor(1.0)}
    step = lambda: lamb_fused(params, grads, m, v, **options)  # noqa: E731
    assert_bumps_versions(step, params[0], m[0], v[0])


def test_the_kernel_builds_wherever_there_is_a_compiler():
    """The tests above skip without a C compiler; with one, a failing build must not hide."""
    assert_builds(kernels, "lamb_native")


@needs_compiler
def test_the_default_on_cpu_is_the_c_kernel_and_false_keeps_the_reference(native_calls):
    """End to end through msoptim.Lamb (its decay filter, a dynamic lr): ``fused`` and ``foreach``
    unset, or ``fused=True``: every plain parameter in the C kernel (nothing to compile, the
    reference's bits); ``fused=False`` or ``foreach=False``: the reference."""
    shapes = {"conv.weight": (16, 8, 3, 3), "bn.gamma": (16,), "fc.weight": (300, 257),
              "fc.bias": (300,)}  # fmt: skip

    def run(**impl):
        gen = torch.Generator().manual_seed(3)
        params = [(n, torch.nn.Parameter(torch.randn(s, generator=gen))) for n, s in shapes.items()]
        lr = msoptim.PolynomialDecayLR(0.01, 0.001, 10, power=1.0)
        opt = msoptim.Lamb(params, lr, weight_decay=0.01, **impl)
        grads = torch.Generator().manual_seed(4)
        for _ in range(3):
            opt(tuple(torch.randn(p.shape, generator=grads) for _, p in params))
        return [p.detach() for _, p in params] + [t for s in opt.state.values() for t in s.values()]

    assert_default_and_fused_are_native(run, native_calls, [len(shapes)] * 3)


@needs_compiler
@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    shapes=RANDOM_SHAPES,
    weight_decay=st.sampled_from([0.0, 0.01, 0.5]),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    lr=st.sampled_from([1e-3, 0.1, 2.0]),
    team=st.booleans(),
)
def test_random_shapes_and_configs_equal_the_reference(shapes, weight_decay, scale, lr, team):
    """Random shape lists (tails around the 16-element vectors and 512-element chunks, tensors
    above the split threshold) and settings, with two threads; ``team`` builds the kernel that
    splits every tensor of 8 elements or more."""
    lr = torch.tensor(lr, dtype=torch.float32)
    run = functools.partial(
        _assert_steps_equal, shapes, steps=2, grad_scale=scale, weight_decay=weight_decay, lr=lr
    )
    assert random_case(kernels, run, team=team) == [len(shapes)] * 2


@needs_compiler
def test_under_torch_compile_the_default_is_the_reference_math(native_calls):
    """While dynamo traces ``opt.step``, Lamb's default takes the reference (a ctypes call cannot be
    traced); the results equal an eager default run's, which runs the C kernel."""
    shapes = {"conv.weight": (8, 4, 3, 3), "fc.weight": (30, 7), "fc.bias": (30,)}
    assert_compiled_steps_equal_eager(
        lambda named: msoptim.Lamb(named, 0.01, weight_decay=0.01), shapes
    )
    assert native_calls == [len(shapes)] * 3  # the eager run's steps only
