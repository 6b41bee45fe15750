"""Change a static learning rate during training: in place, or with ``LearningRateScheduler``.

A static lr is a 0-d float32 tensor that the optimizer reads at every step (``opt.learning_rate``,
the same tensor as ``opt.param_groups[0]["lr"]``). Writing into it, with ``fill_`` or
``msoptim.assign`` (MindSpore's ``ops.assign``), changes the lr from the next step on. Rebinding a
name (``lr = 0.01``) changes nothing. ``msoptim.LearningRateScheduler(fn)`` does the same write at
each step end with ``fn(lr, step)``, as MindSpore's callback does.

Run: ``python examples/change_lr_mid_training.py`` (CPU, about a second).
"""

from __future__ import annotations

import torch
from torch import nn

import msoptim


def make_problem(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A tiny regression: a linear model and noisy data from a random linear map."""
    torch.manual_seed(seed)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * torch.randn(64, 1)
    return nn.Linear(4, 1), x, y


def train_step(model: nn.Module, opt: msoptim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One full-batch step; returns the loss before the update."""
    loss = nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def in_place() -> None:
    """``opt.learning_rate.fill_`` after step 4 and ``msoptim.assign`` after step 8."""
    model, x, y = make_problem()
    opt = msoptim.Momentum(msoptim.trainable_params(model), learning_rate=0.05, momentum=0.5)
    same = opt.learning_rate is opt.param_groups[0]["lr"]
    print(f"in place (opt.learning_rate is param_groups[0]['lr']: {same})")
    for step in range(1, 13):
        lr = float(opt.get_lr())  # the lr this step uses
        loss = train_step(model, opt, x, y)
        print(f"  step {step:>2}  lr {lr:<10.6g} loss {loss:.4f}")
        if step == 4:
            opt.learning_rate.fill_(0.02)  # from step 5 on
        elif step == 8:
            msoptim.assign(
                opt.learning_rate, 0.005
            )  # MindSpore: ops.assign(opt.learning_rate, ...)


def with_callback() -> None:
    """``LearningRateScheduler``: halve the lr every 3 steps (``step`` is 1-based and global)."""
    model, x, y = make_problem()
    opt = msoptim.Momentum(msoptim.trainable_params(model), learning_rate=0.05, momentum=0.5)
    scheduler = msoptim.LearningRateScheduler(lambda lr, step: lr * 0.5 if step % 3 == 0 else lr)
    print("LearningRateScheduler: lr * 0.5 at the end of every 3rd step")
    for step in range(1, 10):
        lr = float(opt.get_lr())
        loss = train_step(model, opt, x, y)
        scheduler.step_end(opt, step)  # after the step, as MindSpore's step_end
        print(f"  step {step:>2}  lr {lr:<10.6g} loss {loss:.4f}")

    # MindSpore's callback only handles a single static lr; msoptim says so instead of failing
    # with an AttributeError. Use a schedule (or a dynamic list) for anything else.
    model, _, _ = make_problem()
    table = msoptim.cosine_decay_lr(0.0, 0.1, 10, 5, 2)
    dynamic = msoptim.Momentum(msoptim.trainable_params(model), learning_rate=table, momentum=0.5)
    try:
        scheduler.step_end(dynamic, 1)
    except msoptim.UnsupportedLrKindError as error:
        print(f"  with a dynamic lr: {type(error).__name__}: {str(error)[:100]}...")


if __name__ == "__main__":
    in_place()
    with_callback()
