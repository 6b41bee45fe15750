"""Momentum's C kernel (``momentum_native.c``, the CPU default) equals the reference bit for bit:
parameters and moments, plain and Nesterov, one group or several sharing one call."""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import msoptim
from msoptim.kernels import momentum as kernels
from msoptim.kernels.momentum import momentum_native_or_reference, momentum_reference
from native_kernels import (
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

SHAPES = [(), (1,), (7,), (9,), (33,), (2, 3), (300, 9), (64, 16, 3, 3), (70001,), (300, 257)]

needs_compiler = pytest.mark.skipif(
    kernels._load_native() is None, reason="no C compiler: Momentum runs its other paths"
)


def _options(*, lr=0.05, **hyper):
    return {"lr": torch.tensor(lr, dtype=torch.float32), "momentum": 0.9, "nesterov": False,
            **hyper}  # fmt: skip


def _assert_steps_equal(
    shapes=SHAPES, *, steps=3, grad_layout=None, grad_scale=0.1, dtype=torch.float32, **options
):
    params, moments, _ = moment_state(shapes, dtype=dtype)
    state = params, moments
    states = state, tuple([t.clone() for t in items] for items in state)
    assert_steps_equal(
        momentum_reference, momentum_native_or_reference, states, ("param", "moment"),
        lambda step: {**_options(), **options}, steps=steps, grad_scale=grad_scale,
        grad_layout=grad_layout,
    )  # fmt: skip


@needs_compiler
@pytest.mark.parametrize(
    "options",
    [{}, {"nesterov": True}, {"momentum": 0.0, "lr": torch.tensor(1.5)},
     {"momentum": 1.7, "nesterov": True, "lr": torch.tensor(3e-4)}],
    ids=["plain", "nesterov", "no-momentum", "large-momentum-nesterov"],
)  # fmt: skip
def test_the_c_kernel_equals_the_reference_bitwise(native_calls, threads, options):
    _assert_steps_equal(**options)
    assert native_calls == [len(SHAPES)] * 3


@needs_compiler
@pytest.mark.parametrize("openmp", [True, False], ids=["openmp-workers", "own-threads"])
@pytest.mark.parametrize("team_threads", [2, 3, 4])
def test_every_tensor_split_among_the_threads_equals_the_reference(
    monkeypatch, team_threads, openmp
):
    split_build(monkeypatch, kernels, openmp=openmp)
    with torch_threads(team_threads):
        _assert_steps_equal()
        _assert_steps_equal([(9,), (8,), (1,), (40, 3), (23,), (47,)], steps=2, nesterov=True)


@needs_compiler
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.0, -0.0], ids=str)
def test_non_finite_zero_and_signed_zero_inputs_match_the_reference(value):
    shapes = [(5,), (70001,), (3, 4), (), (16,)]

    poison = poisoned(value, last=True)
    for nesterov in (False, True):
        _assert_steps_equal(shapes, grad_layout=poison, steps=2, nesterov=nesterov)
        _assert_steps_equal(shapes, grad_scale=0.0, steps=2, nesterov=nesterov)


@needs_compiler
def test_other_layouts_and_dtypes_take_the_reference_with_its_bits(native_calls):
    assert_other_layouts_take_the_reference(_assert_steps_equal, native_calls)


@needs_compiler
def test_an_lr_the_kernel_cannot_read_sends_every_parameter_to_the_reference(native_calls):
    _assert_steps_equal([(30,), (4, 4)], steps=1, lr=torch.tensor(0.1, dtype=torch.float64))
    assert native_calls == []


def test_without_a_compiler_the_default_runs_the_reference(monkeypatch, tmp_path, native_calls):
    without_compiler(monkeypatch, tmp_path, kernels, "momentum_native")
    _assert_steps_equal([(30, 9), (7,), ()], steps=2)
    assert native_calls == []


@needs_compiler
def test_while_dynamo_traces_the_c_kernel_is_not_called(monkeypatch, native_calls):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    params, moments, _ = moment_state([(5,), (3, 3)])
    lists = (params, [torch.ones_like(p) for p in params], moments)
    assert kernels._step_native(lists, **_options()) == [0, 1]
    assert native_calls == []


@needs_compiler
def test_the_step_never_syncs_with_the_host(native_calls):
    from test_compile import NoHostSync

    params, moments, _ = moment_state([(300, 9), (7,), ()])
    grads = [torch.randn(p.shape) for p in params]
    for _ in range(2):
        with NoHostSync():
            momentum_native_or_reference(params, grads, moments, **_options())
    assert native_calls == [3, 3]


@needs_compiler
def test_the_c_kernel_bumps_version_counters():
    params, moments, _ = moment_state([(6, 20), (3,)])
    grads = [torch.ones(6, 20), torch.ones(3)]
    step = lambda: momentum_native_or_reference(params, grads, moments, **_options())  # noqa: E731
    assert_bumps_versions(step, params[0], moments[0])


def _run_optimizer(shapes, steps=3, **kwargs):
    gen = torch.Generator().manual_seed(3)
    named = [(n, torch.nn.Parameter(torch.randn(s, generator=gen))) for n, s in shapes.items()]
    lr = msoptim.PolynomialDecayLR(0.1, 0.01, 10, power=1.0)
    opt = msoptim.Momentum(named, lr, 0.9, weight_decay=1e-4, **kwargs)
    grads = torch.Generator().manual_seed(4)
    for _ in range(steps):
        opt(tuple(torch.randn(p.shape, generator=grads) for _, p in named))
    return [p.detach() for _, p in named] + [t for s in opt.state.values() for t in s.values()]


@needs_compiler
@pytest.mark.parametrize("nesterov", [False, True])
def test_the_default_on_cpu_is_the_c_kernel_and_the_others_keep_their_paths(native_calls, nesterov):
    """End to end through msoptim.Momentum (weight decay in its pipeline, a schedule as lr):
    ``fused`` and ``foreach`` unset, or ``fused=True``: the C kernel; ``fused=False``,
    ``foreach=False``, ``foreach=True``: not; the same bits, state included."""
    shapes = {"conv.weight": (16, 8, 3, 3), "bn.gamma": (16,), "fc.weight": (300, 257),
              "fc.bias": (301,)}  # fmt: skip
    run = functools.partial(_run_optimizer, shapes, use_nesterov=nesterov)
    assert_default_and_fused_are_native(run, native_calls, [4] * 3)


def test_the_kernel_builds_wherever_there_is_a_compiler():
    """The tests above skip without a C compiler; with one, a failing build must not hide."""
    assert_builds(kernels, "momentum_native")


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
    lr = torch.tensor(lr, dtype=torch.float32)
    run = functools.partial(
        _assert_steps_equal, shapes, steps=2, grad_scale=scale, nesterov=nesterov, lr=lr
    )
    assert random_case(kernels, run, team=team) == [len(shapes)] * 2


@needs_compiler
def test_under_torch_compile_the_default_is_the_reference_math(native_calls):
    shapes = {"conv.weight": (8, 4, 3, 3), "fc.weight": (30, 7), "fc.bias": (30,)}
    assert_compiled_steps_equal_eager(lambda named: msoptim.Momentum(named, 0.1, 0.9), shapes)
    assert native_calls == [len(shapes)] * 3  # the eager run's steps only


@needs_compiler
def test_groups_share_one_call_with_their_own_lrs(native_calls):
    """MindSpore's grouped recipe (a table, a schedule, static lrs, weight decay in one group,
    gradient centralization in another): every default group's plain parameters go to one C
    call, each with its group's lr; a transposed parameter and a float64 one take their groups'
    own kernels; the reference's bits."""
    gen = torch.Generator().manual_seed(7)
    shapes = [(16, 16, 3, 3), (9,), (30, 7), (5, 6), (64,), (1,), (300, 257), (33,), (12, 4)]
    named = [(f"p{i}.weight", torch.randn(s, generator=gen)) for i, s in enumerate(shapes)]
    named[3] = ("p3.weight", named[3][1].t())  # not what the kernel walks
    named[4] = ("p4.weight", named[4][1].double())

    def run(**kwargs):
        params = [(n, torch.nn.Parameter(t.clone())) for n, t in named]
        table = msoptim.cosine_decay_lr(0.01, 0.1, 100, 10, 10)
        groups = [
            {"params": params[:3], "lr": table, "grad_centralization": True},
            {"params": params[3:5], "lr": msoptim.CosineDecayLR(0.01, 0.1, 100),
             "weight_decay": 0.01},
            {"params": params[5:7], "lr": 0.2},
            {"params": params[7:8]},
            {"params": params[8:], "lr": 0.01, "weight_decay": 0.001},
        ]  # fmt: skip
        opt = msoptim.Momentum(groups, 0.05, 0.9, **kwargs)
        grads = torch.Generator().manual_seed(8)
        for _ in range(3):
            opt(tuple(torch.randn(p.shape, generator=grads, dtype=p.dtype) for _, p in params))
        return [p.detach() for _, p in params] + [t for s in opt.state.values() for t in s.values()]

    expected = run(fused=False)
    assert native_calls == []
    got = run()
    for a, b in zip(expected, got):
        assert same_values(a, b)
    assert native_calls == [7] * 3  # every group's plain parameters, in one call a step


@needs_compiler
def test_fused_groups_share_one_c_call_and_compile_only_what_it_cannot_take(
    native_calls, monkeypatch
):
    """``fused=True`` on CPU: every group's plain parameters go to one C call, each with its
    group's lr; a transposed parameter takes the compiled kernels; the reference's bits."""
    compiled = []
    real = kernels.fused_apply

    def spy(update, tensors, *args, **kwargs):
        compiled.append(len(tensors[0]))
        return real(update, tensors, *args, **kwargs)

    gen = torch.Generator().manual_seed(9)
    values = [torch.randn(s, generator=gen) for s in [(16, 16, 3, 3), (9,), (30, 7), (1,), (33,)]]
    values[2] = values[2].t()

    def run(**kwargs):
        params = [(f"p{i}.weight", torch.nn.Parameter(v.clone())) for i, v in enumerate(values)]
        groups = [
            {"params": params[:2], "lr": msoptim.cosine_decay_lr(0.01, 0.1, 100, 10, 10)},
            {"params": params[2:3], "lr": msoptim.CosineDecayLR(0.01, 0.1, 100)},
            {"params": params[3:], "lr": 0.2, "weight_decay": 0.01},
        ]
        opt = msoptim.Momentum(groups, 0.05, 0.9, use_nesterov=True, **kwargs)
        grads = torch.Generator().manual_seed(8)
        for _ in range(3):
            opt(tuple(torch.randn(p.shape, generator=grads) for _, p in params))
        return [p.detach() for _, p in params] + [t for s in opt.state.values() for t in s.values()]

    expected = run(fused=False)
    monkeypatch.setattr(kernels, "fused_apply", spy)
    for a, b in zip(expected, run(fused=True)):
        assert same_values(a, b)
    assert native_calls == [4] * 3
    assert compiled == [1] * 3
