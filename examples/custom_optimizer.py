"""MindSpore's tutorial custom optimizer (Momentum), ported to msoptim.

In MindSpore a custom optimizer subclasses ``nn.Optimizer``, creates its state with
``self.parameters.clone(prefix="moments", init="zeros")`` and writes the update in
``construct(gradients)``, reading the lr with ``self.get_lr()``. The msoptim port is line for line
the same: subclass ``msoptim.Optimizer``, create state with ``self.clone_state("moments")``,
override ``construct(gradients)``. The base class keeps the rest working for the subclass:
parameter groups, every lr kind (static, table, schedule, per group), ``global_step`` (advanced
after ``construct``), weight decay (``decay_weight``), loss scale (``scale_grad``),
``state_dict`` and MindSpore checkpoint names (``ms_state_dict``: ``moments.<param>``).

The update is MindSpore's Momentum, ``v = v * momentum + g; w = w - lr * v``; the script checks that
it matches ``msoptim.Momentum`` bit for bit on a grouped model.

Run: ``python examples/custom_optimizer.py`` (CPU, about a second).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import msoptim


class MyMomentum(msoptim.Optimizer):
    """The tutorial's Momentum: ``v = v * momentum + g``; ``w = w - lr * v``.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters or group dicts.
        learning_rate: any msoptim lr (float, list, tensor, schedule).
        momentum: the momentum factor.
        weight_decay: weight decay, applied by :meth:`decay_weight` as MindSpore does.
    """

    def __init__(
        self, params: Any, learning_rate: Any, momentum: float = 0.9, weight_decay: float = 0.0
    ) -> None:
        super().__init__(learning_rate, params, weight_decay)
        # MindSpore: self.momentum = Parameter(Tensor(momentum, mstype.float32), name="momentum")
        self.momentum = momentum
        # MindSpore: self.moments = self.parameters.clone(prefix="moments", init="zeros")
        self.moments = self.clone_state("moments")

    def construct(self, gradients: list[torch.Tensor | None]) -> None:
        """One update, under ``torch.no_grad``; the base class advances ``global_step`` after it."""
        gradients = self.decay_weight(gradients)
        gradients = self.scale_grad(gradients)
        lr = self.get_lr()  # a tensor, or one per parameter when groups have their own lr
        lrs = lr if isinstance(lr, tuple) else (lr,) * len(self.parameters)
        for param, moment, grad, param_lr in zip(self.parameters, self.moments, gradients, lrs):
            if grad is None:  # no gradient: MindSpore would pass zeros; torch skips the parameter
                continue
            moment.mul_(self.momentum).add_(grad)  # ops.assign(moment, moment * momentum + grad)
            param.sub_(moment * param_lr)  # ops.assign(param, param - lr * moment)


def build(seed: int) -> nn.Module:
    """A small model with a BatchNorm (gamma/beta) and a dense layer."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def groups_of(model: nn.Module, total_step: int) -> list[dict[str, Any]]:
    """Two groups: weights with a cosine lr table and weight decay, the rest with a static lr."""
    named = msoptim.trainable_params(model)
    weights = [(n, p) for n, p in named if n.endswith("weight")]
    rest = [(n, p) for n, p in named if not n.endswith("weight")]
    table = msoptim.cosine_decay_lr(0.0, 0.1, total_step, 2, 3)
    return [
        {"params": weights, "lr": table, "weight_decay": 1e-4},
        {"params": rest, "lr": 0.05},
    ]


def main() -> None:
    """Train the custom optimizer and msoptim.Momentum side by side and compare them."""
    total_step = 6
    ours, reference = build(0), build(0)
    opt = MyMomentum(groups_of(ours, total_step), learning_rate=0.1, momentum=0.9)
    ref = msoptim.Momentum(groups_of(reference, total_step), learning_rate=0.1, momentum=0.9)
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    print("step  lr (weights)   lr (rest)     loss")
    for step in range(total_step):
        lrs = opt.get_lr()
        for model, optimizer in ((ours, opt), (reference, ref)):
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"{step:>4}  {float(lrs[0]):<13.8g}  {float(lrs[-1]):<12.8g}  {loss.item():.4f}")

    same = all(torch.equal(a, b) for a, b in zip(ours.parameters(), reference.parameters()))
    moments = all(
        torch.equal(opt.state[a]["moments"], ref.state[b]["moments"])
        for a, b in zip(opt.parameters, ref.parameters)
    )
    print(f"\nidentical to msoptim.Momentum: parameters {same}, moments {moments}")
    print(f"global_step {int(opt.global_step)}")
    names = [name for name in opt.ms_state_dict() if name.startswith("moments.")]
    print(f"MindSpore checkpoint names: {names[:3]} ... ({len(names)} moments)")


if __name__ == "__main__":
    main()
