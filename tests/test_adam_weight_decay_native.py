"""AdamWeightDecay's C kernel (``adam_weight_decay_native.c``) equals the reference bit for bit:
parameters and both moments.

The kernel makes one vectorized pass per parameter (float32 fused multiply-adds for the moments,
the update in float64 rounded once). The shapes cover what it walks whole (0-d, 1-element, vector
tails) and what its threads split (at least ``TEAM_MIN_NUMEL`` elements, or every tensor in the
build with a tiny threshold), and what it leaves to the compiled kernel or the reference (another
layout, another dtype).
"""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import msoptim
from msoptim.kernels import adam_weight_decay as kernels
from msoptim.kernels.adam_weight_decay import (
    adam_weight_decay_fused,
    adam_weight_decay_native_or_reference,
    adam_weight_decay_reference,
)
from native_kernels import (
    MIXED_SHAPES,
    RANDOM_SHAPES,
    assert_builds,
    assert_bumps_versions,
    assert_compiled_steps_equal_eager,
    assert_default_and_fused_are_native,
    assert_other_layouts_take_the_reference,
    assert_steps_equal,
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
    kernels._load_native() is None, reason="no C compiler: AdamWeightDecay runs its other paths"
)


def _options(*, weight_decay=0.01, lr=0.05, **hyper):
    return {
        "lr": torch.tensor(lr, dtype=torch.float32),
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-6,
        "weight_decay": weight_decay,
        **hyper,
    }


def _assert_steps_equal(
    shapes=SHAPES,
    *,
    steps=3,
    grad_layout=None,
    grad_scale=0.1,
    kernel=adam_weight_decay_fused,
    dtype=torch.float32,
    **options,
):
    states = moment_state(shapes, dtype=dtype), moment_state(shapes, dtype=dtype)
    assert_steps_equal(
        adam_weight_decay_reference, kernel, states, ("param", "m", "v"),
        lambda step: {**_options(), **options},
        steps=steps, grad_scale=grad_scale, grad_layout=grad_layout,
    )  # fmt: skip


@needs_compiler
@pytest.mark.parametrize("kernel", [adam_weight_decay_fused, adam_weight_decay_native_or_reference])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"weight_decay": 0.0},
        {"weight_decay": torch.tensor(0.02)},
        {"beta1": 0.5, "beta2": 0.9, "eps": 1e-3, "lr": torch.tensor(1.5)},
    ],
    ids=["decay", "no-decay", "scheduled-decay", "other-hyper"],
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
    """A build whose threads split every tensor of 8 elements or more: each updates its share,
    without waiting for the others; the bits stay the reference's."""
    split_build(monkeypatch, kernels, openmp=openmp)
    with torch_threads(team_threads):
        _assert_steps_equal()
        _assert_steps_equal([(9,), (8,), (1,), (40, 3)], steps=2, weight_decay=0.0)


@needs_compiler
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.0, -0.0], ids=str)
def test_non_finite_zero_and_signed_zero_inputs_match_the_reference(value):
    """NaN and infinite gradients and weights (``wd·w`` of an infinite weight, even with the
    decay off: ``inf·0`` is NaN), zero gradients (``0/(0 + ε)``) and signed zeros."""
    shapes = [(5,), (70001,), (3, 4), ()]

    poison = poisoned(value)
    for weight_decay in (0.01, 0.0):
        _assert_steps_equal(shapes, grad_layout=poison, steps=2, weight_decay=weight_decay)
        _assert_steps_equal(shapes, grad_scale=0.0, steps=2, weight_decay=weight_decay)
        expected, got = moment_state(shapes), moment_state(shapes)
        for params in (expected[0], got[0]):
            for w in params:
                w.view(-1)[0] = value
        grads = [torch.randn(s) * 0.1 for s in shapes]
        kwargs = _options(weight_decay=weight_decay)
        adam_weight_decay_reference(expected[0], grads, expected[1], expected[2], **kwargs)
        adam_weight_decay_native_or_reference(got[0], grads, got[1], got[2], **kwargs)
        for a, b in zip(expected, got):
            for x, y in zip(a, b):
                assert same_values(x, y), (value, weight_decay)


@needs_compiler
def test_other_layouts_and_dtypes_take_the_reference_with_its_bits(native_calls):
    """The default leaves transposed gradients and float64 tensors to the reference; the C kernel
    takes the others."""
    kernel = adam_weight_decay_native_or_reference
    assert_other_layouts_take_the_reference(_assert_steps_equal, native_calls, kernel=kernel)


def test_without_a_compiler_the_default_runs_the_reference(monkeypatch, tmp_path, native_calls):
    without_compiler(monkeypatch, tmp_path, kernels, "adam_weight_decay_native")
    _assert_steps_equal([(30, 9), (7,), ()], steps=2, kernel=adam_weight_decay_native_or_reference)
    assert native_calls == []


@needs_compiler
def test_while_dynamo_traces_the_c_kernel_is_not_called(monkeypatch, native_calls):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    params, m, v = moment_state([(5,), (3, 3)])
    lists = (params, [torch.ones_like(p) for p in params], m, v)
    assert kernels._step_native(lists, **_options()) == [0, 1]
    assert native_calls == []


@needs_compiler
def test_the_step_never_syncs_with_the_host(native_calls):
    """The lr and a scheduled weight decay are read by the kernel, not the host."""
    from test_compile import NoHostSync

    shapes = [(300, 9), (7,), ()]
    params, m, v = moment_state(shapes)
    grads = [torch.randn(s) for s in shapes]
    for decay in (torch.tensor(0.01), 0.0):
        with NoHostSync():
            adam_weight_decay_fused(params, grads, m, v, **_options(weight_decay=decay))
    assert native_calls == [3, 3]


@needs_compiler
def test_the_c_kernel_bumps_version_counters():
    params, m, v = moment_state([(6, 20), (3,)])
    grads = [torch.ones(6, 20), torch.ones(3)]
    step = lambda: adam_weight_decay_fused(params, grads, m, v, **_options())  # noqa: E731
    assert_bumps_versions(step, params[0], m[0], v[0])


def _run_optimizer(shapes, steps=3, **impl):
    gen = torch.Generator().manual_seed(3)
    named = [(n, torch.nn.Parameter(torch.randn(s, generator=gen))) for n, s in shapes.items()]
    lr = msoptim.PolynomialDecayLR(0.01, 0.001, 10, power=1.0)
    opt = msoptim.AdamWeightDecay(named, lr, weight_decay=0.01, **impl)
    grads = torch.Generator().manual_seed(4)
    for _ in range(steps):
        opt(tuple(torch.randn(p.shape, generator=grads) for _, p in named))
    return [p.detach() for _, p in named]


@needs_compiler
def test_the_default_on_cpu_is_the_c_kernel_and_false_keeps_the_reference(native_calls):
    """End to end through msoptim.AdamWeightDecay (its decay filter: ``gamma``/``beta`` names are
    not decayed, in the same call as the others; a schedule as lr). ``fused`` and ``foreach`` unset, or
    ``fused=True``: the C kernel; ``fused=False`` or ``foreach=False``: the reference; the same
    bits."""
    shapes = {"conv.weight": (16, 8, 3, 3), "bn.gamma": (16,), "fc.weight": (300, 257),
              "fc.bias": (300,)}  # fmt: skip
    assert_default_and_fused_are_native(
        functools.partial(_run_optimizer, shapes), native_calls, [4] * 3
    )


def test_the_kernel_builds_wherever_there_is_a_compiler():
    """The tests above skip without a C compiler; with one, a failing build must not hide."""
    assert_builds(kernels, "adam_weight_decay_native")


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
    """Random shape lists and settings, with two threads; ``team`` builds the kernel that splits
    every tensor of 8 elements or more."""
    lr = torch.tensor(lr, dtype=torch.float32)
    run = functools.partial(
        _assert_steps_equal, shapes, steps=2, grad_scale=scale, weight_decay=weight_decay, lr=lr
    )
    assert random_case(kernels, run, team=team) == [len(shapes)] * 2


@needs_compiler
def test_under_torch_compile_the_default_is_the_reference_math(native_calls):
    """While dynamo traces ``opt.step``, the default takes the reference (a ctypes call cannot be
    traced); the results equal an eager default run's, which runs the C kernel."""
    shapes = {"conv.weight": (8, 4, 3, 3), "fc.weight": (30, 7), "fc.bias": (30,)}
    assert_compiled_steps_equal_eager(
        lambda named: msoptim.AdamWeightDecay(named, 0.01, weight_decay=0.01), shapes
    )
    assert native_calls == [len(shapes)] * 3  # the eager run's steps only


@needs_compiler
@pytest.mark.parametrize("impl", [{}, {"fused": True}], ids=["default", "fused"])
def test_groups_share_one_call_with_their_own_lrs_and_decays(native_calls, impl):
    """Groups with a table, a schedule and static lrs, with a scheduled, a static and no weight
    decay (its decay flag off): every group's plain parameters go to one C call, each with its
    group's lr and decay; a transposed parameter and a float64 one take their groups' own
    kernels; parameters and state equal the reference's."""
    gen = torch.Generator().manual_seed(7)
    shapes = [(16, 8, 3, 3), (9,), (30, 7), (5, 6), (64,), (1,), (300, 257), (33,)]
    names = ["conv.weight", "bn.gamma", "fc.weight", "odd.weight", "wide.weight", "bn.beta",
             "big.weight", "last.bias"]  # fmt: skip
    named = [(n, torch.randn(s, generator=gen)) for n, s in zip(names, shapes)]
    named[3] = (names[3], named[3][1].t())  # not what the kernel walks
    named[4] = (names[4], named[4][1].double())

    def run(**kwargs):
        params = [(n, torch.nn.Parameter(t.clone())) for n, t in named]
        table = msoptim.cosine_decay_lr(0.001, 0.01, 100, 10, 10)
        schedule = msoptim.CosineDecayLR(0.001, 0.01, 100)
        groups = [
            {"params": params[:3], "lr": table, "weight_decay": 0.01},
            {"params": params[3:5], "lr": schedule, "weight_decay": schedule},
            {"params": params[5:7], "lr": 0.02},
            {"params": params[7:], "weight_decay": 0.5},
        ]
        opt = msoptim.AdamWeightDecay(groups, 0.005, **kwargs)
        grads = torch.Generator().manual_seed(8)
        for _ in range(3):
            opt(tuple(torch.randn(p.shape, generator=grads, dtype=p.dtype) for _, p in params))
        return [p.detach() for _, p in params] + [t for s in opt.state.values() for t in s.values()]

    expected = run(foreach=False)
    got = run(**impl)
    for a, b in zip(expected, got):
        assert same_values(a, b)
    assert native_calls == [6] * 3  # every group's plain parameters, in one call a step
