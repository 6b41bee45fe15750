"""Properties over random inputs (hypothesis, pinned: derandomized, small budgets, CPU only).

1. **Groups are separate optimizers.** For a random partition of random parameters into groups,
   each with its own static lr and weight decay, one grouped optimizer equals one optimizer per
   group, bit for bit (parameters and every per-parameter state buffer).
2. **Resume through ``state_dict``.** With a random lr kind per group (static, table or schedule)
   and a random split point, run → ``state_dict()`` → ``torch.save``/``torch.load(weights_only)``
   → fresh optimizer over fresh parameters → continue equals the straight run, bit for bit.
3. **Reference kernel == foreach kernel** for every optimizer with a foreach path (LARS's gradient
   rescaling included), on random shape lists (0-d, empty, non-contiguous included), parameters
   and state compared bit for bit.
4. **No NaN from valid arguments.** Every LR function and schedule, for random valid arguments
   (schedules at steps across the whole int32 range), returns no NaN, and stays within its
   documented range. One known exception, reported and marked: ``PolynomialDecayLR`` with
   ``update_decay_steps=True`` and a non-integral power returns NaN at some steps past 2**24,
   where float32 rounding makes ``step / horizon`` exceed 1 (MindSpore computes the same ops).
"""

from __future__ import annotations

import inspect
import io
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import msoptim
from optim_db import OPTIMIZER_CASES

PINNED = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: For properties parametrized over every optimizer: a few examples each.
PER_OPTIMIZER = settings(PINNED, max_examples=5)

GROUP_CONFIGS = [
    (case, config)
    for case in OPTIMIZER_CASES
    for config in case.configs
    if "groups" in case.supports and "learning_rate" in config.kwargs
]
FOREACH_CONFIGS = [
    (case, config)
    for case in OPTIMIZER_CASES
    for config in case.configs
    if "foreach" in case.supports and "foreach" in inspect.signature(case.cls.__init__).parameters
]


def config_id(item) -> str:
    case, config = item
    return f"{case.name}-{config.desc}"


shapes = st.lists(
    st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple), min_size=1, max_size=4
)


def make_params(shape_list, seed: int, transpose: bool = False):
    generator = torch.Generator().manual_seed(seed)
    params = []
    for index, shape in enumerate(shape_list):
        value = torch.randn(shape, generator=generator)
        if transpose and value.ndim == 2:
            value = torch.randn(shape[1], shape[0], generator=generator).t()  # non-contiguous
        params.append((f"layer{index}.weight", nn.Parameter(value)))
    return params


def gradients(params, step: int):
    generator = torch.Generator().manual_seed(1000 + step)
    return tuple(0.5 * torch.randn(p.shape, generator=generator) for _, p in params)


def per_param_state(opt) -> dict[str, torch.Tensor]:
    return {
        name: value.detach().clone()
        for name, value in opt.ms_state_dict().items()
        if "." in name and not name.startswith("learning_rate")
    }


def equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and bool(
            torch.equal(a, b)
            or (
                torch.isnan(a).any()
                and torch.equal(torch.nan_to_num(a, 7.0), torch.nan_to_num(b, 7.0))
            )
        )
    )


def quiet(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make()


# ------------------------------------------------------------------- 1. groups == separate


@pytest.mark.parametrize("item", GROUP_CONFIGS, ids=[config_id(i) for i in GROUP_CONFIGS])
@PER_OPTIMIZER
@given(shape_list=shapes.filter(lambda s: len(s) >= 2), data=st.data())
def test_random_group_layouts_equal_separate_optimizers(item, shape_list, data):
    case, config = item
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("learning_rate", "weight_decay")}
    n_groups = data.draw(st.integers(1, len(shape_list)), label="groups")
    owner = data.draw(
        st.lists(
            st.integers(0, n_groups - 1), min_size=len(shape_list), max_size=len(shape_list)
        ).filter(lambda o: set(o) == set(range(n_groups))),
        label="owner",
    )
    lrs = data.draw(
        st.lists(st.sampled_from([0.1, 0.05, 0.01, 0.003]), min_size=n_groups, max_size=n_groups),
        label="lrs",
    )
    wds = data.draw(
        st.lists(st.sampled_from([0.0, 1e-4, 0.01]), min_size=n_groups, max_size=n_groups),
        label="wds",
    )
    grouped_params = make_params(shape_list, seed=1)
    separate_params = make_params(shape_list, seed=1)
    members = [[i for i, o in enumerate(owner) if o == g] for g in range(n_groups)]
    grouped = quiet(
        lambda: case.cls(
            [
                {"params": [grouped_params[i] for i in m], "lr": lrs[g], "weight_decay": wds[g]}
                for g, m in enumerate(members)
            ],
            learning_rate=lrs[0],
            **kwargs,
        )
    )
    separate = [
        quiet(
            lambda m=m, g=g: case.cls(
                [{"params": [separate_params[i] for i in m], "weight_decay": wds[g]}],
                learning_rate=lrs[g],
                **kwargs,
            )
        )
        for g, m in enumerate(members)
    ]
    order = [i for m in members for i in m]  # grouped.parameters order
    for step in range(3):
        grads = gradients(grouped_params, step)
        grouped(tuple(grads[i] for i in order))
        for opt, m in zip(separate, members):
            opt(tuple(grads[i] for i in m))
    for (name, a), (_, b) in zip(grouped_params, separate_params):
        assert torch.equal(a, b), name
    merged = {k: v for opt in separate for k, v in per_param_state(opt).items()}
    for name, value in per_param_state(grouped).items():
        assert equal(value, merged[name]), name


# ------------------------------------------------------------------- 2. resume bit-identically

STEPS = 8
SCHEDULES = [
    lambda: msoptim.CosineDecayLR(0.01, 0.1, 6),
    lambda: msoptim.WarmUpLR(0.1, 3),
    lambda: msoptim.ExponentialDecayLR(0.1, 0.8, 2, is_stair=True),
    lambda: msoptim.PolynomialDecayLR(0.1, 0.01, 5, 0.5, update_decay_steps=True),
    lambda: msoptim.NaturalExpDecayLR(0.1, 0.2, 3),
    lambda: msoptim.InverseDecayLR(0.1, 0.5, 2),
]
lr_specs = st.one_of(
    st.tuples(st.just("static"), st.sampled_from([0.1, 0.02, 0.005])),
    st.tuples(st.just("tensor"), st.sampled_from([0.1, 0.03])),
    st.tuples(
        st.just("table"), st.lists(st.floats(0.0, 0.25, width=32), min_size=STEPS, max_size=STEPS)
    ),
    st.tuples(st.just("schedule"), st.integers(0, len(SCHEDULES) - 1)),
)


def make_lr(spec):
    kind, value = spec
    if kind == "static":
        return value
    if kind == "tensor":
        return torch.tensor(value)
    if kind == "table":
        return list(value)
    return SCHEDULES[value]()


@pytest.mark.parametrize("name", ["Momentum", "Adam", "RMSProp", "ASGD", "Rprop", "AdaMax"])
@settings(PINNED, max_examples=8)
@given(
    top=lr_specs,
    group_specs=st.lists(st.one_of(st.none(), lr_specs), min_size=1, max_size=3),
    split=st.integers(1, STEPS - 1),
    ordered=st.booleans(),
)
def test_random_lr_kinds_resume_bit_identically(name, top, group_specs, split, ordered):
    def build(seed):
        params = make_params([(3, 4), (4,), (2, 2, 2)][: len(group_specs)], seed)
        groups = []
        for (param_name, param), spec in zip(params, group_specs):
            group = {"params": [(param_name, param)], "weight_decay": 0.01}
            if spec is not None:
                group["lr"] = make_lr(spec)
            groups.append(group)
        if ordered:
            groups.append({"order_params": list(reversed(params))})
        extra = {"momentum": 0.9} if name == "Momentum" else {}
        opt = quiet(lambda: getattr(msoptim, name)(groups, learning_rate=make_lr(top), **extra))
        return params, opt

    def run(params, opt, start, stop):
        by_name = dict(params)
        for step in range(start, stop):
            grads = dict(zip(by_name, gradients(params, step)))
            opt(tuple(grads[n] for n in opt.parameter_names))

    straight_params, straight = build(0)
    run(straight_params, straight, 0, STEPS)

    first_params, first = build(0)
    run(first_params, first, 0, split)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed_params, resumed = build(5)
    with torch.no_grad():
        for (_, a), (_, b) in zip(resumed_params, first_params):
            a.copy_(b)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert int(resumed.global_step) == split
    run(resumed_params, resumed, split, STEPS)
    for (n, a), (_, b) in zip(straight_params, resumed_params):
        assert torch.equal(a, b), n
    ours, theirs = straight.ms_state_dict(), resumed.ms_state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert equal(ours[key], theirs[key]), key


# ------------------------------------------------------------------ 3. reference == foreach


@pytest.mark.parametrize("item", FOREACH_CONFIGS, ids=[config_id(i) for i in FOREACH_CONFIGS])
@PER_OPTIMIZER
@given(shape_list=shapes, transpose=st.booleans())
def test_reference_kernel_equals_foreach_kernel(item, shape_list, transpose):
    case, config = item
    reference_params = make_params(shape_list, seed=3, transpose=transpose)
    foreach_params = make_params(shape_list, seed=3, transpose=transpose)
    reference = quiet(lambda: case.cls(reference_params, **config.kwargs, foreach=False))
    fast = quiet(lambda: case.cls(foreach_params, **config.kwargs, foreach=True))
    for step in range(3):
        grads = gradients(reference_params, step)
        reference(grads)
        fast(tuple(g.clone() for g in grads))
        for (name, a), (_, b) in zip(reference_params, foreach_params):
            assert equal(a.detach(), b.detach()), f"step {step}: {name}"
        mine, theirs = reference.ms_state_dict(), fast.ms_state_dict()
        for key in mine:
            assert equal(mine[key], theirs[key]), f"step {step}: {key}"


@PER_OPTIMIZER
@given(shape_list=shapes, transpose=st.booleans(), use_clip=st.booleans())
def test_lars_reference_equals_foreach(shape_list, transpose, use_clip):
    runs = []
    for foreach in (False, True):
        params = make_params(shape_list, seed=4, transpose=transpose)
        inner = msoptim.Momentum(params, 0.1, 0.9, weight_decay=0.01, foreach=foreach)
        lars = msoptim.LARS(inner, use_clip=use_clip, foreach=foreach)
        for step in range(3):
            lars(gradients(params, step))
        runs.append((params, lars.ms_state_dict()))
    (params_a, state_a), (params_b, state_b) = runs
    for (name, a), (_, b) in zip(params_a, params_b):
        assert equal(a.detach(), b.detach()), name
    for key in state_a:
        assert equal(state_a[key], state_b[key]), key


# ---------------------------------------------------- 4. LR functions and schedules: no NaN

positive = st.floats(1e-6, 10.0)
rates = st.floats(1e-3, 2.0)
totals, per_epoch, epochs = st.integers(1, 300), st.integers(1, 20), st.integers(1, 50)


def check_list(values, low: float, high: float) -> None:
    """Not NaN, and within [low, high] up to float64 rounding of the larger bound."""
    slack = 1e-12 * max(abs(low), abs(high))
    for value in values:
        assert not math.isnan(value)
        assert low - slack <= value <= high + slack, (value, low, high)


@PINNED
@given(lr=positive, rate=rates, total=totals, spe=per_epoch, epoch=epochs, stair=st.booleans())
def test_decay_functions_never_give_nan(lr, rate, total, spe, epoch, stair):
    exponential = msoptim.exponential_decay_lr(lr, rate, total, spe, epoch, stair)
    check_list(exponential, 0.0, lr * max(1.0, rate) ** (total / spe / epoch + 1))
    check_list(msoptim.natural_exp_decay_lr(lr, rate, total, spe, epoch, stair), 0.0, lr)
    check_list(msoptim.inverse_decay_lr(lr, rate, total, spe, epoch, stair), 0.0, lr)


@PINNED
@given(
    low=st.floats(0.0, 1.0),
    span=st.floats(1e-6, 10.0),
    end=st.floats(0.0, 10.0),
    power=st.floats(1e-3, 5.0),
    total=totals,
    spe=per_epoch,
    epoch=epochs,
    update=st.booleans(),
)
def test_cosine_polynomial_warmup_functions_never_give_nan(
    low, span, end, power, total, spe, epoch, update
):
    high = low + span
    check_list(msoptim.cosine_decay_lr(low, high, total, spe, epoch), low, high)
    polynomial = msoptim.polynomial_decay_lr(high, end, total, spe, epoch, power, update)
    check_list(polynomial, min(high, end), max(high, end))
    check_list(msoptim.warmup_lr(high, total, spe, epoch), 0.0, high)


@PINNED
@given(
    milestones=st.lists(st.integers(1, 20), min_size=1, max_size=6),
    rates=st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6),
)
def test_piecewise_constant_never_gives_nan(milestones, rates):
    milestones = sorted(milestones)
    values = msoptim.piecewise_constant_lr(milestones, rates[: len(milestones)])
    check_list(values, 0.0, 1.0)
    assert len(values) == milestones[-1]


int32_steps = st.one_of(st.integers(0, 1000), st.integers(0, 2**24), st.integers(2**24, 2**31 - 1))


def check_value(value: torch.Tensor, low: float, high: float) -> None:
    """Not NaN, and within [low, high] as float32 sees them, up to a few ulps of the larger."""
    assert value.dtype == torch.float32
    assert value.ndim == 0
    number = float(value)
    assert not math.isnan(number)
    low32, high32 = float(np.float32(low)), float(np.float32(high))
    slack = 1e-6 * max(abs(low32), abs(high32)) + float(np.finfo(np.float32).smallest_subnormal)
    assert low32 - slack <= number <= high32 + slack, (number, low, high)


@PINNED
@given(
    lr=positive,
    rate=st.floats(1e-3, 1.0),
    growth=st.floats(1.0, 2.0),
    steps=st.integers(1, 10**6),
    stair=st.booleans(),
    step=int32_steps,
)
def test_decay_schedules_never_give_nan_over_int32(lr, rate, growth, steps, stair, step):
    for cls in (msoptim.ExponentialDecayLR, msoptim.NaturalExpDecayLR, msoptim.InverseDecayLR):
        check_value(cls(lr, rate, steps, stair)(step), 0.0, lr)
    growing = msoptim.ExponentialDecayLR(lr, growth, steps, stair)(step)
    assert not bool(torch.isnan(growing))  # may overflow to inf (a valid float32 result)


@PINNED
@given(
    low=st.floats(0.0, 1.0),
    span=st.floats(1e-6, 10.0),
    end=st.floats(0.0, 10.0),
    power=st.floats(1e-3, 5.0),
    steps=st.integers(1, 2**31 - 1),
    step=int32_steps,
)
def test_cosine_polynomial_warmup_schedules_never_give_nan_over_int32(
    low, span, end, power, steps, step
):
    high = low + span
    check_value(msoptim.CosineDecayLR(low, high, steps)(step), low, high)
    check_value(msoptim.WarmUpLR(high, steps)(step), 0.0, high)
    bounds = (min(high, end), max(high, end))
    check_value(msoptim.PolynomialDecayLR(high, end, steps, power)(step), *bounds)
    # update_decay_steps: exact below 2**24 steps (see the marked test below for past it)
    short = step % 2**24
    check_value(msoptim.PolynomialDecayLR(high, end, steps, power, True)(short), *bounds)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "known, reported: float32 step / (decay_steps * ceil(step / decay_steps)) can exceed 1 "
        "past 2**24 steps, and (1 - p) ** power is NaN for a negative base; MindSpore evaluates "
        "the same float32 ops. A clamp of 1 - p at 0 would fix it."
    ),
)
def test_polynomial_update_decay_steps_is_finite_past_2_24_steps():
    schedule = msoptim.PolynomialDecayLR(0.1, 0.01, 5, 0.5, update_decay_steps=True)
    assert not bool(torch.isnan(schedule(20_971_926)))
