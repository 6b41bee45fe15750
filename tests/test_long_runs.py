"""Long runs: 10,000 steps of every optimizer without growth, and the int32 ``global_step`` limit.

Contract:

1. **No growth.** 10,000 steps of each optimizer (one tiny parameter, so the run is about the
   Python and tensor bookkeeping of a step, not arithmetic) leave the process where it was after a
   warm-up of 1,000 steps: the live tensors (counted with ``gc``), Python's allocated blocks
   (``sys.getallocatedblocks``: one leaked object per step would add 9,000) and the resident memory
   grow by at most a small constant; every state buffer stays the same tensor in the same memory;
   and ``global_step == 10000`` exactly. Momentum runs on a 10,000-entry lr table (the next step
   then raises) and SGD on a schedule, so the per-step lr lookup is covered too. The heap that
   exists before the test is frozen (``gc.freeze``), so each count and full collection only walks
   the objects the test created.
2. **The int32 limit.** ``global_step`` is an int32 ``(1,)`` tensor, as in MindSpore, so it can
   count to 2**31 - 1 = 2,147,483,647 steps. MindSpore's counter would then wrap to -2**31 and read
   its lr tables and schedules at a negative step; msoptim refuses that step instead: it raises
   ``OverflowError`` before anything changes (checked on the host-side step count, so no device
   sync). Every optimizer steps correctly up to the limit (Lamb, ASGD and Rprop read the counter
   after its increment, so they see t = 2**31 - 1). Checkpoints carry the counter and are checked
   on load: a step outside [0, 2**31 - 1] is refused.
3. **AdaFactor's own counter** is a float32 ``step`` (MindSpore's), which stops counting at
   2**24 = 16,777,216 (float32 spacing is 2 there): from then on ``global_step`` goes on, but
   AdaFactor's relative step size stays at 1/sqrt(2**24) ≈ 2.4e-4 instead of decaying further, and
   ``beta2t`` at 1 - 2**(-24 * decay_rate). msoptim keeps MindSpore's counter and behaviour.

Timing: about 27 s for the whole file on 2 shared CPU cores, pytest start-up (4 s) included; the
17 runs of 10,000 steps are 20 s of it, mostly the Adam family's exact float32 arithmetic.
"""

from __future__ import annotations

import gc
import os
import sys
import warnings

import pytest
import torch
from torch import Tensor, nn

import msoptim
from optim_db import OPTIMIZER_CASES

STEPS = 10_000
WARMUP = 1_000
INT32_MAX = 2**31 - 1
#: Python's allocated blocks may move by a few hundred between two counts (interpreter and torch
#: caches fill in bursts); a leak of one object every 9 steps would add 1,000.
BLOCKS_SLACK = 1_000
#: Resident memory slack; a leaked (2, 3) tensor per step would add several MiB.
RESIDENT_SLACK = 2**20


@pytest.fixture(autouse=True)
def one_thread_and_a_frozen_heap():
    """One intra-op thread (tiny tensors), and ``gc`` walks only what the test creates."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
    torch.set_num_threads(threads)


def tiny_params() -> list[tuple[str, nn.Parameter]]:
    generator = torch.Generator().manual_seed(0)
    return [("fc.weight", nn.Parameter(torch.randn(2, 3, generator=generator)))]


def gradient_cycle(params, count: int = 4) -> list[tuple[Tensor, ...]]:
    generator = torch.Generator().manual_seed(1)
    return [
        tuple(1e-3 * torch.randn(p.shape, generator=generator) for _, p in params)
        for _ in range(count)
    ]


def build(name: str, params, lr=None):
    case = next(c for c in OPTIMIZER_CASES if c.name == name) if name != "LARS" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case is None:
            return msoptim.LARS(msoptim.Momentum(params, 0.01, 0.9, weight_decay=1e-4))
        kwargs = dict(case.configs[-1].kwargs)
        if lr is not None:
            kwargs["learning_rate"] = lr
        return case.cls(params, **kwargs)


def footprint() -> tuple[int, int, int]:
    """(live tensors, Python's allocated blocks, resident bytes) after a full collection."""
    gc.collect()
    tensors = sum(issubclass(type(o), Tensor) for o in gc.get_objects())
    with open("/proc/self/statm") as statm:
        resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return tensors, sys.getallocatedblocks(), resident


def inner(opt):
    return opt.optimizer if isinstance(opt, msoptim.LARS) else opt


def state_layout(opt) -> list[tuple[int, int]]:
    return [
        (id(value), value.data_ptr())
        for state in inner(opt).state.values()
        for value in state.values()
        if isinstance(value, Tensor)
    ]


NAMES = [case.name for case in OPTIMIZER_CASES] + ["LARS"]
#: Two runs read a dynamic lr at every step (a per-step table lookup or schedule evaluation
#: could leak); the Momentum table holds exactly 10,000 entries.
DYNAMIC_LRS = {
    "Momentum": lambda: msoptim.cosine_decay_lr(0.001, 0.01, STEPS, 100, 50),
    "SGD": lambda: msoptim.CosineDecayLR(0.001, 0.01, STEPS // 2),
}


@pytest.mark.parametrize("name", NAMES)
def test_ten_thousand_steps_without_growth(name):
    params = tiny_params()
    opt = build(name, params, lr=DYNAMIC_LRS[name]() if name in DYNAMIC_LRS else None)
    cycle = gradient_cycle(params)
    for step in range(WARMUP):
        opt(cycle[step % len(cycle)])
    tensors_before, blocks_before, resident_before = footprint()
    layout_before = state_layout(opt)
    for step in range(WARMUP, STEPS):
        opt(cycle[step % len(cycle)])
    tensors_after, blocks_after, resident_after = footprint()
    assert opt.global_step.dtype == torch.int32
    assert opt.global_step.shape == (1,)
    assert int(opt.global_step) == STEPS
    assert inner(opt)._host_step == STEPS
    assert tensors_after == tensors_before, (tensors_before, tensors_after)
    assert blocks_after - blocks_before <= BLOCKS_SLACK, (blocks_before, blocks_after)
    assert resident_after - resident_before <= RESIDENT_SLACK, (resident_before, resident_after)
    assert state_layout(opt) == layout_before
    assert all(bool(torch.isfinite(p).all()) for _, p in params)
    if name == "Momentum":  # its table is used up: the next step raises and changes nothing
        with pytest.raises(msoptim.LearningRateTableExhaustedError, match=r"table of 10000"):
            opt(cycle[0])
        assert int(opt.global_step) == STEPS


# ------------------------------------------------------------------------- the int32 limit


def with_global_step(opt, value: int) -> None:
    """Restore ``opt`` from its own checkpoint with ``global_step`` set to ``value``."""
    state = opt.state_dict()
    for group in state["param_groups"]:
        group["global_step"] = torch.tensor([value], dtype=torch.int32)
    opt.load_state_dict(state)


def snapshot(params, opt):
    values = [p.detach().clone() for _, p in params]
    state = [
        value.clone()
        for state in inner(opt).state.values()
        for value in state.values()
        if isinstance(value, Tensor)
    ]
    return values + state + [opt.global_step.clone()]


@pytest.mark.parametrize("name", NAMES)
def test_every_optimizer_steps_to_the_int32_limit_then_refuses(name):
    params = tiny_params()
    opt = build(name, params)
    cycle = gradient_cycle(params)
    opt(cycle[0])
    with_global_step(opt, INT32_MAX - 1)
    opt(cycle[1])  # global_step 2**31 - 2 -> 2**31 - 1, the last step there is
    assert int(opt.global_step) == INT32_MAX
    assert all(bool(torch.isfinite(p).all()) for _, p in params)
    before = snapshot(params, opt)
    with pytest.raises(
        OverflowError, match=r"global_step is 2147483647.*int32.*Nothing was updated"
    ):
        opt(cycle[2])
    for for_before, after in zip(before, snapshot(params, opt)):
        assert torch.equal(for_before, after)
    assert int(opt.global_step) == INT32_MAX  # not wrapped to -2**31


def test_step_style_and_ms_checkpoints_hit_the_same_limit():
    params = tiny_params()
    opt = build("Adam", params)
    state = {name: value.clone() for name, value in opt.ms_state_dict().items()}
    state["global_step"] = torch.tensor([INT32_MAX], dtype=torch.int32)
    opt.load_ms_state_dict(state)
    for (_, p), grad in zip(params, gradient_cycle(params)[0]):
        p.grad = grad
    with pytest.raises(OverflowError, match=r"global_step is 2147483647"):
        opt.step()
    assert int(opt.global_step) == INT32_MAX
    state["global_step"] = torch.tensor([INT32_MAX + 1], dtype=torch.int64)
    with pytest.raises(ValueError, match=r"'global_step' must be one integer in \[0, 2147483647\]"):
        opt.load_ms_state_dict(state)


def test_schedules_and_get_lr_at_the_last_step_are_finite():
    for schedule in (
        msoptim.CosineDecayLR(0.001, 0.01, 1000),
        msoptim.ExponentialDecayLR(0.01, 0.9, 1000),
        msoptim.NaturalExpDecayLR(0.01, 0.1, 1000, is_stair=True),
        msoptim.InverseDecayLR(0.01, 0.5, 1000),
        msoptim.PolynomialDecayLR(0.01, 0.001, 1000, 2.0),
        msoptim.WarmUpLR(0.01, 1000),
    ):
        params = tiny_params()
        opt = msoptim.Momentum(params, schedule, 0.9)
        with_global_step(opt, INT32_MAX - 1)
        lr = opt.get_lr()
        assert bool(torch.isfinite(lr)), schedule
        opt(gradient_cycle(params)[0])
        assert int(opt.global_step) == INT32_MAX


def test_adafactor_float32_step_counter_saturates_at_2_24_like_mindspore():
    params = tiny_params()
    opt = msoptim.AdaFactor(params)
    opt.state[params[0][1]]["step"].fill_(2.0**24)
    for grads in gradient_cycle(params, 3):
        opt(grads)
    assert float(opt.ms_state_dict()["step"]) == 2.0**24
    assert int(opt.global_step) == 3
    assert all(bool(torch.isfinite(p).all()) for _, p in params)
