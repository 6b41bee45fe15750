"""Tests of the dynamic-LR functions (``msoptim.lr_functions``).

Contract: each function returns ``list[float]`` bit-identical to MindSpore 2.10's float64 Python
result, validates its arguments in MindSpore's order with MindSpore's exception types, and names the
function and the offending argument in every message. Golden replay lives in ``test_golden.py``; here
are MindSpore's own documented outputs, the validation matrix, the inputs MindSpore accepts although
they look wrong, and hypothesis properties of each formula.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msoptim.lr_functions import (
    cosine_decay_lr,
    exponential_decay_lr,
    inverse_decay_lr,
    natural_exp_decay_lr,
    piecewise_constant_lr,
    polynomial_decay_lr,
    warmup_lr,
)

PROPERTY = settings(max_examples=50, deadline=None, derandomize=True)

# --------------------------------------------------------------------------------------------------
# Exact values: the outputs printed in MindSpore's own docstrings (full float64 precision).


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (
            lambda: piecewise_constant_lr([2, 5, 10], [0.1, 0.05, 0.01]),
            [0.1, 0.1, 0.05, 0.05, 0.05, 0.01, 0.01, 0.01, 0.01, 0.01],
        ),
        (
            lambda: exponential_decay_lr(0.1, 0.9, 6, 2, 1),
            [
                0.1,
                0.1,
                0.09000000000000001,
                0.09000000000000001,
                0.08100000000000002,
                0.08100000000000002,
            ],
        ),
        (
            lambda: natural_exp_decay_lr(0.1, 0.9, 6, 2, 2, True),
            [0.1, 0.1, 0.1, 0.1, 0.016529888822158657, 0.016529888822158657],
        ),
        (
            lambda: inverse_decay_lr(0.1, 0.5, 6, 1, 1, True),
            [0.1, 0.06666666666666667, 0.05, 0.04, 0.03333333333333333, 0.028571428571428574],
        ),
        (
            lambda: cosine_decay_lr(0.01, 0.1, 6, 2, 2),
            [0.1, 0.1, 0.05500000000000001, 0.05500000000000001, 0.01, 0.01],
        ),
        (
            lambda: polynomial_decay_lr(0.1, 0.01, 6, 2, 2, 0.5),
            [0.1, 0.1, 0.07363961030678928, 0.07363961030678928, 0.01, 0.01],
        ),
        (lambda: warmup_lr(0.1, 6, 2, 2), [0.0, 0.0, 0.05, 0.05, 0.1, 0.1]),
    ],
    ids=["piecewise", "exponential", "natural_exp", "inverse", "cosine", "polynomial", "warmup"],
)
def test_mindspore_documented_outputs_bit_exact(call: Any, expected: list[float]) -> None:
    result = call()
    assert result == expected
    assert all(type(x) is float for x in result)


def test_natural_exp_without_stair_ignores_decay_epoch() -> None:
    # MindSpore's code (not its docstring): no division by decay_epoch without is_stair.
    assert natural_exp_decay_lr(0.1, 0.9, 8, 1, 1) == natural_exp_decay_lr(0.1, 0.9, 8, 1, 5)
    assert natural_exp_decay_lr(0.1, 0.9, 3, 1, 3)[1] == 0.1 * math.e**-0.9


def test_polynomial_update_decay_epoch_extends_horizon() -> None:
    lrs = polynomial_decay_lr(0.1, 0.01, 10, 1, 3, 1.0, update_decay_epoch=True)
    rounded = [round(x, 10) for x in lrs]
    assert rounded == [0.1, 0.07, 0.04, 0.01, 0.04, 0.025, 0.01, 0.03, 0.02, 0.01]


def test_polynomial_end_above_start_grows() -> None:
    lrs = polynomial_decay_lr(0.01, 0.1, 5, 1, 4, 1.0)
    assert lrs == sorted(lrs)
    assert lrs[-1] == 0.1


def test_warmup_accepts_zero_learning_rate() -> None:
    assert warmup_lr(0.0, 3, 1, 2) == [0.0, 0.0, 0.0]


# --------------------------------------------------------------------------------------------------
# Inputs MindSpore accepts although they look wrong: we accept them too (documented in the docstring).


def test_piecewise_of_no_milestones_is_empty_as_in_mindspore() -> None:
    assert piecewise_constant_lr([], []) == piecewise_constant_lr((), ()) == []


def test_piecewise_equal_milestones_give_an_empty_segment() -> None:
    assert piecewise_constant_lr([2, 2, 4], [0.1, 0.05, 0.01]) == [0.1, 0.1, 0.01, 0.01]


def test_piecewise_accepts_tuples() -> None:
    assert piecewise_constant_lr((2, 5), (0.1, 0.2)) == [0.1, 0.1, 0.2, 0.2, 0.2]


def test_piecewise_accepts_negative_learning_rates() -> None:
    assert piecewise_constant_lr([1, 3], [-0.1, 0.2]) == [-0.1, 0.2, 0.2]


def test_piecewise_returns_plain_floats() -> None:
    class MyFloat(float):
        pass

    result = piecewise_constant_lr([2], [MyFloat(0.5)])
    assert result == [0.5, 0.5]
    assert all(type(x) is float for x in result)


# --------------------------------------------------------------------------------------------------
# Validation matrix: (function, valid kwargs, overrides, exception type, message regex).

DECAY = {
    "learning_rate": 0.1,
    "decay_rate": 0.9,
    "total_step": 6,
    "step_per_epoch": 2,
    "decay_epoch": 1,
}
COSINE = {"min_lr": 0.01, "max_lr": 0.1, "total_step": 6, "step_per_epoch": 2, "decay_epoch": 2}
POLY = {
    "learning_rate": 0.1,
    "end_learning_rate": 0.01,
    "total_step": 6,
    "step_per_epoch": 2,
    "decay_epoch": 2,
    "power": 0.5,
}
WARMUP = {"learning_rate": 0.1, "total_step": 6, "step_per_epoch": 2, "warmup_epoch": 2}
PIECEWISE = {"milestone": [2, 5], "learning_rates": [0.1, 0.05]}

DECAY_FUNCTIONS = [exponential_decay_lr, natural_exp_decay_lr, inverse_decay_lr]


def _decay_cases() -> list[Any]:
    cases = []
    for fn in DECAY_FUNCTIONS:
        name = fn.__name__
        for override, exc, match in [
            ({"learning_rate": 1}, TypeError, r"'learning_rate' must be a positive float.*1\.0"),
            ({"learning_rate": True}, TypeError, r"'learning_rate' must be a positive float"),
            ({"learning_rate": -0.1}, ValueError, r"'learning_rate' must be a finite float > 0"),
            ({"learning_rate": 0.0}, ValueError, r"'learning_rate' must be a finite float > 0"),
            ({"learning_rate": math.inf}, ValueError, r"'learning_rate'"),
            ({"learning_rate": math.nan}, ValueError, r"'learning_rate'"),
            ({"decay_rate": 0.0}, ValueError, r"'decay_rate' must be a finite float > 0"),
            ({"decay_rate": -1.0}, ValueError, r"'decay_rate'"),
            ({"decay_rate": 1}, TypeError, r"'decay_rate' must be a positive float"),
            ({"decay_rate": "0.9"}, TypeError, r"'decay_rate'"),
            ({"total_step": 6.0}, TypeError, r"'total_step' must be a positive int"),
            ({"total_step": 0}, ValueError, r"'total_step' must be a positive int \(> 0\)"),
            ({"total_step": -6}, ValueError, r"'total_step'"),
            ({"step_per_epoch": True}, TypeError, r"'step_per_epoch' must be a positive int"),
            ({"step_per_epoch": 2.0}, TypeError, r"'step_per_epoch'"),
            ({"decay_epoch": "1"}, TypeError, r"'decay_epoch'"),
            ({"decay_epoch": 0}, ValueError, r"'decay_epoch'"),
            ({"is_stair": 1}, TypeError, r"'is_stair' must be a bool"),
            ({"is_stair": None}, TypeError, r"'is_stair'"),
        ]:
            cases.append(pytest.param(fn, {**DECAY, **override}, exc, f"^{name}: {match}"))
    return cases


def _other_cases() -> list[Any]:
    raw = [
        # cosine_decay_lr
        (
            cosine_decay_lr,
            COSINE,
            {"min_lr": 0},
            TypeError,
            r"'min_lr' must be a non-negative float",
        ),
        (cosine_decay_lr, COSINE, {"min_lr": False}, TypeError, r"'min_lr'"),
        (
            cosine_decay_lr,
            COSINE,
            {"min_lr": -0.1},
            ValueError,
            r"'min_lr' must be a finite float >=",
        ),
        (
            cosine_decay_lr,
            COSINE,
            {"max_lr": "0.1"},
            TypeError,
            r"'max_lr' must be a positive float",
        ),
        (cosine_decay_lr, COSINE, {"max_lr": 1}, TypeError, r"'max_lr'.*1\.0"),
        (cosine_decay_lr, COSINE, {"max_lr": -0.1}, ValueError, r"'max_lr'"),
        (cosine_decay_lr, COSINE, {"total_step": 0}, ValueError, r"'total_step'"),
        (cosine_decay_lr, COSINE, {"step_per_epoch": 1.5}, TypeError, r"'step_per_epoch'"),
        (cosine_decay_lr, COSINE, {"decay_epoch": True}, TypeError, r"'decay_epoch'"),
        (cosine_decay_lr, COSINE, {"min_lr": 0.2}, ValueError, r"'max_lr' must be greater than "),
        (cosine_decay_lr, COSINE, {"min_lr": 0.1}, ValueError, r"'max_lr'.*'min_lr' \(0\.1\)"),
        # polynomial_decay_lr
        (polynomial_decay_lr, POLY, {"learning_rate": 1}, TypeError, r"'learning_rate'"),
        (polynomial_decay_lr, POLY, {"learning_rate": 0.0}, ValueError, r"'learning_rate'"),
        (polynomial_decay_lr, POLY, {"end_learning_rate": 0}, TypeError, r"'end_learning_rate'"),
        (
            polynomial_decay_lr,
            POLY,
            {"end_learning_rate": -0.01},
            ValueError,
            r"'end_learning_rate'",
        ),
        (
            polynomial_decay_lr,
            POLY,
            {"power": True},
            TypeError,
            r"'power' must be a positive float",
        ),
        (polynomial_decay_lr, POLY, {"power": 2}, TypeError, r"'power'.*2\.0"),
        (polynomial_decay_lr, POLY, {"power": -1.0}, ValueError, r"'power'"),
        (polynomial_decay_lr, POLY, {"power": 0.0}, ValueError, r"'power'"),
        (polynomial_decay_lr, POLY, {"total_step": 2.5}, TypeError, r"'total_step'"),
        (polynomial_decay_lr, POLY, {"decay_epoch": 0}, ValueError, r"'decay_epoch'"),
        (polynomial_decay_lr, POLY, {"update_decay_epoch": 1}, TypeError, r"'update_decay_epoch'"),
        # warmup_lr
        (warmup_lr, WARMUP, {"learning_rate": 1}, TypeError, r"'learning_rate'.*1\.0"),
        (warmup_lr, WARMUP, {"learning_rate": -0.1}, ValueError, r"'learning_rate'"),
        (warmup_lr, WARMUP, {"warmup_epoch": 0}, ValueError, r"'warmup_epoch'"),
        (warmup_lr, WARMUP, {"warmup_epoch": 2.0}, TypeError, r"'warmup_epoch'"),
        (warmup_lr, WARMUP, {"total_step": True}, TypeError, r"'total_step'"),
        (warmup_lr, WARMUP, {"step_per_epoch": -1}, ValueError, r"'step_per_epoch'"),
        # piecewise_constant_lr
        (piecewise_constant_lr, PIECEWISE, {"milestone": {2, 5}}, TypeError, r"'milestone'"),
        (
            piecewise_constant_lr,
            PIECEWISE,
            {"milestone": 5},
            TypeError,
            r"'milestone' must be a list",
        ),
        (piecewise_constant_lr, PIECEWISE, {"learning_rates": 0.1}, TypeError, r"'learning_rates'"),
        (
            piecewise_constant_lr,
            PIECEWISE,
            {"learning_rates": [0.1]},
            ValueError,
            r"'learning_rates' must be as long as",
        ),
        (piecewise_constant_lr, PIECEWISE, {"milestone": [2.0, 5]}, TypeError, r"'milestone\[0\]'"),
        (
            piecewise_constant_lr,
            PIECEWISE,
            {"milestone": [2, True]},
            TypeError,
            r"'milestone\[1\]'",
        ),
        (piecewise_constant_lr, PIECEWISE, {"milestone": [0, 5]}, ValueError, r"'milestone\[0\]'"),
        (
            piecewise_constant_lr,
            PIECEWISE,
            {"learning_rates": [1, 2]},
            TypeError,
            r"'learning_rates\[0\]'",
        ),
        (
            piecewise_constant_lr,
            PIECEWISE,
            {"learning_rates": [0.1, True]},
            TypeError,
            r"'learning_rates\[1\]'",
        ),
        (
            piecewise_constant_lr,
            PIECEWISE,
            {"learning_rates": [0.1, math.nan]},
            ValueError,
            r"'learning_rates\[1\]' must be a finite",
        ),
        (
            piecewise_constant_lr,
            PIECEWISE,
            {"milestone": [5, 2]},
            ValueError,
            r"'milestone' must be non-decreasing",
        ),
    ]
    return [
        pytest.param(fn, {**base, **override}, exc, f"^{fn.__name__}: {match}")
        for fn, base, override, exc, match in raw
    ]


@pytest.mark.parametrize(("fn", "kwargs", "exc", "match"), _decay_cases() + _other_cases())
def test_validation(fn: Any, kwargs: dict[str, Any], exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        fn(**kwargs)


@pytest.mark.parametrize("exc_type", [TypeError, ValueError])
def test_messages_follow_the_template(exc_type: type) -> None:
    bad = {TypeError: {"decay_rate": 1}, ValueError: {"decay_rate": -1.0}}[exc_type]
    with pytest.raises(exc_type) as info:
        inverse_decay_lr(**{**DECAY, **bad})
    message = str(info.value)
    assert message.startswith("inverse_decay_lr: 'decay_rate' must be ")
    assert ", but got " in message
    assert "(int)" in message or "(float)" in message


def test_cross_argument_messages_name_values_and_fix() -> None:
    with pytest.raises(ValueError, match=r"milestone\[1\]=3 is smaller than milestone\[0\]=5"):
        piecewise_constant_lr([5, 3], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"It has 3; give exactly one learning rate per milestone"):
        piecewise_constant_lr([5], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"swap them"):
        cosine_decay_lr(0.1, 0.1, 6, 2, 2)


@pytest.mark.parametrize(
    ("fn", "kwargs", "exc", "match"),
    [
        # ints are checked before floats in the exponential family
        (exponential_decay_lr, {**DECAY, "learning_rate": 1, "total_step": 0}, ValueError, "total"),
        (inverse_decay_lr, {**DECAY, "decay_rate": 0.0, "decay_epoch": 1.0}, TypeError, "decay_ep"),
        (natural_exp_decay_lr, {**DECAY, "decay_rate": 1, "is_stair": 1}, TypeError, "decay_rate"),
        # cosine: the cross-argument rule comes last; min_lr is checked first
        (cosine_decay_lr, {**COSINE, "min_lr": 0.5, "total_step": 0}, ValueError, "total_step"),
        (cosine_decay_lr, {**COSINE, "min_lr": -1.0, "max_lr": 1}, ValueError, "min_lr"),
        # polynomial: floats before ints, power before total_step
        (polynomial_decay_lr, {**POLY, "power": 1, "total_step": 0}, TypeError, "power"),
        (polynomial_decay_lr, {**POLY, "end_learning_rate": 1, "power": 0.0}, TypeError, "end_"),
        # warmup: warmup_epoch before total_step
        (warmup_lr, {**WARMUP, "warmup_epoch": 0, "total_step": 1.0}, ValueError, "warmup_epoch"),
        # piecewise: lengths before items; milestone[k] before learning_rates[k] before order
        (piecewise_constant_lr, {"milestone": [2.0], "learning_rates": []}, ValueError, "as long"),
        (
            piecewise_constant_lr,
            {"milestone": [3, 1], "learning_rates": [1, 0.2]},
            TypeError,
            r"s\[",
        ),
        (
            piecewise_constant_lr,
            {"milestone": [3, 1], "learning_rates": [0.1, 2]},
            TypeError,
            r"s\[",
        ),
    ],
)
def test_first_failing_argument_in_mindspore_order_wins(
    fn: Any, kwargs: dict[str, Any], exc: type, match: str
) -> None:
    with pytest.raises(exc, match=match):
        fn(**kwargs)


# --------------------------------------------------------------------------------------------------
# Properties.

learning_rates = st.floats(1e-4, 1.0)
decay_rates = st.floats(0.05, 0.99)
totals = st.integers(1, 60)
per_epoch = st.integers(1, 5)
epochs = st.integers(1, 12)


def _epoch(i: int, step_per_epoch: int) -> int:
    return math.floor(i / step_per_epoch)


def _non_increasing(values: list[float]) -> bool:
    return all(a >= b for a, b in itertools.pairwise(values))


def _constant_within_epochs(values: list[float], step_per_epoch: int) -> bool:
    return all(v == values[i - i % step_per_epoch] for i, v in enumerate(values))


@PROPERTY
@given(learning_rates, decay_rates, totals, per_epoch, epochs, st.booleans())
def test_decay_family_properties(
    lr: float, rate: float, total: int, spe: int, decay_epoch: int, stair: bool
) -> None:
    for fn in DECAY_FUNCTIONS:
        values = fn(lr, rate, total, spe, decay_epoch, stair)
        assert len(values) == total
        assert all(type(v) is float and math.isfinite(v) for v in values)
        assert values[0] == lr
        assert all(0.0 < v <= lr for v in values)
        assert _non_increasing(values)
        assert _constant_within_epochs(values, spe)
        if stair:
            assert _constant_within_epochs(values, spe * decay_epoch)


@PROPERTY
@given(learning_rates, st.floats(1.0, 2.0), totals, per_epoch, epochs)
def test_exponential_growth_rate_is_non_decreasing(
    lr: float, rate: float, total: int, spe: int, decay_epoch: int
) -> None:
    values = exponential_decay_lr(lr, rate, total, spe, decay_epoch)
    assert values == sorted(values)


@PROPERTY
@given(learning_rates, decay_rates, totals, per_epoch, epochs)
def test_stair_and_smooth_agree_at_block_boundaries(
    lr: float, rate: float, total: int, spe: int, decay_epoch: int
) -> None:
    for fn in DECAY_FUNCTIONS:
        smooth = fn(lr, rate, total, spe, decay_epoch)
        stair = fn(lr, rate, total, spe, decay_epoch, True)
        for i in range(0, total, spe * decay_epoch):
            assert stair[i] == pytest.approx(smooth[i], rel=1e-15)


@PROPERTY
@given(st.floats(0.0, 0.5), st.floats(0.01, 1.0), totals, per_epoch, epochs)
def test_cosine_properties(min_frac: float, max_lr: float, total: int, spe: int, de: int) -> None:
    min_lr = min_frac * max_lr
    values = cosine_decay_lr(min_lr, max_lr, total, spe, de)
    assert len(values) == total
    slack = 4 * math.ulp(max_lr)
    assert all(min_lr <= v <= max_lr + slack for v in values)
    assert _non_increasing(values)
    assert _constant_within_epochs(values, spe)
    # no restarts: exactly min_lr once decay_epoch epochs have passed
    assert all(v == min_lr for i, v in enumerate(values) if _epoch(i, spe) >= de)


@PROPERTY
@given(
    learning_rates,
    st.floats(0.0, 2.0),
    totals,
    per_epoch,
    epochs,
    st.sampled_from([0.5, 1.0, 2.0, 3.0]) | st.floats(0.1, 5.0),
    st.booleans(),
)
def test_polynomial_properties(
    lr: float, end_frac: float, total: int, spe: int, de: int, power: float, update: bool
) -> None:
    end = end_frac * lr
    values = polynomial_decay_lr(lr, end, total, spe, de, power, update)
    assert len(values) == total
    assert values[0] == pytest.approx(lr, rel=1e-15)
    low, high = min(lr, end), max(lr, end)
    slack = 4 * math.ulp(high)
    assert all(low - slack <= v <= high + slack for v in values)
    assert _constant_within_epochs(values, spe)
    for i, v in enumerate(values):
        epoch = _epoch(i, spe)
        if (epoch >= de and not update) or (update and epoch > 0 and epoch % de == 0):
            assert v == end
    if not update:
        assert _non_increasing(values if lr >= end else [-v for v in values])


@PROPERTY
@given(st.floats(0.0, 1.0), totals, per_epoch, epochs)
def test_warmup_properties(lr: float, total: int, spe: int, warmup_epoch: int) -> None:
    values = warmup_lr(lr, total, spe, warmup_epoch)
    assert len(values) == total
    assert values[: min(spe, total)] == [0.0] * min(spe, total)
    assert values == sorted(values)
    assert all(0.0 <= v <= lr + math.ulp(lr) for v in values)
    assert _constant_within_epochs(values, spe)


@PROPERTY
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=6),
    st.lists(st.floats(-1.0, 1.0), min_size=6, max_size=6),
)
def test_piecewise_segments(widths: list[int], rates: list[float]) -> None:
    widths[0] += 1  # milestones must be positive; later zero widths make equal milestones
    milestones = [sum(widths[: k + 1]) for k in range(len(widths))]
    rates = rates[: len(widths)]
    values = piecewise_constant_lr(milestones, rates)
    assert len(values) == milestones[-1]
    assert values == [rate for width, rate in zip(widths, rates) for _ in range(width)]
