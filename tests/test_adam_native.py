"""Adam's C kernel (``adam_native.c``) equals the reference bit for bit: parameters, both moments
and the power accumulators.

The kernel advances every parameter's powers and computes its bias-corrected lr, then makes one
vectorized pass per parameter: float32 vector blocks and MindSpore's scalar loop (the last
``numel % 8`` elements, float64 division) at the end of each tensor, also when the threads split
the tensor so that the loop's elements fall in any thread's share.
"""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import msoptim
from msoptim.kernels import adam as kernels
from msoptim.kernels.adam import adam_fused, adam_native_or_reference, adam_reference
from native_kernels import (
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

SHAPES = [(), (1,), (7,), (9,), (33,), (2, 3), (300, 9), (64, 16, 3, 3), (70001,), (300, 257)]

needs_compiler = pytest.mark.skipif(
    kernels._load_native() is None, reason="no C compiler: Adam runs its other paths"
)


def _state(shapes, seed: int = 1, dtype=torch.float32):
    """Parameters, moments and powers (0-d, as nn.Adam's; part way through a run)."""
    beta1_powers = [torch.tensor(0.9**i) for i in range(len(shapes))]
    beta2_powers = [torch.tensor(0.999**i) for i in range(len(shapes))]
    return (*moment_state(shapes, seed, dtype), beta1_powers, beta2_powers)


def _options(*, lr=0.05, **hyper):
    return {
        "lr": torch.tensor(lr, dtype=torch.float32),
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "nesterov": False,
        **hyper,
    }


def _assert_steps_equal(
    shapes=SHAPES,
    *,
    steps=3,
    grad_layout=None,
    grad_scale=0.1,
    kernel=adam_fused,
    dtype=torch.float32,
    state=None,
    **options,
):
    state = state or _state(shapes, dtype=dtype)
    states = state, tuple([t.clone() for t in items] for items in state)
    names = ("param", "m", "v", "beta1_power", "beta2_power")
    assert_steps_equal(
        adam_reference, kernel, states, names, lambda step: {**_options(), **options},
        steps=steps, grad_scale=grad_scale, grad_layout=grad_layout,
    )  # fmt: skip


@needs_compiler
@pytest.mark.parametrize("kernel", [adam_fused, adam_native_or_reference])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"nesterov": True},
        {"beta1": 0.5, "beta2": 0.9, "eps": 1e-3, "lr": torch.tensor(1.5)},
        {"beta1": 0.5, "eps": 1e-3, "nesterov": True},
    ],
    ids=["plain", "nesterov", "other-hyper", "nesterov-other-hyper"],
)
def test_the_c_kernel_equals_the_reference_bitwise(native_calls, threads, options, kernel):
    _assert_steps_equal(kernel=kernel, **options)
    assert native_calls == [len(SHAPES)] * 3


@needs_compiler
@pytest.mark.parametrize("openmp", [True, False], ids=["openmp-workers", "own-threads"])
@pytest.mark.parametrize("team_threads", [2, 3, 4])
def test_every_tensor_split_among_the_threads_equals_the_reference(
    monkeypatch, team_threads, openmp
):
    """A build whose threads split every tensor of 8 elements or more: the scalar loop's elements
    are in the last thread's share (or straddle two), and stay float64 there."""
    split_build(monkeypatch, kernels, openmp=openmp)
    with torch_threads(team_threads):
        _assert_steps_equal()
        _assert_steps_equal([(9,), (8,), (1,), (40, 3), (23,), (47,)], steps=2, nesterov=True)


@needs_compiler
def test_the_scalar_loop_is_the_last_numel_mod_8_elements(native_calls):
    """The float64 scalar loop and the float32 blocks round differently: with values where they
    disagree, a kernel that moved the boundary by one element would fail. Elements are chosen so
    that the float32 quotient ``(lr_t·m)/(√v + ε)`` is inexact."""
    shapes = [(17,), (8,), (15,), (1,)]
    state = _state(shapes)
    for moment in state[1]:
        moment.fill_(1.0 / 3.0)
    _assert_steps_equal(shapes, state=state, steps=4, grad_scale=1.0)
    assert native_calls == [4] * 4


@needs_compiler
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.0, -0.0], ids=str)
def test_non_finite_zero_and_signed_zero_inputs_match_the_reference(value):
    """NaN and infinite gradients (an infinite ``v``: ``m/∞``), zero gradients and signed zeros,
    in the vector blocks and in the scalar loop."""
    shapes = [(5,), (70001,), (3, 4), (), (16,)]

    poison = poisoned(value, last=True)
    for nesterov in (False, True):
        _assert_steps_equal(shapes, grad_layout=poison, steps=2, nesterov=nesterov)
        _assert_steps_equal(shapes, grad_scale=0.0, steps=2, nesterov=nesterov)


@needs_compiler
def test_other_layouts_dtypes_and_powers_take_the_reference_with_its_bits(native_calls):
    """The default leaves transposed gradients and float64 tensors to the reference, and every
    parameter when a power accumulator is not a float32 scalar; the C kernel takes the rest."""
    shapes = [(300, 9), (7,), (64, 16, 3, 3), (40, 40)]
    kernel = adam_native_or_reference
    _assert_steps_equal(shapes, grad_layout=column_major_matrices, steps=2, kernel=kernel)
    assert native_calls == [2, 2]
    state = _state(shapes, dtype=torch.float64)
    _assert_steps_equal(shapes, steps=1, kernel=kernel, dtype=torch.float64, state=state)
    state = _state(shapes)
    state[3][1] = state[3][1].double()
    _assert_steps_equal(shapes, steps=1, kernel=kernel, state=state)
    assert native_calls == [2, 2]


def test_without_a_compiler_the_default_runs_the_reference(monkeypatch, tmp_path, native_calls):
    without_compiler(monkeypatch, tmp_path, kernels, "adam_native")
    _assert_steps_equal([(30, 9), (7,), ()], steps=2, kernel=adam_native_or_reference)
    assert native_calls == []


@needs_compiler
def test_while_dynamo_traces_the_c_kernel_is_not_called(monkeypatch, native_calls):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    params, *state = _state([(5,), (3, 3)])
    lists = (params, [torch.ones_like(p) for p in params], *state)
    assert kernels._step_native(lists, **_options()) == [0, 1]
    assert native_calls == []


@needs_compiler
def test_the_step_never_syncs_with_the_host(native_calls):
    """The lr and the powers are read and written by the kernel, not the host."""
    from test_compile import NoHostSync

    shapes = [(300, 9), (7,), ()]
    params, *state = _state(shapes)
    grads = [torch.randn(s) for s in shapes]
    for _ in range(2):
        with NoHostSync():
            adam_fused(params, grads, *state, **_options())
    assert native_calls == [3, 3]


@needs_compiler
def test_the_c_kernel_bumps_version_counters():
    params, m, v, p1, p2 = _state([(6, 20), (3,)])
    grads = [torch.ones(6, 20), torch.ones(3)]
    step = lambda: adam_fused(params, grads, m, v, p1, p2, **_options())  # noqa: E731
    assert_bumps_versions(step, params[0], m[0], v[0], p1[0], p2[0])


def _run_optimizer(shapes, steps=3, **kwargs):
    gen = torch.Generator().manual_seed(3)
    named = [(n, torch.nn.Parameter(torch.randn(s, generator=gen))) for n, s in shapes.items()]
    lr = msoptim.PolynomialDecayLR(0.01, 0.001, 10, power=1.0)
    opt = msoptim.Adam(named, lr, weight_decay=0.01, **kwargs)
    grads = torch.Generator().manual_seed(4)
    for _ in range(steps):
        opt(tuple(torch.randn(p.shape, generator=grads) for _, p in named))
    return [p.detach() for _, p in named] + [t for s in opt.state.values() for t in s.values()]


@needs_compiler
@pytest.mark.parametrize("nesterov", [False, True])
def test_the_default_on_cpu_is_the_c_kernel_and_false_keeps_the_reference(native_calls, nesterov):
    """End to end through msoptim.Adam (weight decay in its pipeline, a schedule as lr): ``fused``
    and ``foreach`` unset, or ``fused=True``: the C kernel; ``fused=False`` or ``foreach=False``:
    the reference; the same bits, state included."""
    shapes = {"conv.weight": (16, 8, 3, 3), "bn.gamma": (16,), "fc.weight": (300, 257),
              "fc.bias": (301,)}  # fmt: skip
    run = functools.partial(_run_optimizer, shapes, use_nesterov=nesterov)
    assert_default_and_fused_are_native(run, native_calls, [4] * 3)


def test_the_kernel_builds_wherever_there_is_a_compiler():
    """The tests above skip without a C compiler; with one, a failing build must not hide."""
    assert_builds(kernels, "adam_native")


@needs_compiler
@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    shapes=RANDOM_SHAPES,
    nesterov=st.booleans(),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    lr=st.sampled_from([1e-3, 0.1, 2.0]),
    team=st.booleans(),
)
def test_random_shapes_and_configs_equal_the_reference(shapes, nesterov, scale, lr, team):
    """Random shape lists (scalar loops of 0-7 elements) and settings, with two threads; ``team``
    builds the kernel that splits every tensor of 8 elements or more."""
    lr = torch.tensor(lr, dtype=torch.float32)
    run = functools.partial(
        _assert_steps_equal, shapes, steps=2, grad_scale=scale, nesterov=nesterov, lr=lr
    )
    assert random_case(kernels, run, team=team) == [len(shapes)] * 2


@needs_compiler
def test_under_torch_compile_the_default_is_the_reference_math(native_calls):
    """While dynamo traces ``opt.step``, the default takes the reference (a ctypes call cannot be
    traced); the results equal an eager default run's, which runs the C kernel."""
    shapes = {"conv.weight": (8, 4, 3, 3), "fc.weight": (30, 7), "fc.bias": (30,)}
    assert_compiled_steps_equal_eager(lambda named: msoptim.Adam(named, 0.01), shapes)
    assert native_calls == [len(shapes)] * 3  # the eager run's steps only


@needs_compiler
@pytest.mark.parametrize("impl", [{}, {"fused": True}], ids=["default", "fused"])
def test_groups_share_one_call_with_their_own_lrs(native_calls, impl):
    """MindSpore's grouped recipe (a table, a schedule, static lrs) with weight decay in one group:
    every group's plain parameters go to one C call, each with its group's lr; a transposed
    parameter and a float64 one in the middle groups take their groups' own kernels; parameters
    and state equal the reference's, bit for bit."""
    gen = torch.Generator().manual_seed(7)
    shapes = [(16, 8, 3, 3), (9,), (30, 7), (5, 6), (64,), (1,), (300, 257), (33,)]
    named = [(f"p{i}.weight", torch.randn(s, generator=gen)) for i, s in enumerate(shapes)]
    named[3] = ("p3.weight", named[3][1].t())  # not what the kernel walks
    named[4] = ("p4.weight", named[4][1].double())

    def run(**kwargs):
        params = [(n, torch.nn.Parameter(t.clone())) for n, t in named]
        table = msoptim.cosine_decay_lr(0.001, 0.01, 100, 10, 10)
        groups = [
            {"params": params[:3], "lr": table},
            {"params": params[3:5], "lr": msoptim.CosineDecayLR(0.001, 0.01, 100),
             "weight_decay": 0.01},
            {"params": params[5:7], "lr": 0.02},
            {"params": params[7:]},
        ]  # fmt: skip
        opt = msoptim.Adam(groups, 0.005, **kwargs)
        grads = torch.Generator().manual_seed(8)
        for _ in range(3):
            opt(tuple(torch.randn(p.shape, generator=grads, dtype=p.dtype) for _, p in params))
        return [p.detach() for _, p in params] + [t for s in opt.state.values() for t in s.values()]

    expected = run(foreach=False)
    got = run(**impl)
    for a, b in zip(expected, got):
        assert same_values(a, b)
    assert native_calls == [6] * 3  # every group's plain parameters, in one call a step
