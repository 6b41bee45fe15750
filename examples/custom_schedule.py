"""A custom learning-rate schedule: linear warm-up, then cosine decay, branch-free.

MindSpore 2.10 has no warm-up-then-decay schedule; its docs tell users to write one. A schedule is a
``msoptim.LearningRateSchedule`` (a ``torch.nn.Module``) whose ``forward(global_step)`` maps the
step tensor to a 0-d float32 lr with tensor ops only: both branches are computed and
``torch.where`` picks one, so there is no ``.item()``, no host sync and nothing to re-trace
when the step changes. The optimizer calls it with its ``global_step`` (the k-th update uses
step k - 1), and it holds no state, so a checkpoint needs nothing but its arguments.

Run: ``python examples/custom_schedule.py`` (CPU, about a second).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

import msoptim
from msoptim.preview import evaluate_schedule, sparkline


class WarmupCosineLR(msoptim.LearningRateSchedule):
    r"""``max_lr * step / warmup_steps`` for ``warmup_steps`` steps, then cosine to ``min_lr``.

    .. math::
        lr(s) = \begin{cases}
            max\_lr \cdot s / W & s < W \\
            min\_lr + \tfrac12 (max\_lr - min\_lr)(1 + \cos(\pi \min(s - W, D) / D)) & s \ge W
        \end{cases}

    The warm-up starts at 0, like MindSpore's ``WarmUpLR``; after ``W + D`` steps the lr stays at
    ``min_lr``, like ``CosineDecayLR``.

    Args:
        min_lr: the final lr, a float ``>= 0``.
        max_lr: the peak lr, a float ``> min_lr``.
        warmup_steps: W, an int ``> 0``.
        decay_steps: D, an int ``> 0``.
    """

    def __init__(self, min_lr: float, max_lr: float, warmup_steps: int, decay_steps: int) -> None:
        super().__init__()
        if not (isinstance(min_lr, float) and isinstance(max_lr, float)):
            raise TypeError("WarmupCosineLR: min_lr and max_lr must be floats (write 0.0, not 0).")
        if not 0.0 <= min_lr < max_lr:
            raise ValueError(f"WarmupCosineLR: need 0 <= min_lr < max_lr, got {min_lr}, {max_lr}.")
        for name, value in (("warmup_steps", warmup_steps), ("decay_steps", decay_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise TypeError(f"WarmupCosineLR: {name} must be a positive int, got {value!r}.")
        # Frozen: read-only afterwards, shown in repr and recorded in the optimizer's state_dict.
        self._freeze(
            min_lr=min_lr, max_lr=max_lr, warmup_steps=warmup_steps, decay_steps=decay_steps
        )

    def forward(self, global_step: Tensor) -> Tensor:
        """The lr at ``global_step`` (a 0-d integer tensor), as a 0-d float32 tensor."""
        step = global_step.to(torch.float32)
        warm = self.max_lr * step / self.warmup_steps
        progress = torch.clamp(step - self.warmup_steps, 0.0, float(self.decay_steps))
        cosine = torch.cos(progress * (math.pi / self.decay_steps))
        decayed = self.min_lr + 0.5 * (self.max_lr - self.min_lr) * (1.0 + cosine)
        return torch.where(step < self.warmup_steps, warm, decayed)


def main() -> None:
    """Preview the schedule, train with it, and compare it with MindSpore's two built-ins."""
    schedule = WarmupCosineLR(min_lr=0.001, max_lr=0.1, warmup_steps=5, decay_steps=20)
    print(schedule)
    curve = evaluate_schedule(schedule, 30)
    print(f"  {sparkline(curve)}  (steps 0..29; min {min(curve):.4g}, max {max(curve):.4g})")

    # Same values as WarmUpLR for the warm-up and CosineDecayLR (shifted by W) afterwards,
    # within float32 rounding (CosineDecayLR uses MindSpore's sin form).
    warmup, cosine = msoptim.WarmUpLR(0.1, 5), msoptim.CosineDecayLR(0.001, 0.1, 20)
    builtin = [float(warmup(s)) if s < 5 else float(cosine(s - 5)) for s in range(30)]
    worst = max(abs(a - b) / max(b, 1e-12) for a, b in zip(curve, builtin))
    print(f"  vs WarmUpLR then CosineDecayLR: max relative difference {worst:.1e} (op order)")

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = msoptim.Momentum(msoptim.trainable_params(model), learning_rate=schedule, momentum=0.9)
    x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
    print("\nstep  lr (opt.get_lr())  loss")
    for step in range(12):
        lr = opt.get_lr()  # schedule(global_step): the lr of this step
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"{step:>4}  {float(lr):<17.8g}  {loss.item():.4f}")

    # The checkpoint names the schedule and its arguments; a resumed run continues at step 12.
    state = opt.state_dict()
    print(f"\ncheckpoint: {state['param_groups'][0]['lr_schedule']}")
    print(f"global_step {int(opt.global_step)}, next lr {float(opt.get_lr()):.8g}")


if __name__ == "__main__":
    main()
