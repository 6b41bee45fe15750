"""SGD's C kernel (``sgd_native.c``, the CPU default) equals the reference bit for bit:
parameters, accumulators and first-step flags; with and without momentum, dampening and
Nesterov; one group or several sharing one call."""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import msoptim
from msoptim.kernels import sgd as kernels
from msoptim.kernels.sgd import sgd_native_or_reference, sgd_reference
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

needs_compiler = pytest.mark.skipif(
    kernels._load_native() is None, reason="no C compiler: SGD runs its other paths"
)


def _options(*, lr=0.05, **hyper):
    return {"lr": torch.tensor(lr, dtype=torch.float32), "momentum": 0.9, "dampening": 0.0,
            "nesterov": False, **hyper}  # fmt: skip


def _state(shapes, dtype=torch.float32, first="all"):
    """Parameters, accumulators and first-step flags: every element on its first step
    (``first="all"``), none, or every other one (``"mixed"``: a flag per element)."""
    params, accums, _ = moment_state(shapes, dtype=dtype)
    fill = {"all": 1.0, "none": 0.0, "mixed": 0.0}[first]
    stats = [torch.full(shape, fill, dtype=dtype) for shape in shapes]
    if first == "mixed":
        for stat in stats:
            stat.view(-1)[::2] = 1.0
    return params, accums, stats


def _assert_steps_equal(
    shapes=MIXED_SHAPES,
    *,
    steps=3,
    grad_layout=None,
    grad_scale=0.1,
    dtype=torch.float32,
    first="all",
    **options,
):
    state = _state(shapes, dtype, first)
    states = state, tuple([t.clone() for t in items] for items in state)
    assert_steps_equal(
        sgd_reference, sgd_native_or_reference, states, ("param", "accum", "stat"),
        lambda step: {**_options(), **options}, steps=steps, grad_scale=grad_scale,
        grad_layout=grad_layout,
    )  # fmt: skip


CONFIGS = [
    {},
    {"nesterov": True},
    {"dampening": 0.1},
    {"momentum": 0.0, "lr": torch.tensor(1.5)},
    {"momentum": 1.7, "dampening": 0.3, "lr": torch.tensor(3e-4)},
]


@needs_compiler
@pytest.mark.parametrize(
    "options", CONFIGS, ids=["plain", "nesterov", "dampening", "no-momentum", "large-momentum"]
)
@pytest.mark.parametrize("first", ["all", "none", "mixed"])
def test_the_c_kernel_equals_the_reference_bitwise(native_calls, threads, options, first):
    _assert_steps_equal(first=first, **options)
    assert native_calls == [len(MIXED_SHAPES)] * 3


@needs_compiler
def test_without_momentum_the_buffers_are_left_alone(native_calls):
    params, accums, stats = _state([(30,), (4, 4)], first="mixed")
    before = [t.clone() for t in (*accums, *stats)]
    versions = [t._version for t in (*accums, *stats)]
    grads = [torch.ones_like(p) for p in params]
    sgd_native_or_reference(params, grads, accums, stats, **_options(momentum=0.0))
    assert native_calls == [2]
    assert all(torch.equal(a, b) for a, b in zip(before, (*accums, *stats)))
    assert [t._version for t in (*accums, *stats)] == versions


@needs_compiler
@pytest.mark.parametrize("openmp", [True, False], ids=["openmp-workers", "own-threads"])
@pytest.mark.parametrize("team_threads", [2, 3])
def test_every_tensor_split_among_the_threads_equals_the_reference(
    monkeypatch, team_threads, openmp
):
    split_build(monkeypatch, kernels, openmp=openmp)
    with torch_threads(team_threads):
        _assert_steps_equal(first="mixed")
        _assert_steps_equal([(9,), (8,), (1,), (40, 3), (23,)], steps=2, nesterov=True)


@needs_compiler
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.0, -0.0], ids=str)
def test_non_finite_zero_and_signed_zero_inputs_match_the_reference(value):
    shapes = [(5,), (70001,), (3, 4), (), (16,)]
    poison = poisoned(value, last=True)
    for options in ({}, {"nesterov": True, "dampening": 0.2}, {"momentum": 0.0}):
        _assert_steps_equal(shapes, grad_layout=poison, steps=2, first="mixed", **options)
        _assert_steps_equal(shapes, grad_scale=0.0, steps=2, **options)


@needs_compiler
def test_other_layouts_and_dtypes_take_the_reference_with_its_bits(native_calls):
    assert_other_layouts_take_the_reference(_assert_steps_equal, native_calls)


@needs_compiler
def test_an_lr_the_kernel_cannot_read_sends_every_parameter_to_the_reference(native_calls):
    _assert_steps_equal([(30,), (4, 4)], steps=1, lr=torch.tensor(0.1, dtype=torch.float64))
    assert native_calls == []


def test_without_a_compiler_the_default_runs_the_reference(monkeypatch, tmp_path, native_calls):
    without_compiler(monkeypatch, tmp_path, kernels, "sgd_native")
    _assert_steps_equal([(30, 9), (7,), ()], steps=2)
    assert native_calls == []


@needs_compiler
def test_while_dynamo_traces_the_c_kernel_is_not_called(monkeypatch, native_calls):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    params, accums, stats = _state([(5,), (3, 3)])
    lists = (params, [torch.ones_like(p) for p in params], accums, stats)
    assert kernels._step_native(lists, **_options()) == [0, 1]
    assert native_calls == []


@needs_compiler
def test_the_step_never_syncs_with_the_host(native_calls):
    from test_compile import NoHostSync

    params, accums, stats = _state([(300, 9), (7,), ()])
    grads = [torch.randn(p.shape) for p in params]
    for _ in range(2):
        with NoHostSync():
            sgd_native_or_reference(params, grads, accums, stats, **_options())
    assert native_calls == [3, 3]


@needs_compiler
def test_the_c_kernel_bumps_version_counters():
    params, accums, stats = _state([(6, 20), (3,)])
    grads = [torch.ones(6, 20), torch.ones(3)]
    step = lambda: sgd_native_or_reference(params, grads, accums, stats, **_options())  # noqa: E731
    assert_bumps_versions(step, params[0], accums[0])
    assert_bumps_versions(step, stats[1])


def _run_optimizer(shapes, steps=3, **kwargs):
    gen = torch.Generator().manual_seed(3)
    named = [(n, torch.nn.Parameter(torch.randn(s, generator=gen))) for n, s in shapes.items()]
    lr = msoptim.PolynomialDecayLR(0.1, 0.01, 10, power=1.0)
    opt = msoptim.SGD(named, lr, momentum=0.9, weight_decay=1e-4, **kwargs)
    grads = torch.Generator().manual_seed(4)
    for _ in range(steps):
        opt(tuple(torch.randn(p.shape, generator=grads) for _, p in named))
    return [p.detach() for _, p in named] + [t for s in opt.state.values() for t in s.values()]


@needs_compiler
@pytest.mark.parametrize("nesterov", [False, True])
def test_the_default_on_cpu_is_the_c_kernel_and_the_others_keep_their_paths(native_calls, nesterov):
    """End to end through msoptim.SGD (weight decay in its pipeline, a schedule as lr): ``fused``
    and ``foreach`` unset, or ``fused=True``: the C kernel; ``fused=False``, ``foreach=False``,
    ``foreach=True``: not; the same bits, state included."""
    shapes = {"conv.weight": (16, 8, 3, 3), "bn.gamma": (16,), "fc.weight": (300, 257),
              "fc.bias": (301,)}  # fmt: skip
    run = functools.partial(_run_optimizer, shapes, nesterov=nesterov)
    assert_default_and_fused_are_native(run, native_calls, [4] * 3)


def test_the_kernel_builds_wherever_there_is_a_compiler():
    """The tests above skip without a C compiler; with one, a failing build must not hide."""
    assert_builds(kernels, "sgd_native")


@needs_compiler
@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    shapes=RANDOM_SHAPES,
    config=st.sampled_from(CONFIGS),
    first=st.sampled_from(["all", "none", "mixed"]),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    team=st.booleans(),
)
def test_random_shapes_and_configs_equal_the_reference(shapes, config, first, scale, team):
    run = functools.partial(
        _assert_steps_equal, shapes, steps=2, grad_scale=scale, first=first, **config
    )
    assert random_case(kernels, run, team=team) == [len(shapes)] * 2


@needs_compiler
def test_under_torch_compile_the_default_is_the_reference_math(native_calls):
    shapes = {"conv.weight": (8, 4, 3, 3), "fc.weight": (30, 7), "fc.bias": (30,)}
    assert_compiled_steps_equal_eager(
        lambda named: msoptim.SGD(named, 0.1, momentum=0.9, nesterov=True), shapes
    )
    assert native_calls == [len(shapes)] * 3  # the eager run's steps only


@needs_compiler
@pytest.mark.parametrize("impl", [{}, {"fused": True}], ids=["default", "fused"])
def test_groups_share_one_call_with_their_own_lrs(native_calls, impl):
    """MindSpore's grouped recipe (a table, a schedule, static lrs, weight decay in one group,
    gradient centralization in another): every group's plain parameters go to one C call, each
    with its group's lr; a transposed parameter and a float64 one take their groups' own kernels;
    the reference's bits."""
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
        opt = msoptim.SGD(groups, 0.05, momentum=0.9, dampening=0.1, **kwargs)
        grads = torch.Generator().manual_seed(8)
        for _ in range(3):
            opt(tuple(torch.randn(p.shape, generator=grads, dtype=p.dtype) for _, p in params))
        return [p.detach() for _, p in params] + [t for s in opt.state.values() for t in s.values()]

    expected = run(fused=False)
    assert native_calls == []
    got = run(**impl)
    for a, b in zip(expected, got):
        assert same_values(a, b)
    assert native_calls == [7] * 3  # every group's plain parameters, in one call a step
