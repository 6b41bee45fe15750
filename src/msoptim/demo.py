"""``python -m msoptim.demo`` (``make demo``): MindSpore's parameter-group recipe, end to end.

A small ResNet (:mod:`msoptim._resnet`) learns scikit-learn's ``load_digits()`` (1,797 8x8 images
that ship with scikit-learn, so it runs offline) with the grouping of MindSpore's "Learning Rate and
Optimizer" chapter, translated to msoptim with the snippet's two bugs fixed:

* conv weights: ``lr = cosine_decay_lr(0.0, k * 1e-3, total_step, step_per_epoch, epochs)``,
  ``weight_decay = 1e-4``;
* BN gamma/beta: ``lr = k * 1e-4`` (static), ``weight_decay = 0.0``;
* dense weight: ``lr = k * 1e-3`` (static), ``weight_decay = 1e-5``;
* everything else (the dense bias): the optimizer's ``learning_rate = k * 1e-3``;
* and ``{'order_params': trainable_params(net)}``.

``k`` scales the seed's learning rates to what the toy data and the chosen optimizer need (100 for
Momentum: conv 0.1 → 0, BN 0.01, dense 0.1). Because a dynamic lr is mixed with static ones,
MindSpore evaluates every static lr as ``(lr + 1) - 1`` in float32; msoptim does the same, and the
logged lrs show it (0.01 is used as 0.00999999).

Every step reads ``opt.get_lr()`` *before* the update (the lr that step uses) and logs it; nothing
is recomputed. Outputs in ``--out`` (default ``runs/demo/``): ``lr.png`` (every group's lr over the
steps run), ``loss.png``, ``steps.csv`` (one row per step), ``summary.json`` and ``checkpoint.pt``
(``{'model': ..., 'optimizer': opt.state_dict()}``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

import msoptim
from msoptim._resnet import small_resnet

__all__ = [
    "RECIPES",
    "DemoResult",
    "Recipe",
    "available_optimizers",
    "build_groups",
    "main",
    "train",
]

#: The seed's learning rates, before scaling by the recipe's ``scale``.
SEED_CONV_MAX_LR = 1e-3
SEED_BN_LR = 1e-4
SEED_DENSE_LR = 1e-3
GROUP_NAMES = ("conv", "bn", "dense", "other")
INSTALL_HINT = "pip install 'msoptim[demo]' (scikit-learn, matplotlib, tqdm)"


@dataclass(frozen=True)
class Recipe:
    """How the demo drives one optimizer.

    Attributes:
        scale: ``k``, the factor applied to the seed's lrs (1e-3 conv and dense, 1e-4 BN).
        kwargs: extra constructor arguments (MindSpore names).
    """

    scale: float
    kwargs: dict[str, Any] = field(default_factory=dict)


#: Per-optimizer settings; each reaches >= 98% held-out accuracy with the default epochs and seed
#: (checked on CPU). Only names that exist in ``msoptim`` at runtime are offered. FTRL (no group or
#: dynamic lr, as in MindSpore), AdaFactor (relative-step lr) and LARS (a wrapper around another
#: optimizer) don't fit the seed's grouping and are left out.
RECIPES: dict[str, Recipe] = {
    "Momentum": Recipe(100.0, {"momentum": 0.9}),
    "SGD": Recipe(100.0, {"momentum": 0.9}),
    "Adam": Recipe(2.0),
    "AdamWeightDecay": Recipe(2.0),
    "AdamOffload": Recipe(2.0),
    "LazyAdam": Recipe(2.0),
    "AdaMax": Recipe(2.0),
    "Lamb": Recipe(20.0),
    "RMSProp": Recipe(1.0),
    "Adagrad": Recipe(100.0),
    "ProximalAdagrad": Recipe(100.0),
    "Adadelta": Recipe(1000.0),
    "ASGD": Recipe(200.0),
    "Rprop": Recipe(10.0),
}


def available_optimizers() -> list[str]:
    """The recipe names that ``msoptim`` provides right now (other optimizers are being added)."""
    names = []
    for name in RECIPES:
        cls = getattr(msoptim, name, None)
        if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer):
            names.append(name)
    return names


@dataclass
class DemoResult:
    """What :func:`train` reports (also written to ``summary.json``)."""

    accuracy: float
    loss: float
    correct: int
    held_out: int
    steps: int
    ms_per_step: float
    train_seconds: float
    total_seconds: float
    device: str
    optimizer: str
    out: str
    files: list[str]


# ---------------------------------------------------------------------------------------- data


def load_data(seed: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``load_digits()`` as ``(N, 1, 8, 8)`` float tensors in [-1, 1], split 80/20, stratified."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise SystemExit(f"msoptim.demo needs scikit-learn: {INSTALL_HINT}") from error
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0
    labels = torch.tensor(digits.target, dtype=torch.int64)
    train_idx, test_idx = train_test_split(
        list(range(len(labels))), test_size=0.2, stratify=digits.target, random_state=seed
    )
    train_idx, test_idx = torch.tensor(train_idx), torch.tensor(test_idx)
    return (
        images[train_idx].to(device),
        labels[train_idx].to(device),
        images[test_idx].to(device),
        labels[test_idx].to(device),
    )


# ---------------------------------------------------------------------------------------- groups


def build_groups(
    net: nn.Module, conv_lr: Any, bn_lr: float, dense_lr: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """MindSpore's grouping example on a PyTorch model, with the seed's two bugs fixed.

    Walks the modules by type, as the seed walks ``cells_and_names()``, then takes the rest of
    ``trainable_params(net)`` as "other" with an *identity* test combined by ``and`` (the seed used
    ``or``, which puts every parameter into "other", and ``in``, which compares tensors by value).

    Args:
        net: the model.
        conv_lr: the conv weights' lr (the seed uses a ``cosine_decay_lr`` list).
        bn_lr: the BN gamma/beta lr.
        dense_lr: the dense weights' lr.

    Returns:
        ``(groups, names)``: the group dicts for the optimizer (``order_params`` first, as in the
        seed) and the name of each group with ``params``, in order.
    """
    named = msoptim.trainable_params(net)
    pair_of = {id(param): (name, param) for name, param in named}
    conv, bn, dense = [], [], []
    for _, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            conv.append(pair_of[id(module.weight)])
        elif isinstance(module, nn.BatchNorm2d):
            bn += [pair_of[id(module.weight)], pair_of[id(module.bias)]]  # gamma, beta
        elif isinstance(module, nn.Linear):
            dense.append(pair_of[id(module.weight)])
    grouped = {id(param) for _, param in conv + bn + dense}
    other = [(name, param) for name, param in named if id(param) not in grouped]
    groups = [
        {"order_params": named},
        {"params": conv, "weight_decay": 1e-4, "lr": conv_lr},
        {"params": bn, "lr": bn_lr, "weight_decay": 0.0},
        {"params": dense, "lr": dense_lr, "weight_decay": 1e-5},
    ]
    names = list(GROUP_NAMES[:3])
    if other:
        groups.append({"params": other})
        names.append("other")
    return groups, names


def make_optimizer(
    name: str, net: nn.Module, step_per_epoch: int, epochs: int
) -> tuple[msoptim.Optimizer, list[dict[str, Any]], list[str]]:
    """The seed's recipe for ``net`` with optimizer ``name`` and its :data:`RECIPES` entry.

    The conv lr is ``cosine_decay_lr(0.0, k * 1e-3, total_step, step_per_epoch, epochs)``: a table
    covering exactly the ``step_per_epoch * epochs`` steps that will run.

    Returns:
        ``(optimizer, groups, names)``: the optimizer, the group dicts given to it and their names.
    """
    recipe = RECIPES[name]
    k = recipe.scale
    total_step = step_per_epoch * epochs
    conv_lr = msoptim.cosine_decay_lr(0.0, SEED_CONV_MAX_LR * k, total_step, step_per_epoch, epochs)
    groups, names = build_groups(net, conv_lr, SEED_BN_LR * k, SEED_DENSE_LR * k)
    optimizer_cls = getattr(msoptim, name)
    opt = optimizer_cls(groups, learning_rate=SEED_DENSE_LR * k, **recipe.kwargs)
    return opt, groups, names


def group_lr_reader(opt: msoptim.Optimizer, groups: list[dict[str, Any]]) -> list[int]:
    """For each group, the index in ``opt.parameters`` of its first parameter (by identity).

    ``opt.get_lr()`` returns one lr per parameter with group lrs; every parameter of a group shares
    its group's lr, so the first one stands for the group.
    """
    index_of = {id(param): i for i, param in enumerate(opt.parameters)}
    return [index_of[id(group["params"][0][1])] for group in groups if "params" in group]


def read_group_lrs(opt: msoptim.Optimizer, indices: list[int]) -> Tensor:
    """The lr each group's next step uses, from ``opt.get_lr()``: a 1-D float32 tensor (a copy)."""
    lrs = opt.get_lr()
    if isinstance(lrs, tuple):
        return torch.stack([lrs[i] for i in indices])
    return lrs.reshape(1).expand(len(indices)).clone()


# ---------------------------------------------------------------------------------------- training


def pick_threads(requested: str) -> tuple[int, str]:
    """``(threads, reason)`` for ``torch.set_num_threads``; 0 leaves torch's default.

    ``auto`` means 2 threads (or fewer cores), unless the CPU is already busy: then 1. On a shared
    2-core machine, OpenMP threads that wait for a core held by another process made this demo's
    small convolutions ~10x slower with 2 threads than with 1 (240 vs 18-27 ms per step at load
    average 4.5; 9 ms with 2 threads when idle).
    """
    if requested != "auto":
        return int(requested), ""
    cores = os.cpu_count() or 1
    threads = min(2, cores)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        return threads, ""
    free = round(cores - load)
    if threads > 1 and free < threads:
        return 1, f"the CPU is busy (load average {load:.1f} on {cores} cores)"
    return threads, ""


def _threads_text() -> str:
    count = torch.get_num_threads()
    return f"{count} CPU thread{'s' if count != 1 else ''}"


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else MPS when available, else the CPU."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@torch.no_grad()
def evaluate(net: nn.Module, images: Tensor, labels: Tensor) -> tuple[float, int, float]:
    """``(accuracy, correct, mean cross-entropy)`` on a held-out set, in eval mode."""
    net.eval()
    logits = net(images)
    loss = nn.functional.cross_entropy(logits, labels)
    correct = int((logits.argmax(1) == labels).sum())
    net.train()
    return correct / len(labels), correct, float(loss)


class _NoBar:
    """Stands in for a tqdm bar when progress bars are off (or tqdm is missing)."""

    def update(self, count: int = 1) -> None:
        """Nothing to draw."""

    def set_postfix_str(self, text: str) -> None:
        """Nothing to draw."""

    def close(self) -> None:
        """Nothing to close."""


def _progress_bar(enabled: bool, total: int, description: str) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=description, dynamic_ncols=True, file=sys.stderr)


def _lr_text(names: Sequence[str], values: Sequence[float]) -> str:
    return " ".join(f"{name}={value:.3g}" for name, value in zip(names, values))


def train(args: argparse.Namespace) -> DemoResult:
    """Train the demo network as configured by :func:`parse_args`; write every output file.

    The global RNG state and torch's thread count are restored afterwards, so calling this from
    other code (or a test session) leaves no trace beyond the files in ``args.out``.
    """
    device = pick_device(args.device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    previous_threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng(devices=cuda):
            return _train(args, device)
    finally:
        torch.set_num_threads(previous_threads)


def _train(args: argparse.Namespace, device: torch.device) -> DemoResult:
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    threads, why = pick_threads(args.threads)
    if threads:
        torch.set_num_threads(threads)
    if why:
        print(f"(1 CPU thread: {why}; --threads 2 to override)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_x, train_y, test_x, test_y = load_data(args.seed, device)

    batches = (len(train_y) + args.batch_size - 1) // args.batch_size
    step_per_epoch = min(batches, args.limit_batches) if args.limit_batches else batches
    net = small_resnet().to(device)
    opt, groups, names = make_optimizer(args.optimizer, net, step_per_epoch, args.epochs)
    lr_index = group_lr_reader(opt, groups)
    describe_groups(opt, groups, names, step_per_epoch, args, device)

    generator = torch.Generator().manual_seed(args.seed)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    if progress:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            print(f"(no progress bars: tqdm is not installed: {INSTALL_HINT})")
            progress = False
    step_lrs: list[Tensor] = []
    step_losses: list[Tensor] = []
    epochs_log: list[dict[str, float]] = []
    train_seconds = 0.0
    for epoch in range(args.epochs):
        order = torch.randperm(len(train_y), generator=generator).to(device)
        bar = _progress_bar(progress, step_per_epoch, f"epoch {epoch + 1}/{args.epochs}")
        epoch_start = time.perf_counter()
        first = len(step_losses)
        for i in range(step_per_epoch):
            batch = order[i * args.batch_size : (i + 1) * args.batch_size]
            lrs = read_group_lrs(opt, lr_index)  # the lrs this step uses (global_step before it)
            loss = nn.functional.cross_entropy(net(train_x[batch]), train_y[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step_lrs.append(lrs)
            step_losses.append(loss.detach())
            if progress and (
                i % 5 == 0 or i == step_per_epoch - 1
            ):  # .item() syncs: not every step
                bar.set_postfix_str(f"loss={loss.item():.4f} lr {_lr_text(names, lrs.tolist())}")
            bar.update()
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_seconds += time.perf_counter() - epoch_start
        accuracy, _, held_loss = evaluate(net, test_x, test_y)
        mean_loss = float(torch.stack(step_losses[first:]).mean())
        epochs_log.append(
            {
                "epoch": epoch + 1,
                "train_loss": mean_loss,
                "held_out_loss": held_loss,
                "held_out_accuracy": accuracy,
                "last_step": len(step_losses) - 1,
            }
        )
        if progress:
            bar.set_postfix_str(
                f"loss={mean_loss:.4f} held-out acc={accuracy:.2%} "
                f"lr {_lr_text(names, step_lrs[-1].tolist())}"
            )
            bar.close()
        else:
            print(
                f"epoch {epoch + 1:>3}/{args.epochs}: train loss {mean_loss:.4f}, held-out "
                f"accuracy {accuracy:.2%}, loss {held_loss:.4f}, lr "
                f"{_lr_text(names, step_lrs[-1].tolist())}",
                flush=True,
            )

    accuracy, correct, held_loss = evaluate(net, test_x, test_y)
    lrs_table = torch.stack(step_lrs).cpu().tolist()
    losses = torch.stack(step_losses).cpu().tolist()
    files = write_outputs(out, names, lrs_table, losses, epochs_log, step_per_epoch, net, opt)
    total_steps = len(losses)
    result = DemoResult(
        accuracy=accuracy,
        loss=held_loss,
        correct=correct,
        held_out=len(test_y),
        steps=total_steps,
        ms_per_step=1000.0 * train_seconds / max(total_steps, 1),
        train_seconds=train_seconds,
        total_seconds=0.0,
        device=str(device),
        optimizer=args.optimizer,
        out=str(out),
        files=files,
    )
    result.total_seconds = time.perf_counter() - started
    summary = {
        "result": asdict(result),
        "args": vars(args),
        "groups": group_summary(opt, groups, names),
        "epochs": epochs_log,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return result


def describe_groups(
    opt: msoptim.Optimizer,
    groups: list[dict[str, Any]],
    names: list[str],
    step_per_epoch: int,
    args: argparse.Namespace,
    device: torch.device,
) -> None:
    """Print the run's set-up: device, optimizer, and each group's parameters, lr and decay."""
    print(
        f"msoptim demo: {type(opt).__name__} on {device} ({_threads_text()}), "
        f"{args.epochs} epochs x {step_per_epoch} steps, batch {args.batch_size}, seed {args.seed}"
    )
    for row in group_summary(opt, groups, names):
        print(
            f"  {row['group']:<6} {row['tensors']:>2} tensors {row['elements']:>6} values  "
            f"lr {row['lr']:<44} weight_decay {row['weight_decay']}"
        )


def group_summary(
    opt: msoptim.Optimizer, groups: list[dict[str, Any]], names: list[str]
) -> list[dict[str, Any]]:
    """One row per group: name, tensor and element counts, lr description and weight decay."""
    rows = []
    dynamic = [g for g in groups if "params" in g]
    for name, group in zip(names, dynamic):
        lr = group.get("lr")
        if lr is None:
            text = f"{_default_lr(opt):.6g} (the optimizer's learning_rate)"
        elif isinstance(lr, list):
            text = f"cosine_decay_lr table: {lr[0]:.4g} -> {lr[-1]:.4g} ({len(lr)} steps)"
        else:
            text = f"{lr:.6g} (static)"
        rows.append(
            {
                "group": name,
                "tensors": len(group["params"]),
                "elements": sum(p.numel() for _, p in group["params"]),
                "lr": text,
                "weight_decay": group.get("weight_decay", "default"),
                "params": [n for n, _ in group["params"]],
            }
        )
    return rows


def _default_lr(opt: msoptim.Optimizer) -> float:
    for group in opt.param_groups:
        if group["lr_name"] == "learning_rate":
            return float(group["lr"])
    return float("nan")


# ---------------------------------------------------------------------------------------- outputs


def _float32_text(value: float) -> str:
    """The shortest text that reads back as the same float32 (0.1 → "0.1", not 0.10000000149)."""
    return str(np.float32(value))


def write_outputs(
    out: Path,
    names: list[str],
    lrs: list[list[float]],
    losses: list[float],
    epochs_log: list[dict[str, float]],
    step_per_epoch: int,
    net: nn.Module,
    opt: msoptim.Optimizer,
) -> list[str]:
    """Write ``steps.csv``, ``checkpoint.pt`` and the two plots; return the paths written."""
    files = []
    csv_path = out / "steps.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "epoch", "loss", *(f"lr_{name}" for name in names)])
        for step, (loss, row) in enumerate(zip(losses, lrs)):
            writer.writerow([step, step // step_per_epoch, *map(_float32_text, (loss, *row))])
    files.append(str(csv_path))
    checkpoint = out / "checkpoint.pt"
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict()}, checkpoint)
    files.append(str(checkpoint))
    files += plot(out, names, lrs, losses, epochs_log, step_per_epoch)
    return files


def plot(
    out: Path,
    names: list[str],
    lrs: list[list[float]],
    losses: list[float],
    epochs_log: list[dict[str, float]],
    step_per_epoch: int,
) -> list[str]:
    """``lr.png`` (each group's lr per step, as read from the optimizer) and ``loss.png``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed, so no plots were drawn: {INSTALL_HINT}")
        return []
    labels = {
        "conv": "conv weights: cosine_decay_lr (dynamic)",
        "bn": "BN gamma/beta (static, (lr+1)-1 in float32)",
        "dense": "dense weight (static)",
        "other": "other = dense bias (default learning_rate)",
    }
    styles = {"conv": "-", "bn": "-", "dense": "--", "other": ":"}
    steps = list(range(len(lrs)))
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for column, name in enumerate(names):
        values = [row[column] for row in lrs]
        ax.plot(
            steps,
            values,
            styles.get(name, "-"),
            drawstyle="steps-post",
            linewidth=2.2 if name == "conv" else 1.8,
            label=labels.get(name, name),
        )
    for epoch in range(1, max(len(lrs) // step_per_epoch, 1)):
        ax.axvline(epoch * step_per_epoch, color="0.9", linewidth=0.6, zorder=0)
    ax.set_xlabel("step (global_step before the update)")
    ax.set_ylabel("learning rate (opt.get_lr())")
    ax.set_title("Learning rate per parameter group, read from the optimizer at every step")
    ax.set_xlim(0, max(len(lrs) - 1, 1))
    ax.set_ylim(bottom=0)
    ax.legend(loc="center left", fontsize=8, framealpha=0.95)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    lr_path = out / "lr.png"
    fig.savefig(lr_path)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.plot(steps, losses, color="tab:blue", alpha=0.35, linewidth=0.8, label="train loss (step)")
    window = max(1, min(step_per_epoch, len(losses)))
    smooth = [
        sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
        for i in range(len(losses))
    ]
    ax.plot(steps, smooth, color="tab:blue", linewidth=2, label=f"train loss ({window}-step mean)")
    ax.plot(
        [row["last_step"] for row in epochs_log],
        [row["held_out_loss"] for row in epochs_log],
        "o-",
        color="tab:orange",
        label="held-out loss (epoch end)",
    )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.set_title("Loss")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    loss_path = out / "loss.png"
    fig.savefig(loss_path)
    plt.close(fig)
    return [str(lr_path), str(loss_path)]


def format_result(result: DemoResult) -> str:
    """The final table."""
    rows = [
        ("held-out accuracy", f"{result.accuracy:.2%} ({result.correct}/{result.held_out})"),
        ("held-out loss", f"{result.loss:.4f}"),
        ("steps", str(result.steps)),
        ("ms per step", f"{result.ms_per_step:.1f}"),
        ("training time", f"{result.train_seconds:.1f} s"),
        ("total time", f"{result.total_seconds:.1f} s"),
        ("optimizer / device", f"{result.optimizer} / {result.device}"),
        ("outputs", result.out),
    ]
    width = max(len(key) for key, _ in rows)
    value_width = max(len(value) for _, value in rows)
    line = "+" + "-" * (width + 2) + "+" + "-" * (value_width + 2) + "+"
    body = [f"| {key:<{width}} | {value:<{value_width}} |" for key, value in rows]
    return "\n".join([line, *body, line])


# ---------------------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The demo's command line (see ``--help``)."""
    choices = available_optimizers()
    parser = argparse.ArgumentParser(
        prog="python -m msoptim.demo",
        description=(
            "Train a small ResNet on scikit-learn's digits with MindSpore's parameter-group recipe "
            "(conv: cosine_decay_lr + wd 1e-4; BN gamma/beta: static lr, wd 0; dense: static lr, "
            "wd 1e-5; the rest: the default group; order_params), and plot every group's lr as "
            "read from the optimizer."
        ),
        epilog=(
            "Outputs in --out: lr.png, loss.png, steps.csv (step, epoch, loss, lr per group), "
            "summary.json, checkpoint.pt ({'model', 'optimizer'}). "
            f"Needs the demo extra: {INSTALL_HINT}."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=64, help="samples per step")
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, ..."
    )
    parser.add_argument("--out", default="runs/demo", help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="seeds the split, init and shuffling")
    parser.add_argument(
        "--optimizer",
        default="Momentum",
        choices=choices,
        help="msoptim optimizer (those available in this version); lrs are the seed's times a "
        "per-optimizer factor k (Momentum, SGD: 100)",
    )
    parser.add_argument(
        "--limit-batches",
        type=int,
        default=0,
        metavar="N",
        help="at most N steps per epoch (0: all); the lr table is built for the steps run",
    )
    parser.add_argument(
        "--threads",
        default="auto",
        help="torch CPU threads: N, 0 (torch's default) or auto (2, or 1 when the CPU is "
        "already busy)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tqdm progress bars (default: when stderr is a terminal)",
    )
    args = parser.parse_args(argv)
    try:
        device = pick_device(args.device)
    except (RuntimeError, ValueError) as error:
        parser.error(f"--device {args.device!r}: {error}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here (use auto or cpu)")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be a positive int")
    if args.limit_batches < 0:
        parser.error("--limit-batches must be >= 0")
    if args.threads != "auto" and not (args.threads.isdigit()):
        parser.error(f"--threads must be auto or an int >= 0, not {args.threads!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo from the command line; prints the final table and returns 0."""
    args = parse_args(argv)
    result = train(args)
    print(format_result(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
