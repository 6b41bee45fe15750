"""MindSpore's parameter-grouping example ("Learning Rate and Optimizer" chapter), on msoptim.

The chapter builds four groups for a CNN: conv weights (cosine-decayed lr, weight decay 1e-4),
BatchNorm gamma/beta (lr 1e-4, no weight decay), dense weights (lr 1e-3, weight decay 1e-5) and
everything else (the optimizer's defaults), plus ``order_params``. The older version of the snippet
has two bugs, fixed here and marked ``FIX``:

1. ``cell.bata``: BatchNorm has no such attribute, so building the lists raises AttributeError.
   It is ``beta`` in MindSpore, ``bias`` in PyTorch (``trainable_params`` names it ``...beta``).
2. The "other" filter joined its tests with ``or``. No parameter is in all three lists, so every
   parameter passed and "other" held them all: the optimizer rejects the duplicates. The tests must
   be joined with ``and``, and must compare by identity (``param not in list`` compares tensors
   element-wise with ``==``).

Run: ``python examples/seed_grouping.py`` (CPU, a second or two).
"""

from __future__ import annotations

import torch
from torch import nn

import msoptim


class Network(nn.Module):
    """The chapter's network: two conv/BN/ReLU/max-pool stages and a dense layer."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(3, 12, kernel_size=3, padding=1),
            nn.BatchNorm2d(12),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.layer2 = nn.Sequential(
            nn.Conv2d(12, 4, kernel_size=3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.pool = nn.AdaptiveMaxPool2d((5, 5))
        self.fc = nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of 3-channel images."""
        x = self.pool(self.layer2(self.layer1(x)))
        return self.fc(x.view(-1, 100))  # the newer snippet calls nn.Dense(x) here: use self.fc


def params_not_in(param: torch.Tensor, param_list: list[torch.Tensor]) -> bool:
    """True when ``param`` is not one of ``param_list``, compared by identity (FIX for bug 2)."""
    return all(param is not other for other in param_list)


def seed_lists(net: nn.Module) -> tuple[list, list, list]:
    """The snippet's conv / BN / dense lists, walking the modules by type."""
    conv_weight, bn_weight, dense_weight = [], [], []
    for _, cell in net.named_modules():  # MindSpore: net.cells_and_names()
        if isinstance(cell, nn.Conv2d):
            conv_weight.append(cell.weight)
        elif isinstance(cell, nn.BatchNorm2d):
            bn_weight.append(cell.weight)  # gamma
            bn_weight.append(cell.bias)  # beta. FIX for bug 1: the old snippet wrote cell.bata
        elif isinstance(cell, nn.Linear):
            dense_weight.append(cell.weight)
    return conv_weight, bn_weight, dense_weight


def main() -> None:
    """Build the groups (first the buggy filter, to show the error), then train a few steps."""
    torch.manual_seed(0)
    net = Network()
    trainable = msoptim.trainable_params(
        net
    )  # (name, Parameter) pairs; BN weight/bias = gamma/beta
    conv_weight, bn_weight, dense_weight = seed_lists(net)

    # cfg.total_step & co. are undefined in the snippet: 6 epochs of 2 steps here.
    step_per_epoch, epochs = 2, 6
    total_step = step_per_epoch * epochs
    conv_lr = msoptim.cosine_decay_lr(0.0, 1e-3, total_step, step_per_epoch, epochs)  # 0.0, not 0

    def groups(other_param: list) -> list[dict]:
        return [
            {"order_params": trainable},  # listed first, as in the snippet
            {"params": conv_weight, "weight_decay": 1e-4, "lr": conv_lr},
            {"params": bn_weight, "lr": 1e-4, "weight_decay": 0.0},
            {"params": dense_weight, "lr": 1e-3, "weight_decay": 1e-5},
            {"params": other_param},
        ]

    # Bug 2 as the old snippet wrote it: `or` lets every parameter through.
    every = [
        param
        for _, param in trainable
        if params_not_in(param, conv_weight)
        or params_not_in(param, bn_weight)
        or params_not_in(param, dense_weight)
    ]
    try:
        msoptim.Momentum(groups(every), learning_rate=0.1, momentum=0.9)
    except msoptim.DuplicateParameterError as error:
        print(f"with `or` ({len(every)} of {len(trainable)} parameters in 'other'):")
        lines = str(error).splitlines()
        print(f"  {type(error).__name__}: {lines[0]}")
        print(f"  {lines[1][:140]}... ({len(lines) - 1} lines)")

    # FIX for bug 2: `and`, by identity. "other" now holds the conv and dense biases only.
    other_param = [
        param
        for _, param in trainable
        if params_not_in(param, conv_weight)
        and params_not_in(param, bn_weight)
        and params_not_in(param, dense_weight)
    ]
    opt = msoptim.Momentum(groups(other_param), learning_rate=0.1, momentum=0.9)

    print(f"\nwith `and`: {len(other_param)} parameters in 'other'")
    labels = ["conv", "bn", "dense", "other"]
    name_of = {id(p): name for p, name in zip(opt.parameters, opt.parameter_names)}  # identity
    for label, group in zip(labels, opt.param_groups):
        names = [name_of[id(p)] for p in group["params"]]
        print(
            f"  {label:<5} {group['lr_name']:<22} weight_decay={group['weight_decay']:<7} "
            f"{', '.join(names)}"
        )
    print(f"  decay_flags: {opt.decay_flags}")
    print(f"  is_group_lr={opt.is_group_lr} dynamic_lr={opt.dynamic_lr}")

    # Static lrs mixed with a dynamic one are evaluated as (lr + 1) - 1 in float32, as in
    # MindSpore: 1e-4 is used as 1.0001659e-04.
    images, labels_ = torch.randn(8, 3, 20, 20), torch.randint(0, 10, (8,))
    first = {id(group["params"][0]): label for label, group in zip(labels, opt.param_groups)}
    print("\nstep  " + "  ".join(f"{label:>13}" for label in labels) + "      loss")
    for step in range(total_step):
        lrs = opt.get_lr()  # one lr per parameter, in opt.parameters order
        per_group = {first[id(p)]: lr for p, lr in zip(opt.parameters, lrs) if id(p) in first}
        loss = nn.functional.cross_entropy(net(images), labels_)
        opt.zero_grad()
        loss.backward()
        opt.step()
        values = "  ".join(f"{float(per_group[label]):>13.8g}" for label in labels)
        print(f"{step:>4}  {values}  {loss.item():.4f}")

    # The conv table covers total_step steps; one more step raises and changes nothing.
    try:
        opt.step()
    except msoptim.LearningRateTableExhaustedError as error:
        print(f"\nstep {total_step}: {type(error).__name__}: {str(error)[:110]}...")
    print(f"global_step = {int(opt.global_step)}")


if __name__ == "__main__":
    main()
