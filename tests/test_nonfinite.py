"""Non-finite values: gradients propagate them as MindSpore's kernels do; lrs are checked up front.

Contract:

1. **Gradients.** A NaN or ±inf in a gradient is not detected, clipped or skipped: the step runs
   the optimizer's float32 arithmetic (MindSpore's op order) on it, ``global_step`` advances, and
   the non-finite value reaches the parameter or its state (IEEE propagation, as on MindSpore's CPU
   kernels, which check nothing either). The one exception is by design: Rprop reads only the
   gradient's sign, so ±inf steps like a huge finite gradient of that sign (NaN still propagates). It does not leak into *other* parameters: every optimizer
   here, LARS, Lamb and AdaFactor included, only reduces within one tensor, so the other
   parameters and their state are bit-identical to a run where the bad gradient was finite. Overflow
   handling belongs to the loss scaler (``torch.amp.GradScaler`` skips such steps before
   ``opt.step()``, see ``test_amp.py``); MindSpore's static ``loss_scale`` does not detect overflow.
2. **Learning rates.** A NaN or inf learning rate is refused at construction, whatever its form:
   a float, a 0-d tensor, any entry of a table (list, tuple, numpy array, 1-D tensor, generator),
   a group's lr, or a schedule's value at step 0; so is a weight-decay schedule's value at step 0.
   A schedule that only turns non-finite later cannot be seen at construction: that step propagates
   it, like a bad gradient. A value written into a static lr by hand (``fill_``, ``msoptim.assign``)
   is not checked either; ``LearningRateScheduler`` checks what its function returns.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import msoptim
from optim_db import OPTIMIZER_CASES

NAN, INF = float("nan"), float("inf")

CONFIGS = [
    pytest.param(case, config, id=f"{case.name}-{config.desc}")
    for case in OPTIMIZER_CASES
    for config in case.configs
]
BAD_VALUES = [
    pytest.param(NAN, id="nan"),
    pytest.param(INF, id="inf"),
    pytest.param(-INF, id="-inf"),
]


def params_pair(seed: int = 0) -> list[tuple[str, nn.Parameter]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        ("poisoned.weight", nn.Parameter(torch.randn(3, 4, generator=generator))),
        ("clean.weight", nn.Parameter(torch.randn(2, 5, generator=generator))),
    ]


def gradients(params, step: int) -> list[Tensor]:
    generator = torch.Generator().manual_seed(10 + step)
    return [0.5 * torch.randn(p.shape, generator=generator) for _, p in params]


def build(case, config, params, lars: bool = False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = case.cls(params, **config.kwargs)
    return msoptim.LARS(opt) if lars else opt


def state_of(opt, param) -> dict[str, Tensor]:
    state = opt.optimizer.state if isinstance(opt, msoptim.LARS) else opt.state
    return {key: value.clone() for key, value in state[param].items() if isinstance(value, Tensor)}


def non_finite(tensors) -> bool:
    return any(not bool(torch.isfinite(t).all()) for t in tensors)


def run_with_bad_gradient(case, config, value: float, lars: bool, style: str):
    """Two steps: a finite one, then one whose poisoned gradient holds ``value`` at [1, 2]."""
    params = params_pair()
    opt = build(case, config, params, lars)
    for step in range(2):
        grads = gradients(params, step)
        if step == 1:
            grads[0][1, 2] = value
        if style == "call":
            opt(tuple(grads))
        else:
            for (_, p), grad in zip(params, grads):
                p.grad = grad
            opt.step()
    return params, opt


@pytest.mark.parametrize("style", ["call", "step"])
@pytest.mark.parametrize("value", BAD_VALUES)
@pytest.mark.parametrize(("case", "config"), CONFIGS)
def test_non_finite_gradient_propagates_and_is_not_skipped(case, config, value, style):
    params, opt = run_with_bad_gradient(case, config, value, lars=False, style=style)
    reference_params, reference = run_with_bad_gradient(case, config, 0.25, False, style)
    assert int(opt.global_step) == 2
    poisoned = params[0][1]
    if case.name == "Rprop" and math.isinf(value):
        # Rprop reads only the gradient's sign, and ±inf has one: the step is the one a huge
        # finite gradient of that sign gives (MindSpore's kernel does the same arithmetic).
        huge_params, _ = run_with_bad_gradient(
            case, config, math.copysign(1e30, value), False, style
        )
        assert torch.equal(poisoned, huge_params[0][1])
    else:
        assert non_finite([poisoned, *state_of(opt, poisoned).values()]), (
            "the non-finite gradient vanished: the step must propagate it, not skip or clip it"
        )
    clean, clean_reference = params[1][1], reference_params[1][1]
    assert torch.equal(clean, clean_reference)
    for key, tensor in state_of(opt, clean).items():
        assert torch.equal(tensor, state_of(reference, clean_reference)[key]), key


@pytest.mark.parametrize("value", BAD_VALUES)
def test_lars_propagates_within_the_parameter_only(value):
    case = next(c for c in OPTIMIZER_CASES if c.name == "Momentum")
    config = case.configs[1]  # weight decay and loss scale on: LARS takes both over
    params, opt = run_with_bad_gradient(case, config, value, lars=True, style="call")
    reference_params, _ = run_with_bad_gradient(case, config, 0.25, True, "call")
    assert int(opt.global_step) == 2
    assert non_finite([params[0][1]])
    assert torch.equal(params[1][1], reference_params[1][1])


def test_a_non_finite_parameter_stays_non_finite_and_steps():
    params = params_pair()
    with torch.no_grad():
        params[0][1][0, 0] = NAN
    opt = msoptim.Adam(params, learning_rate=0.01, weight_decay=0.01)
    opt(tuple(gradients(params, 0)))
    assert int(opt.global_step) == 1
    assert math.isnan(float(params[0][1].detach()[0, 0]))
    assert bool(torch.isfinite(params[1][1]).all())


# ------------------------------------------------------------------------- learning rates


class ConstantSchedule(msoptim.LearningRateSchedule):
    """A user schedule returning ``value`` from step ``start`` on and 0.1 before."""

    def __init__(self, value: float, start: int = 0) -> None:
        super().__init__()
        self.value, self.start = value, start

    def forward(self, global_step: Tensor) -> Tensor:
        step = global_step.to(torch.float32)
        return torch.where(step >= self.start, torch.tensor(self.value), torch.tensor(0.1))


def _gen(values):
    return (v for v in values)


LR_FORMS = [
    ("float", lambda v: v),
    ("0-d tensor", lambda v: torch.tensor(v)),
    ("0-d float64 tensor", lambda v: torch.tensor(v, dtype=torch.float64)),
    ("list, first entry", lambda v: [v, 0.1, 0.1]),
    ("list, last entry", lambda v: [0.1, 0.1, v]),
    ("tuple", lambda v: (0.1, v)),
    ("numpy array", lambda v: np.array([0.1, v])),
    ("1-D tensor", lambda v: torch.tensor([0.1, 0.1, v])),
    ("generator", lambda v: _gen([0.1, v])),
    ("schedule at step 0", lambda v: ConstantSchedule(v)),
]


@pytest.mark.parametrize("value", BAD_VALUES)
@pytest.mark.parametrize(("form", "make"), LR_FORMS, ids=[form for form, _ in LR_FORMS])
@pytest.mark.parametrize("where", ["learning_rate", "group lr"])
def test_non_finite_learning_rate_is_refused_at_construction(where, form, make, value):
    params = params_pair()
    before = [p.detach().clone() for _, p in params]
    if where == "learning_rate":
        spec, label = {"params": params, "learning_rate": make(value)}, r"'learning_rate'"
    else:
        spec = {
            "params": [{"params": params[:1], "lr": make(value)}, {"params": params[1:]}],
            "learning_rate": 0.1,
        }
        label = r"param_groups\[0\]\['lr'\]"
    with pytest.raises(ValueError, match=label + r".*(finite|nan|inf)"):
        msoptim.Momentum(spec["params"], spec["learning_rate"], 0.9)
    assert all(torch.equal(b, p) for b, (_, p) in zip(before, params))


@pytest.mark.parametrize("value", BAD_VALUES)
def test_non_finite_weight_decay_is_refused_at_construction(value):
    params = params_pair()
    with pytest.raises(ValueError, match=r"'weight_decay'.*(finite|nan|inf)"):
        msoptim.Momentum(params, 0.1, 0.9, weight_decay=value)
    with pytest.raises(ValueError, match=r"'weight_decay' \(ConstantSchedule\) returns"):
        msoptim.Momentum(params, 0.1, 0.9, weight_decay=ConstantSchedule(value))
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['weight_decay'\]"):
        msoptim.Momentum(
            [
                {"params": params[:1]},
                {"params": params[1:], "weight_decay": ConstantSchedule(value)},
            ],
            0.1,
            0.9,
        )


def test_every_optimizer_refuses_a_nan_lr_table():
    """FTRL refuses every table first (MindSpore's error; msoptim's NaN refusal comes after)."""
    for case in OPTIMIZER_CASES:
        kwargs = dict(case.configs[-1].kwargs)
        kwargs["learning_rate"] = [0.01, NAN]
        why = "dynamic learning rate" if case.cls is msoptim.FTRL else "must hold finite values"
        with pytest.raises(ValueError, match=why):
            case.cls(params_pair(), **kwargs)


def test_a_schedule_that_turns_nan_later_propagates_at_that_step():
    """Only step 0 can be checked up front; a later NaN reaches the parameters, not skipped."""
    params = params_pair()
    opt = msoptim.Momentum(params, ConstantSchedule(NAN, start=2), 0.9)
    for step in range(2):
        opt(tuple(gradients(params, step)))
    assert bool(torch.isfinite(params[0][1]).all())
    opt(tuple(gradients(params, 2)))
    assert int(opt.global_step) == 3
    assert bool(torch.isnan(params[0][1]).all())
    assert bool(torch.isnan(opt.get_lr()))


def test_a_hand_written_nan_lr_is_not_checked_and_propagates():
    """``fill_`` / ``assign`` into the static lr are MindSpore's ``ops.assign``: no check."""
    params = params_pair()
    opt = msoptim.Momentum(params, 0.1, 0.9)
    msoptim.assign(opt.learning_rate, NAN)
    opt(tuple(gradients(params, 0)))
    assert int(opt.global_step) == 1
    assert bool(torch.isnan(params[0][1]).all())


def test_learning_rate_scheduler_refuses_a_nan_and_keeps_the_lr():
    params = params_pair()
    opt = msoptim.Momentum(params, 0.1, 0.9)
    scheduler = msoptim.LearningRateScheduler(lambda lr, step: lr * NAN)
    with pytest.raises(ValueError, match=r"returned nan at step 1"):
        scheduler.step_end(opt, 1)
    assert float(opt.learning_rate) == pytest.approx(0.1)


def test_builtin_schedules_are_finite_at_step_zero_for_their_extreme_arguments():
    """Valid arguments at the edges of their ranges still give a finite first lr."""
    tiny, huge = 1e-38, 3e38
    schedules = [
        msoptim.ExponentialDecayLR(huge, 1e-30, 1),
        msoptim.ExponentialDecayLR(tiny, 1e30, 1),
        msoptim.NaturalExpDecayLR(huge, 1e30, 1),
        msoptim.InverseDecayLR(huge, 1e30, 1),
        msoptim.CosineDecayLR(0.0, huge, 2**31 - 1),
        msoptim.PolynomialDecayLR(huge, 0.0, 1, 1e-30),
        msoptim.WarmUpLR(huge, 2**31 - 1),
    ]
    for schedule in schedules:
        opt = msoptim.Momentum(params_pair(), schedule, 0.9)
        assert bool(torch.isfinite(opt.get_lr())), schedule
