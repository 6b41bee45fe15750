"""Tests of the learning-rate schedule modules (``msoptim.schedules``).

Contract: ``schedule(step)`` accepts a Python int or an integer tensor (0-d or shape ``(1,)``) and
returns a 0-d float32 tensor on the step's device, equal to MindSpore 2.10's float32 result; it is
computed with tensor ops only (no host sync, ``torch.compile(fullgraph=True)`` works); construction
validates in MindSpore's order with MindSpore's exception types; a schedule is a frozen, picklable
module. Golden replay lives in ``test_golden.py``. Here: a scalar float32 reference model of
MindSpore's CPU kernels (bit-exact), the correspondence with the float64 lr functions, the validation
matrix, step normalisation, module behaviour and hypothesis properties.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import pickle
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from msoptim import lr_functions
from msoptim.schedules import (
    CosineDecayLR,
    ExponentialDecayLR,
    InverseDecayLR,
    LearningRateSchedule,
    NaturalExpDecayLR,
    PolynomialDecayLR,
    WarmUpLR,
    as_step_tensor,
)
from powf_reference import glibc_powf

PROPERTY = settings(max_examples=50, deadline=None, derandomize=True)
EPS32 = 2.0**-24  # float32 unit roundoff
TINY32 = 2.0**-126  # smallest normal float32: absolute slack where results underflow

# --------------------------------------------------------------------------------------------------
# A scalar reference model of MindSpore's float32 CPU evaluation, written as plainly as possible:
# numpy float32 scalars for + - * / (IEEE, one rounding each), float64 sin rounded once, and C
# ``powf`` itself (MindSpore's ``Pow`` kernel calls it). The modules compute the same thing
# branch-free on tensors; the two must agree bit for bit.

f32 = np.float32
LIBM_POWF = glibc_powf()


def _ref_pow(base: float, exponent: float) -> np.float32:
    return f32(LIBM_POWF(f32(base), f32(exponent)))


def reference(schedule: LearningRateSchedule, step: int) -> np.float32:
    s = f32(step)
    if isinstance(schedule, ExponentialDecayLR):
        p = f32(s / f32(schedule.decay_steps))
        if schedule.is_stair:
            p = f32(math.floor(p))
        return f32(f32(schedule.learning_rate) * _ref_pow(schedule.decay_rate, p))
    if isinstance(schedule, NaturalExpDecayLR):
        p = s
        if schedule.is_stair:
            steps = f32(schedule.decay_steps)
            p = f32(f32(math.floor(f32(p / steps))) * steps)
        exponent = f32(f32(-schedule.decay_rate) * p)
        return f32(f32(schedule.learning_rate) * _ref_pow(math.e, exponent))
    if isinstance(schedule, InverseDecayLR):
        p = f32(s / f32(schedule.decay_steps))
        if schedule.is_stair:
            p = f32(math.floor(p))
        denominator = f32(f32(1.0) + f32(f32(schedule.decay_rate) * p))
        return f32(f32(f32(1.0) / denominator) * f32(schedule.learning_rate))
    if isinstance(schedule, CosineDecayLR):
        p = f32(min(step, schedule.decay_steps))
        phase = f32(f32(math.pi) * f32(f32(p / f32(schedule.decay_steps)) + f32(0.5)))
        sine = f32(math.sin(float(phase)))
        delta = f32(0.5 * (schedule.max_lr - schedule.min_lr))
        return f32(f32(schedule.min_lr) + f32(delta * f32(f32(1.0) + sine)))
    if isinstance(schedule, PolynomialDecayLR):
        steps = f32(schedule.decay_steps)
        if schedule.update_decay_steps:
            horizon = f32(steps * max(f32(math.ceil(f32(s / steps))), f32(1.0)))
        else:
            s, horizon = min(s, steps), steps
        p = f32(s / horizon)
        diff = f32(schedule.learning_rate - schedule.end_learning_rate)
        powered = _ref_pow(f32(f32(1.0) - p), schedule.power)
        return f32(f32(diff * powered) + f32(schedule.end_learning_rate))
    if isinstance(schedule, WarmUpLR):
        done = f32(min(step, schedule.warmup_steps))
        return f32(f32(schedule.learning_rate) * f32(done / f32(schedule.warmup_steps)))
    raise AssertionError(f"no reference for {schedule!r}")


def _bits(x: torch.Tensor | np.float32) -> int:
    value = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return int(value.astype(np.float32).view(np.int32))


# --------------------------------------------------------------------------------------------------
# Known values.

EXAMPLES = [
    ExponentialDecayLR(0.1, 0.9, 4),
    ExponentialDecayLR(0.1, 0.9, 4, is_stair=True),
    ExponentialDecayLR(0.5, 0.5, 1),
    NaturalExpDecayLR(0.1, 0.9, 4),
    NaturalExpDecayLR(0.5, 0.5, 3, is_stair=True),
    InverseDecayLR(0.1, 0.9, 4),
    InverseDecayLR(0.1, 0.9, 4, is_stair=True),
    CosineDecayLR(0.01, 0.1, 4),
    CosineDecayLR(0.001, 0.05, 6),
    PolynomialDecayLR(0.1, 0.01, 4, 0.5),
    PolynomialDecayLR(0.5, 0.05, 3, 3.0, update_decay_steps=True),
    PolynomialDecayLR(0.01, 0.1, 5, 2.0),
    WarmUpLR(0.1, 2),
    WarmUpLR(0.3, 1),
]


@pytest.mark.parametrize("schedule", EXAMPLES, ids=repr)
def test_matches_reference_model_bit_exactly(schedule: LearningRateSchedule) -> None:
    for step in range(40):
        assert _bits(schedule(step)) == _bits(reference(schedule, step)), step


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        # MindSpore-recorded float32 values (exact bits), one per formula.
        (CosineDecayLR(0.001, 0.05, 6), [0.049999997, 0.04671762, 0.03774999, 0.025499998]),
        (ExponentialDecayLR(0.1, 0.9, 4), [0.1, 0.097400375, 0.094868325, 0.09240211, 0.089999996]),
        (NaturalExpDecayLR(0.5, 0.3, 3, True), [0.5, 0.5, 0.5, 0.20328483, 0.20328483]),
        (PolynomialDecayLR(0.1, 0.01, 4, 2.0, True), [0.1, 0.060625, 0.0325, 0.015625, 0.01]),
        (WarmUpLR(0.1, 4), [0.0, 0.025, 0.05, 0.075, 0.1, 0.1]),
    ],
    ids=repr,
)
def test_recorded_mindspore_values(schedule: LearningRateSchedule, expected: list[float]) -> None:
    got = [_bits(schedule(step)) for step in range(len(expected))]
    assert got == [_bits(f32(value)) for value in expected]


def test_cosine_uses_mindspore_sine_form_not_cosine() -> None:
    # At step 2 of 6 the cos(pi * p) form and torch's float32 sin are both one ulp away.
    assert _bits(CosineDecayLR(0.001, 0.05, 6)(2)) == _bits(f32(0.03774999))


# Values MindSpore 2.10 gave on CPU (``cell(Tensor(step, int32))``), where a simpler model of its
# arithmetic fails: ``powf`` for integer exponents and for exponents within 1e-6 of an integer, its
# inexact last bit, its subnormal results, and ``float / Tensor`` as a reciprocal times the float.
MINDSPORE_VALUES = [
    (ExponentialDecayLR(3.3, 3.3, 1), 3, 118.59210205078125),
    (ExponentialDecayLR(1.0, 0.9, 1), 7, 0.47829681634902954),
    (ExponentialDecayLR(9.379040163342644e-06, 2.0, 36), 22, 1.4325876691145822e-05),
    (InverseDecayLR(3.3, 0.1, 196), 196, 2.999999761581421),
    (PolynomialDecayLR(0.1, 0.01, 4, 1e-07), 1, 0.10000000149011612),
    (PolynomialDecayLR(0.1, 0.01, 4, 1e-07), 2, 0.09999999403953552),
    (PolynomialDecayLR(0.1, 0.01, 4, 1e-07), 4, 0.009999999776482582),
    (NaturalExpDecayLR(0.99, 7.0, 769), 13, 2.9842752745493467e-40),
]


@pytest.mark.parametrize(("schedule", "step", "expected"), MINDSPORE_VALUES)
def test_values_a_simpler_model_of_mindspore_misses(
    schedule: LearningRateSchedule, step: int, expected: float
) -> None:
    assert _bits(schedule(step)) == _bits(f32(expected))


def test_huge_steps_underflow_or_overflow_like_the_formula() -> None:
    assert ExponentialDecayLR(0.1, 0.9, 1)(2**40).item() == 0.0
    assert ExponentialDecayLR(0.1, 0.99999994, 1)(2**40).item() == 0.0
    assert NaturalExpDecayLR(0.1, 1e30, 3)(1).item() == 0.0
    assert ExponentialDecayLR(0.1, 1.5, 1)(300).item() == math.inf
    assert _bits(CosineDecayLR(0.0, 0.1, 2**40)(2**41)) == 0
    assert _bits(WarmUpLR(0.1, 2**40)(2**41)) == _bits(f32(0.1))


def test_warmup_starts_at_exactly_zero_and_holds() -> None:
    schedule = WarmUpLR(0.1, 3)
    assert schedule(0).item() == 0.0
    assert _bits(schedule(3)) == _bits(schedule(1000)) == _bits(f32(0.1))


def test_natural_exp_without_stair_ignores_decay_steps() -> None:
    a, b = NaturalExpDecayLR(0.1, 0.9, 1), NaturalExpDecayLR(0.1, 0.9, 50)
    assert all(torch.equal(a(step), b(step)) for step in range(10))


def test_cosine_and_polynomial_hold_their_final_value() -> None:
    cosine = CosineDecayLR(0.01, 0.1, 5)
    polynomial = PolynomialDecayLR(0.1, 0.01, 5, 2.0)
    for step in (5, 6, 100, 2**30):
        assert _bits(cosine(step)) == _bits(f32(0.01))
        assert _bits(polynomial(step)) == _bits(f32(0.01))


# --------------------------------------------------------------------------------------------------
# Step normalisation: int / 0-d / (1,) / int32 / int64, result 0-d float32 on the step's device.

STEP_FORMS = {
    "int": lambda s: s,
    "numpy-int64": lambda s: np.int64(s),
    "0d-int32": lambda s: torch.tensor(s, dtype=torch.int32),
    "0d-int64": lambda s: torch.tensor(s, dtype=torch.int64),
    "1-int32": lambda s: torch.tensor([s], dtype=torch.int32),
    "1-int64": lambda s: torch.tensor([s], dtype=torch.int64),
    "1x1-int32": lambda s: torch.tensor([[s]], dtype=torch.int32),
    "0d-uint8": lambda s: torch.tensor(s, dtype=torch.uint8),
}


@pytest.mark.parametrize("form", list(STEP_FORMS))
@pytest.mark.parametrize("schedule", EXAMPLES, ids=repr)
def test_step_forms_give_the_same_0d_float32(schedule: LearningRateSchedule, form: str) -> None:
    for step in (0, 1, 5, 9):
        out = schedule(STEP_FORMS[form](step))
        assert out.dtype == torch.float32
        assert out.shape == ()
        assert out.device == torch.device("cpu")
        assert torch.equal(out, schedule(step))


@pytest.mark.parametrize("schedule", EXAMPLES, ids=repr)
def test_result_follows_the_step_device(schedule: LearningRateSchedule) -> None:
    # The meta device checks device propagation without a GPU: every op must follow the step.
    out = schedule(torch.tensor([3], dtype=torch.int32, device="meta"))
    assert out.device.type == "meta"
    assert out.dtype == torch.float32
    assert out.shape == ()


@pytest.mark.parametrize(
    ("step", "exc", "match"),
    [
        (torch.tensor(1.0), TypeError, r"'global_step' must be an int or an integer tensor"),
        (torch.tensor(True), TypeError, r"'global_step'.*torch.bool"),
        (torch.tensor([1, 2]), ValueError, r"'global_step' must be a single step.*\(2,\)"),
        (torch.zeros(0, dtype=torch.int64), ValueError, r"'global_step'"),
        (True, TypeError, r"'global_step'"),
        (1.0, TypeError, r"'global_step'"),
        ("3", TypeError, r"'global_step'"),
    ],
    ids=["float-tensor", "bool-tensor", "two-steps", "empty", "bool", "float", "str"],
)
def test_invalid_steps(step: Any, exc: type, match: str) -> None:
    with pytest.raises(exc, match=f"^WarmUpLR: {match}"):
        WarmUpLR(0.1, 2)(step)


def test_as_step_tensor_is_a_view_of_the_step() -> None:
    step = torch.tensor([4], dtype=torch.int32)
    normalised = as_step_tensor(step)
    assert normalised.shape == ()
    assert normalised.data_ptr() == step.data_ptr()


# --------------------------------------------------------------------------------------------------
# No host sync and graph capture.


class _FailOnHostSync(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.item.default):
            raise AssertionError(f"host sync: {func}")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("schedule", EXAMPLES, ids=repr)
def test_forward_makes_no_host_sync(schedule: LearningRateSchedule) -> None:
    step = torch.tensor([7], dtype=torch.int32)
    expected = schedule(step)
    with _FailOnHostSync():
        out = schedule(step)
        out_int = schedule(7)
    assert torch.equal(out, expected)
    assert torch.equal(out_int, expected)


@pytest.mark.parametrize("schedule", EXAMPLES, ids=repr)
def test_compiles_fullgraph_without_graph_breaks(schedule: LearningRateSchedule) -> None:
    torch._dynamo.reset()
    compiled = torch.compile(schedule, fullgraph=True, backend="eager")
    for step in (0, 3, 11):
        tensor_step = torch.tensor([step], dtype=torch.int32)
        assert torch.equal(compiled(tensor_step), schedule(tensor_step))


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("MSOPTIM_RUN_SLOW") != "1",
    reason="an Inductor compile takes 7-11 s on a 2-core CPU; set MSOPTIM_RUN_SLOW=1 to run it",
)
def test_inductor_compiled_schedule_is_bit_identical() -> None:
    # The fullgraph test above uses the cheap "eager" backend; this one generates real code.
    torch._dynamo.reset()
    schedule = ExponentialDecayLR(0.1, 0.9, 2)
    compiled = torch.compile(schedule, fullgraph=True)
    for step in range(12):
        tensor_step = torch.tensor(step, dtype=torch.int64)
        assert torch.equal(compiled(tensor_step), schedule(tensor_step)), step


# --------------------------------------------------------------------------------------------------
# Module behaviour.


@pytest.mark.parametrize("schedule", EXAMPLES, ids=repr)
def test_module_is_frozen_stateless_and_serialisable(schedule: LearningRateSchedule) -> None:
    assert isinstance(schedule, torch.nn.Module)
    assert list(schedule.parameters()) == []
    assert list(schedule.buffers()) == []
    assert schedule.state_dict() == {}
    for clone in (copy.deepcopy(schedule), pickle.loads(pickle.dumps(schedule))):
        assert type(clone) is type(schedule)
        assert repr(clone) == repr(schedule)
        assert all(torch.equal(clone(step), schedule(step)) for step in range(8))
    name = repr(schedule).split("(", 1)[1].split("=", 1)[0]
    with pytest.raises(AttributeError, match=f"'{name}' is fixed at construction"):
        setattr(schedule, name, getattr(schedule, name))


def test_repr_lists_the_constructor_arguments() -> None:
    assert (
        repr(CosineDecayLR(0.0, 0.1, 10)) == "CosineDecayLR(min_lr=0.0, max_lr=0.1, decay_steps=10)"
    )
    assert repr(PolynomialDecayLR(0.1, 0.0, 4, 2.0)) == (
        "PolynomialDecayLR(learning_rate=0.1, end_learning_rate=0.0, decay_steps=4, power=2.0, "
        "update_decay_steps=False)"
    )


def test_train_and_eval_still_work() -> None:
    schedule = WarmUpLR(0.1, 2)
    schedule.eval()
    assert not schedule.training
    schedule.train()
    assert schedule.training


def test_base_class_forward_is_abstract() -> None:
    with pytest.raises(NotImplementedError, match="must implement forward"):
        LearningRateSchedule()(0)


def test_subclass_receives_a_0d_integer_tensor() -> None:
    seen: list[torch.Tensor] = []

    class Constant(LearningRateSchedule):
        def forward(self, global_step: torch.Tensor) -> torch.Tensor:
            seen.append(global_step)
            return torch.full_like(global_step, 0.5, dtype=torch.float32)

    schedule = Constant()
    for step in (3, torch.tensor([3], dtype=torch.int32), torch.tensor(3)):
        assert schedule(step).item() == 0.5
    assert all(s.shape == () and not s.is_floating_point() for s in seen)


def test_forward_hooks_run() -> None:
    schedule = WarmUpLR(0.1, 2)
    calls = []
    schedule.register_forward_hook(lambda module, args, output: calls.append(args[0].shape))
    schedule(1)
    assert calls == [torch.Size([])]


# --------------------------------------------------------------------------------------------------
# Validation: (class, kwargs, exception type, message regex). First failing argument in
# MindSpore's order determines the exception.

EXP = {"learning_rate": 0.1, "decay_rate": 0.9, "decay_steps": 4}
COS = {"min_lr": 0.01, "max_lr": 0.1, "decay_steps": 4}
POLY = {"learning_rate": 0.1, "end_learning_rate": 0.01, "decay_steps": 4, "power": 0.5}
WARM = {"learning_rate": 0.1, "warmup_steps": 2}


def _validation_cases() -> list[Any]:
    raw: list[tuple[Any, dict[str, Any], dict[str, Any], type, str]] = []
    for cls in (ExponentialDecayLR, NaturalExpDecayLR, InverseDecayLR):
        raw += [
            (
                cls,
                EXP,
                {"learning_rate": 1},
                TypeError,
                r"'learning_rate' must be a positive float",
            ),
            (cls, EXP, {"learning_rate": True}, TypeError, r"'learning_rate'"),
            (cls, EXP, {"learning_rate": -0.1}, ValueError, r"'learning_rate' must be a finite"),
            (cls, EXP, {"learning_rate": math.nan}, ValueError, r"'learning_rate'"),
            (cls, EXP, {"decay_rate": 0.0}, ValueError, r"'decay_rate' must be a finite float > 0"),
            (cls, EXP, {"decay_rate": 1}, TypeError, r"'decay_rate'.*1\.0"),
            (cls, EXP, {"decay_rate": math.inf}, ValueError, r"'decay_rate'"),
            (cls, EXP, {"decay_steps": 0}, ValueError, r"'decay_steps' must be a positive int"),
            (cls, EXP, {"decay_steps": -2}, ValueError, r"'decay_steps'"),
            (cls, EXP, {"decay_steps": "4"}, TypeError, r"'decay_steps'"),
            (cls, EXP, {"decay_steps": 4.0}, TypeError, r"'decay_steps'"),
            (cls, EXP, {"decay_steps": True}, TypeError, r"'decay_steps'"),
            (cls, EXP, {"is_stair": 1}, TypeError, r"'is_stair' must be a bool"),
            (cls, EXP, {"is_stair": "yes"}, TypeError, r"'is_stair'"),
            # order: decay_steps, learning_rate, decay_rate, is_stair
            (cls, EXP, {"learning_rate": 1, "decay_steps": 0}, ValueError, r"'decay_steps'"),
            (cls, EXP, {"decay_rate": 1, "learning_rate": -1.0}, ValueError, r"'learning_rate'"),
            (cls, EXP, {"is_stair": 1, "decay_rate": -1.0}, ValueError, r"'decay_rate'"),
        ]
    raw += [
        (CosineDecayLR, COS, {"min_lr": 0}, TypeError, r"'min_lr' must be a non-negative float"),
        (CosineDecayLR, COS, {"min_lr": None}, TypeError, r"'min_lr'"),
        (CosineDecayLR, COS, {"min_lr": -0.01}, ValueError, r"'min_lr'"),
        (CosineDecayLR, COS, {"max_lr": 1}, TypeError, r"'max_lr'.*1\.0"),
        (CosineDecayLR, COS, {"max_lr": -0.1}, ValueError, r"'max_lr'"),
        (CosineDecayLR, COS, {"max_lr": 0.0, "min_lr": 0.0}, ValueError, r"'max_lr' must be a"),
        (CosineDecayLR, COS, {"decay_steps": 0}, ValueError, r"'decay_steps'"),
        (CosineDecayLR, COS, {"decay_steps": 1.5}, TypeError, r"'decay_steps'"),
        (
            CosineDecayLR,
            COS,
            {"min_lr": 0.2},
            ValueError,
            r"'max_lr' must be greater than 'min_lr'",
        ),
        (CosineDecayLR, COS, {"min_lr": 0.1}, ValueError, r"'max_lr'.*\(0\.1\).*swap"),
        (CosineDecayLR, COS, {"min_lr": 0.2, "decay_steps": 0}, ValueError, r"'decay_steps'"),
        (CosineDecayLR, COS, {"min_lr": 1, "max_lr": -1.0}, TypeError, r"'min_lr'"),
        (PolynomialDecayLR, POLY, {"learning_rate": 1}, TypeError, r"'learning_rate'"),
        (PolynomialDecayLR, POLY, {"learning_rate": 0.0}, ValueError, r"'learning_rate'"),
        (PolynomialDecayLR, POLY, {"end_learning_rate": 0}, TypeError, r"'end_learning_rate'"),
        (PolynomialDecayLR, POLY, {"end_learning_rate": -1.0}, ValueError, r"'end_learning_rate'"),
        (PolynomialDecayLR, POLY, {"decay_steps": 0}, ValueError, r"'decay_steps'"),
        (
            PolynomialDecayLR,
            POLY,
            {"power": 0.0},
            ValueError,
            r"'power' must be a finite float > 0",
        ),
        (PolynomialDecayLR, POLY, {"power": 2}, TypeError, r"'power'.*2\.0"),
        (PolynomialDecayLR, POLY, {"power": True}, TypeError, r"'power'"),
        (PolynomialDecayLR, POLY, {"update_decay_steps": 1}, TypeError, r"'update_decay_steps'"),
        # order: learning_rate, end_learning_rate, decay_steps, update_decay_steps, power
        (PolynomialDecayLR, POLY, {"power": 0.0, "update_decay_steps": 1}, TypeError, r"'update_"),
        (PolynomialDecayLR, POLY, {"power": 1, "decay_steps": 0}, ValueError, r"'decay_steps'"),
        (PolynomialDecayLR, POLY, {"end_learning_rate": 1, "learning_rate": 0.0}, ValueError, "'l"),
        (WarmUpLR, WARM, {"learning_rate": 1}, TypeError, r"'learning_rate'.*1\.0"),
        (WarmUpLR, WARM, {"learning_rate": -0.1}, ValueError, r"'learning_rate'"),
        (WarmUpLR, WARM, {"warmup_steps": 0}, ValueError, r"'warmup_steps'"),
        (WarmUpLR, WARM, {"warmup_steps": 2.0}, TypeError, r"'warmup_steps'"),
        (WarmUpLR, WARM, {"learning_rate": 1, "warmup_steps": 0}, TypeError, r"'learning_rate'"),
    ]
    return [
        pytest.param(cls, {**base, **override}, exc, f"^{cls.__name__}: {match}")
        for cls, base, override, exc, match in raw
    ]


@pytest.mark.parametrize(("cls", "kwargs", "exc", "match"), _validation_cases())
def test_validation(cls: type, kwargs: dict[str, Any], exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        cls(**kwargs)


def test_accepted_edge_values() -> None:
    WarmUpLR(0.0, 1)  # MindSpore accepts a zero warm-up target
    CosineDecayLR(0.0, 1e-12, 1)
    PolynomialDecayLR(0.01, 0.1, 3, 1.0)  # end above start: the lr grows
    ExponentialDecayLR(0.1, 1.5, 3)  # decay_rate > 1 is allowed


# --------------------------------------------------------------------------------------------------
# Properties (pinned, CPU, small).

steps_lists = st.lists(st.integers(0, 400), min_size=1, max_size=6)
learning_rates = st.floats(1e-4, 1.0)
decay_steps = st.integers(1, 40)


@PROPERTY
@given(
    st.sampled_from(["exp", "natural", "inverse", "cosine", "poly", "warmup"]),
    learning_rates,
    st.floats(0.05, 1.5),
    decay_steps,
    st.booleans(),
    st.sampled_from([0.5, 1.0, 2.0, 3.0, 4.0]) | st.floats(0.1, 5.0),
    steps_lists,
)
def test_any_schedule_matches_the_reference_model(
    kind: str, lr: float, rate: float, steps: int, flag: bool, power: float, points: list[int]
) -> None:
    schedule = {
        "exp": lambda: ExponentialDecayLR(lr, rate, steps, flag),
        "natural": lambda: NaturalExpDecayLR(lr, rate / 4, steps, flag),
        "inverse": lambda: InverseDecayLR(lr, rate, steps, flag),
        "cosine": lambda: CosineDecayLR(lr * rate / 2, lr * (1 + rate), steps),
        "poly": lambda: PolynomialDecayLR(lr, lr * rate, steps, power, flag),
        "warmup": lambda: WarmUpLR(lr, steps),
    }[kind]()
    for step in points:
        out = schedule(torch.tensor([step], dtype=torch.int32))
        assert _bits(out) == _bits(reference(schedule, step)), (schedule, step)


def _close(schedule_value: torch.Tensor, function_value: float, tolerance: float) -> bool:
    return abs(float(schedule_value) - function_value) <= tolerance + TINY32


# Each schedule at step k equals the lr function with step_per_epoch=1 (so epoch == step) at index
# k, up to float32 rounding propagated through the formula: the inputs are rounded to float32 once
# (relative EPS32 each), then every op rounds once more.


@PROPERTY
@given(learning_rates, st.floats(0.5, 1.5), decay_steps, st.booleans(), steps_lists)
def test_exponential_schedule_matches_function(
    lr: float, rate: float, steps: int, stair: bool, points: list[int]
) -> None:
    table = lr_functions.exponential_decay_lr(lr, rate, max(points) + 1, 1, steps, stair)
    schedule = ExponentialDecayLR(lr, rate, steps, stair)
    for k in points:
        p = math.floor(k / steps) if stair else k / steps
        # rate's rounding is raised to the power p; plus a few roundings and powf's 0.82 ulp
        tolerance = (p + 4 + 2 * math.log2(p + 1)) * EPS32 * table[k]
        assert _close(schedule(k), table[k], tolerance), k


@PROPERTY
@given(learning_rates, st.floats(0.001, 0.5), decay_steps, st.booleans(), steps_lists)
def test_natural_exp_schedule_matches_function(
    lr: float, rate: float, steps: int, stair: bool, points: list[int]
) -> None:
    table = lr_functions.natural_exp_decay_lr(lr, rate, max(points) + 1, 1, steps, stair)
    schedule = NaturalExpDecayLR(lr, rate, steps, stair)
    for k in points:
        q = math.floor(k / steps) * steps if stair else k
        # the exponent rate*q carries ~3 roundings (rate, product, float32 e), then 2 more ops
        tolerance = (3 * rate * q + 4) * EPS32 * table[k]
        assert _close(schedule(k), table[k], tolerance), k


@PROPERTY
@given(learning_rates, st.floats(0.05, 2.0), decay_steps, st.booleans(), steps_lists)
def test_inverse_schedule_matches_function(
    lr: float, rate: float, steps: int, stair: bool, points: list[int]
) -> None:
    table = lr_functions.inverse_decay_lr(lr, rate, max(points) + 1, 1, steps, stair)
    schedule = InverseDecayLR(lr, rate, steps, stair)
    for k in points:
        assert _close(schedule(k), table[k], 8 * EPS32 * table[k]), k


@PROPERTY
@given(st.floats(0.0, 0.99), st.floats(1e-4, 1.0), decay_steps, steps_lists)
def test_cosine_schedule_matches_function(
    min_frac: float, max_lr: float, steps: int, points: list[int]
) -> None:
    min_lr = min_frac * max_lr
    table = lr_functions.cosine_decay_lr(min_lr, max_lr, max(points) + 1, 1, steps)
    schedule = CosineDecayLR(min_lr, max_lr, steps)
    for k in points:
        # absolute: the phase's rounding (and float32 pi) moves sin by ~3 EPS32, times max_lr
        assert _close(schedule(k), table[k], 8 * EPS32 * max_lr), k


@PROPERTY
@given(
    learning_rates,
    st.floats(0.0, 2.0),
    decay_steps,
    st.sampled_from([0.5, 1.0, 2.0, 3.0]) | st.floats(0.1, 5.0),
    st.booleans(),
    steps_lists,
)
def test_polynomial_schedule_matches_function(
    lr: float, end_frac: float, steps: int, power: float, update: bool, points: list[int]
) -> None:
    end = end_frac * lr
    table = lr_functions.polynomial_decay_lr(lr, end, max(points) + 1, 1, steps, power, update)
    schedule = PolynomialDecayLR(lr, end, steps, power, update)
    for k in points:
        horizon = steps * max(math.ceil(k / steps), 1) if update else steps
        rest = 1 - (k if update else min(k, steps)) / horizon
        # the rounding of p = s / D is amplified by the slope of rest ** power
        slope = power * rest ** (power - 1) if rest > 0 else 0.0
        tolerance = EPS32 * abs(lr - end) * (6 + 2 * power + slope) + 2 * EPS32 * max(lr, end)
        assert _close(schedule(k), table[k], tolerance), k


@PROPERTY
@given(st.floats(0.0, 1.0), decay_steps, steps_lists)
def test_warmup_schedule_matches_function(lr: float, steps: int, points: list[int]) -> None:
    table = lr_functions.warmup_lr(lr, max(points) + 1, 1, steps)
    schedule = WarmUpLR(lr, steps)
    for k in points:
        assert _close(schedule(k), table[k], 4 * EPS32 * table[k]), k


def _trajectory(schedule: LearningRateSchedule, n: int) -> list[float]:
    return [float(schedule(k)) for k in range(n)]


def _non_increasing(values: list[float]) -> bool:
    return all(a >= b for a, b in itertools.pairwise(values))


@PROPERTY
@given(learning_rates, st.floats(0.05, 0.99), st.integers(1, 12), st.booleans())
def test_decaying_schedules_are_bounded_monotone_and_finite(
    lr: float, rate: float, steps: int, stair: bool
) -> None:
    lr32 = float(f32(lr))
    for schedule in (
        ExponentialDecayLR(lr, rate, steps, stair),
        NaturalExpDecayLR(lr, rate, steps, stair),
        InverseDecayLR(lr, rate, steps, stair),
    ):
        values = _trajectory(schedule, 3 * steps + 2)
        assert values[0] == lr32
        assert all(math.isfinite(v) and 0.0 <= v <= lr32 for v in values)
        assert _non_increasing(values)


@PROPERTY
@given(st.floats(0.0, 0.99), st.floats(1e-4, 1.0), st.integers(1, 12))
def test_cosine_is_bounded_monotone_and_clamped(min_frac: float, max_lr: float, steps: int) -> None:
    min_lr = min_frac * max_lr
    values = _trajectory(CosineDecayLR(min_lr, max_lr, steps), 2 * steps + 2)
    low, high = float(f32(min_lr)), float(f32(max_lr))
    slack = 2 * EPS32 * high
    assert all(math.isfinite(v) and low - slack <= v <= high + slack for v in values)
    assert _non_increasing(values)
    assert all(v == values[steps] for v in values[steps:])  # no restarts


@PROPERTY
@given(
    learning_rates,
    st.floats(0.0, 2.0),
    st.integers(1, 12),
    st.sampled_from([0.5, 1.0, 2.0, 3.0]) | st.floats(0.1, 5.0),
    st.booleans(),
)
def test_polynomial_is_bounded_and_monotone_within_a_horizon(
    lr: float, end_frac: float, steps: int, power: float, update: bool
) -> None:
    end = end_frac * lr
    values = _trajectory(PolynomialDecayLR(lr, end, steps, power, update), 3 * steps + 1)
    low, high = float(f32(min(lr, end))), float(f32(max(lr, end)))
    slack = 4 * EPS32 * high
    assert all(math.isfinite(v) and low - slack <= v <= high + slack for v in values)
    first_horizon = values[: steps + 1]
    assert _non_increasing(first_horizon if lr >= end else [-v for v in first_horizon])
    if not update:
        assert all(v == values[steps] for v in values[steps:])


@PROPERTY
@given(st.floats(0.0, 1.0), st.integers(1, 20))
def test_warmup_is_bounded_and_non_decreasing(lr: float, steps: int) -> None:
    values = _trajectory(WarmUpLR(lr, steps), steps + 3)
    assert values[0] == 0.0
    assert values == sorted(values)
    assert values[-1] == float(f32(lr))
