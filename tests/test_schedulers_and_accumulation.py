"""torch lr schedulers and gradient accumulation with every msoptim optimizer.

Contract:
* ``torch.optim.lr_scheduler`` classes drive a *static* lr: ``param_groups[i]["lr"]`` is the live
  float32 0-d tensor the step reads, so the lr a scheduler writes is the lr of the next step
  (checked against the same scheduler over ``torch.optim.SGD`` with a tensor lr, and against a run
  that assigns those lrs by hand).
* With a dynamic lr (table, schedule, or a group holding one), a torch scheduler would be silently
  overridden by ``global_step``: the next ``step()`` raises ``UnsupportedLrKindError`` instead and
  changes nothing (torch's ``LRScheduler`` marks groups with ``initial_lr``; any other in-place
  write, e.g. torch's ``ReduceLROnPlateau``, is seen by the tensor's version counter).
* Gradient accumulation (``step()`` every k micro-batches) counts updates: ``global_step`` is the
  number of ``step()`` calls, and a table lr advances once per update.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.optim import lr_scheduler

import msoptim
from fixtures.optimizer_registry import (
    CASES,
    available_cases,
    batch,
    build,
    flat_state,
    learning_rate,
    make_model,
    single_thread,  # noqa: F401 (autouse fixture)
    train_step,
)

STEPS = 6

SCHEDULERS = {
    "StepLR": lambda opt: lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    "MultiStepLR": lambda opt: lr_scheduler.MultiStepLR(opt, milestones=[1, 4], gamma=0.3),
    "ExponentialLR": lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.9),
    "CosineAnnealingLR": lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=5, eta_min=1e-4),
    "LambdaLR": lambda opt: lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1 + epoch)),
    "OneCycleLR": lambda opt: lr_scheduler.OneCycleLR(
        opt, max_lr=0.1, total_steps=STEPS, cycle_momentum=False
    ),
    "LinearLR": lambda opt: lr_scheduler.LinearLR(opt, start_factor=0.2, total_iters=4),
}


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def _torch_lrs(make_scheduler, lr: float) -> list[float]:
    """The lrs the scheduler produces over torch.optim.SGD with a float32 tensor lr."""
    param = torch.nn.Parameter(torch.zeros(1))
    sgd = torch.optim.SGD([param], lr=torch.tensor(lr, dtype=torch.float32))
    scheduler = make_scheduler(sgd)
    lrs = []
    for _ in range(STEPS):
        lrs.append(float(sgd.param_groups[0]["lr"]))
        param.grad = torch.zeros(1)
        sgd.step()
        scheduler.step()
    return lrs


def _check_scheduler(case, make_scheduler):
    """The scheduler's lrs are the ones ``case``'s optimizer uses, as if assigned by hand."""
    model, opt = _quiet(build, case, "static")
    sched = make_scheduler(opt)
    used = []
    for step in range(STEPS):
        used.append(float(opt.param_groups[0]["lr"]))
        assert opt.param_groups[0]["lr"] is opt.learning_rate
        train_step(model, opt, step)
        sched.step()
    assert used == _torch_lrs(make_scheduler, case.lr), case.name
    manual_model, manual = _quiet(build, case, "static")
    for step, lr in enumerate(used):
        msoptim.assign(manual.learning_rate, lr)
        train_step(manual_model, manual, step)
    reference, state = flat_state(manual_model, manual), flat_state(model, opt)
    # The groups' lr differ by the scheduler's final step (after the last update).
    diff = [
        key
        for key in reference
        if "param_groups" not in key and not torch.equal(reference[key], state[key])
    ]
    assert diff == [], f"{case.name}: {diff[:5]}"


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_torch_schedulers_drive_a_static_lr(scheduler):
    _check_scheduler(CASES["Momentum"], SCHEDULERS[scheduler])


def test_torch_scheduler_drives_every_optimizer():
    cases = available_cases()
    assert cases
    for case in cases:
        _check_scheduler(case, SCHEDULERS["OneCycleLR"])


def test_scheduler_per_group_static_lrs():
    """Groups with their own static lr: LambdaLR with one lambda per group."""
    model = make_model()
    named = msoptim.trainable_params(model)
    opt = msoptim.Momentum(
        [{"params": named[:2], "lr": 0.1}, {"params": named[2:], "lr": 0.01}], 0.05, 0.9
    )
    sched = lr_scheduler.LambdaLR(opt, [lambda e: 0.5**e, lambda e: 1.0 + e])
    for step in range(3):
        train_step(model, opt, step)
        sched.step()
    lrs = [float(lr) for lr in opt.get_lr()]
    assert lrs[0] == pytest.approx(0.1 * 0.5**3, rel=1e-6)
    assert lrs[-1] == pytest.approx(0.01 * 4, rel=1e-6)


def test_groups_without_lr_share_the_learning_rate_tensor():
    """MindSpore has one 'learning_rate' for every group without 'lr': one tensor, one value."""
    model = make_model()
    named = msoptim.trainable_params(model)
    opt = msoptim.Momentum([{"params": named[:2]}, {"params": named[2:]}], 0.1, 0.9)
    assert opt.param_groups[0]["lr"] is opt.param_groups[1]["lr"]
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    train_step(model, opt, 0)
    sched.step()
    assert opt.param_groups[1]["lr"].item() == torch.tensor(0.05).item()


def test_one_cycle_momentum_cycles_the_group_momentum():
    """OneCycleLR(cycle_momentum=True) writes group['momentum'], which Momentum's kernel reads."""
    model, opt = build(CASES["Momentum"], "static")
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=STEPS, base_momentum=0.8)
    momenta = []
    for step in range(3):
        momenta.append(opt.param_groups[0]["momentum"])
        train_step(model, opt, step)
        sched.step()
    assert momenta[0] == pytest.approx(0.95)
    assert momenta[1] < momenta[0]


def _dynamic_cases():
    return [
        (case, kind)
        for case in available_cases()
        for kind in ("table", "schedule", "groups")
        if kind in case.lr_kinds
    ]


def test_torch_scheduler_on_a_dynamic_lr_raises():
    runs = _dynamic_cases()
    assert runs
    for case, kind in runs:
        model, opt = _quiet(build, case, kind)
        train_step(model, opt, 0)
        lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        before = flat_state(model, opt)
        with pytest.raises(msoptim.UnsupportedLrKindError, match="dynamic"):
            train_step(model, opt, 1)
        after = flat_state(model, opt)
        assert all(torch.equal(before[k], after[k]) for k in before), (case.name, kind)
        assert int(opt.global_step) == 1


def test_torch_reduce_on_plateau_on_a_dynamic_lr_raises():
    model, opt = build(CASES["Momentum"], "table")
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    train_step(model, opt, 0)
    sched.step(1.0)
    train_step(model, opt, 1)
    sched.step(2.0)  # no improvement: torch writes a reduced lr into the group's lr tensor
    with pytest.raises(msoptim.UnsupportedLrKindError, match="ReduceLROnPlateau"):
        train_step(model, opt, 2)
    assert int(opt.global_step) == 2


def test_in_place_write_to_a_dynamic_lr_mirror_raises():
    model, opt = build(CASES["Momentum"], "schedule")
    train_step(model, opt, 0)
    msoptim.assign(opt.param_groups[0]["lr"], 0.5)
    with pytest.raises(msoptim.UnsupportedLrKindError):
        train_step(model, opt, 1)


def test_assigning_a_number_to_a_dynamic_lr_raises():
    model, opt = build(CASES["Momentum"], "table")
    train_step(model, opt, 0)
    opt.param_groups[0]["lr"] = 0.5
    with pytest.raises(msoptim.UnsupportedLrKindError):
        train_step(model, opt, 1)


def test_dynamic_lr_without_scheduler_and_after_load_steps_fine():
    """No false alarm: normal steps, state_dict round trips and get_lr() do not trip the check."""
    case = CASES["Momentum"]
    model, opt = build(case, "groups")
    for step in range(3):
        train_step(model, opt, step)
        opt.get_lr()
    _, other = build(case, "groups")
    other.load_state_dict(opt.state_dict())
    opt.load_state_dict(opt.state_dict())
    train_step(model, opt, 3)
    assert int(opt.global_step) == 4


def test_gradient_accumulation_counts_updates():
    updates, accumulate = 3, 3
    for case in available_cases():
        kind = "table" if "table" in case.lr_kinds else "static"
        model = make_model()
        twin = make_model()
        opt = _quiet(case.make, msoptim.trainable_params(model), learning_rate(case, kind))
        ref = _quiet(case.make, msoptim.trainable_params(twin), learning_rate(case, kind))
        micro = 0
        for update in range(updates):
            opt.zero_grad()
            sums = None
            for _ in range(accumulate):
                x, y = batch(micro)
                micro += 1
                (torch.nn.functional.mse_loss(model(x), y) / accumulate).backward()
                twin.zero_grad()
                (torch.nn.functional.mse_loss(twin(x), y) / accumulate).backward()
                grads = [p.grad.clone() for p in ref.parameters]
                sums = grads if sums is None else [a + b for a, b in zip(sums, grads)]
            opt.step()
            ref(tuple(sums))
            assert int(opt.global_step) == update + 1, case.name
            if kind == "table":
                expected = torch.tensor(learning_rate(case, "table")[update], dtype=torch.float32)
                assert torch.equal(opt.param_groups[0]["lr"], expected), case.name
        state, reference = flat_state(model, opt), flat_state(twin, ref)
        diff = [key for key in state if not torch.equal(state[key], reference[key])]
        assert diff == [], f"{case.name}: {diff[:5]}"
