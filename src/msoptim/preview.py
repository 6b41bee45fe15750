"""``msoptim preview``: see a learning rate before training with it.

Two modes:

* **One callable.** ``msoptim preview cosine_decay_lr --min-lr 0.01 --max-lr 0.1 --total-step 600
  --step-per-epoch 30 --decay-epoch 20`` evaluates any of the 7 dynamic-LR functions or the 6
  schedule classes listed in :data:`PREVIEWABLE`. The options are generated from each callable's
  signature and type hints, named as in the API (``min_lr`` → ``--min-lr``). Schedules also take
  ``--steps N`` (how many steps to show).
* **A group configuration.** ``msoptim preview --groups config.py`` reads a Python file that defines
  ``groups`` (a list of dicts with ``lr`` and optionally ``weight_decay``, ``name`` for the legend,
  ``params`` as a list of names) and optionally ``steps`` and ``learning_rate`` (the lr of groups
  without one), builds a real msoptim optimizer over placeholder parameters and reads
  ``opt.get_lr()`` at every step. ``.json`` files work too, and ``.yaml`` when PyYAML is
  installed; in those an lr may be ``{"cosine_decay_lr": {"min_lr": 0.0, ...}}``.

Output: the call, a compact table (the first steps, every step where the value changes, the last),
a one-line Unicode sparkline and the min/max. ``--csv PATH`` writes every step, ``--png PATH`` plots
(matplotlib).

**Values are parsed, not converted.** ``"0"`` is the int ``0`` and ``"0.0"`` the float ``0.0``,
``true``/``false`` are bools: each reaches the callable as written, so MindSpore's type rules apply
exactly as in training (``--min-lr 0`` fails with ``cosine_decay_lr``'s own ``TypeError``). A bad
argument prints that message and exits with status 2, without a traceback.

**How the group preview advances.** The optimizer is the chosen msoptim class (``--optimizer``,
default ``Momentum``) with its update replaced by a no-op, over zero-size parameters: construction,
validation, lr storage (including MindSpore's float32 ``(lr + 1) - 1`` for static lrs mixed with
dynamic ones), ``get_lr()``, the table-length check and the ``global_step`` increment are the real
base-class code, and a step costs no tensor update: 10,000 steps take 1-2 s on a busy 2-core CPU,
almost all of it in ``get_lr()``.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import inspect
import json
import re
import runpy
import sys
import textwrap
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import msoptim

__all__ = [
    "PREVIEWABLE",
    "Curve",
    "evaluate",
    "evaluate_groups",
    "evaluate_schedule",
    "main",
    "parse_value",
    "sparkline",
]

PROG = "msoptim preview"
MATPLOTLIB_HINT = "pip install matplotlib (or pip install 'msoptim[demo]')"

#: Everything ``msoptim preview NAME`` can evaluate: the 7 dynamic-LR functions and the 6 schedules.
PREVIEWABLE: dict[str, Callable[..., Any]] = {
    "piecewise_constant_lr": msoptim.piecewise_constant_lr,
    "exponential_decay_lr": msoptim.exponential_decay_lr,
    "natural_exp_decay_lr": msoptim.natural_exp_decay_lr,
    "inverse_decay_lr": msoptim.inverse_decay_lr,
    "cosine_decay_lr": msoptim.cosine_decay_lr,
    "polynomial_decay_lr": msoptim.polynomial_decay_lr,
    "warmup_lr": msoptim.warmup_lr,
    "ExponentialDecayLR": msoptim.ExponentialDecayLR,
    "NaturalExpDecayLR": msoptim.NaturalExpDecayLR,
    "InverseDecayLR": msoptim.InverseDecayLR,
    "CosineDecayLR": msoptim.CosineDecayLR,
    "PolynomialDecayLR": msoptim.PolynomialDecayLR,
    "WarmUpLR": msoptim.WarmUpLR,
}

_INT = re.compile(r"[+-]?\d+")
_BARS = "▁▂▃▄▅▆▇█"


class PreviewError(Exception):
    """A user mistake to report as ``msoptim preview: error: ...`` with exit status 2."""


# ---------------------------------------------------------------------------------------- values


def parse_value(text: str) -> int | float | bool:
    """Parse one command-line value the way Python would read the literal.

    ``"0"`` → ``0`` (int), ``"0.0"``/``"1e-3"``/``"inf"`` → float, ``"true"``/``"false"`` → bool
    (any case). Nothing is converted to the annotated type, so the callable's own validators see
    exactly what the user wrote.

    Example:
        >>> [parse_value(t) for t in ("0", "0.0", "1e-3", "True", "-2")]
        [0, 0.0, 0.001, True, -2]
    """
    stripped = text.strip()
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    if _INT.fullmatch(stripped):
        return int(stripped)
    try:
        return float(stripped)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number (write ints as 10, floats as 0.1, bools as true/false)"
        ) from None


def _format(value: float, precision: str) -> str:
    """float64 values as Python prints them; float32 values by their shortest float32 text."""
    return repr(float(value)) if precision == "float64" else str(np.float32(value))


# ---------------------------------------------------------------------------------------- arguments


@dataclass(frozen=True)
class Argument:
    """One parameter of a previewable callable, as the command line sees it."""

    name: str
    kind: str  # "int", "float", "bool" or "list"
    required: bool
    default: Any
    help: str

    @property
    def flag(self) -> str:
        """``--min-lr`` for ``min_lr``."""
        return "--" + self.name.replace("_", "-")


def _kind_of(hint: Any) -> str:
    if hint is bool:
        return "bool"
    if hint is int:
        return "int"
    if hint is float:
        return "float"
    origin = typing.get_origin(hint)
    if origin in (list, tuple, Sequence) or (
        isinstance(origin, type) and issubclass(origin, Sequence)
    ):
        return "list"
    raise TypeError(f"msoptim preview cannot build an option for type {hint!r}")


def _arg_docs(target: Callable[..., Any]) -> dict[str, str]:
    """``name -> description`` from a Google-style ``Args:`` section."""
    doc = inspect.getdoc(target) or ""
    match = re.search(r"^Args:\n((?:[ ]{4}.*\n?|\n)+)", doc, flags=re.MULTILINE)
    if not match:
        return {}
    docs: dict[str, str] = {}
    current = None
    for line in match.group(1).splitlines():
        entry = re.match(r"^ {4}(\w+): (.*)$", line)
        if entry:
            current = entry.group(1)
            docs[current] = entry.group(2).strip()
        elif current and line.startswith(" " * 8):
            docs[current] += " " + line.strip()
    return {name: text.replace("``", "") for name, text in docs.items()}


def arguments_of(target: Callable[..., Any]) -> list[Argument]:
    """The command-line arguments of ``target``, from its signature, type hints and docstring."""
    init = target.__init__ if isinstance(target, type) else target
    hints = typing.get_type_hints(init)
    docs = _arg_docs(target)
    result = []
    for parameter in inspect.signature(target).parameters.values():
        required = parameter.default is inspect.Parameter.empty
        result.append(
            Argument(
                name=parameter.name,
                kind=_kind_of(hints[parameter.name]),
                required=required,
                default=None if required else parameter.default,
                help=docs.get(parameter.name, ""),
            )
        )
    return result


def is_schedule(target: Callable[..., Any]) -> bool:
    """True for a ``LearningRateSchedule`` class (evaluated per step), False for an lr function."""
    return isinstance(target, type) and issubclass(target, msoptim.LearningRateSchedule)


class _ListAction(argparse.Action):
    """``--milestone 2 5 10`` or ``--milestone 2,5,10``: a list, each item parsed by parse_value."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        items = []
        for chunk in values:
            for piece in chunk.split(","):
                if piece.strip():
                    try:
                        items.append(parse_value(piece))
                    except argparse.ArgumentTypeError as error:
                        parser.error(f"argument {option_string}: {error}")
        setattr(namespace, self.dest, items)


def _callable_parser(name: str, target: Callable[..., Any]) -> argparse.ArgumentParser:
    summary = (inspect.getdoc(target) or "").split("\n", 1)[0].replace("``", "")
    schedule = is_schedule(target)
    parser = argparse.ArgumentParser(
        prog=f"{PROG} {name}",
        description=f"{name}: {summary} Values keep their written type (0 is an int, 0.0 a "
        "float), so MindSpore's type rules apply as in training.",
    )
    group = parser.add_argument_group(f"arguments of {name} (names as in the API)")
    for arg in arguments_of(target):
        text = arg.help or arg.kind
        if not arg.required and "default" not in text.lower():
            text += f" [default: {arg.default!r}]"
        if arg.kind == "list":
            group.add_argument(
                arg.flag,
                dest=arg.name,
                nargs="+",
                action=_ListAction,
                required=arg.required,
                default=argparse.SUPPRESS,
                metavar="X",
                help=text + " (space- or comma-separated)",
            )
        elif arg.kind == "bool":
            group.add_argument(
                arg.flag,
                dest=arg.name,
                nargs="?",
                const=True,
                type=parse_value,
                required=arg.required,
                default=argparse.SUPPRESS,
                metavar="BOOL",
                help=text + " (a bare flag means true)",
            )
        else:
            group.add_argument(
                arg.flag,
                dest=arg.name,
                type=parse_value,
                required=arg.required,
                default=argparse.SUPPRESS,
                metavar=arg.kind.upper(),
                help=text,
            )
    output = parser.add_argument_group("preview options")
    if schedule:
        output.add_argument(
            "--steps",
            type=_positive_int,
            metavar="N",
            help="steps to evaluate (global_step 0..N-1) [default: 2 x decay_steps or "
            "warmup_steps]",
        )
    _add_output_options(output)
    return parser


def _positive_int(text: str) -> int:
    value = parse_value(text)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}")
    return value


def _add_output_options(group: Any) -> None:
    group.add_argument("--csv", metavar="PATH", help="write every step to a CSV file")
    group.add_argument("--png", metavar="PATH", help="plot to a PNG file (needs matplotlib)")
    group.add_argument(
        "--rows",
        type=_positive_int,
        default=20,
        metavar="N",
        help="at most N milestone rows in the table [default: 20]",
    )


# ------------------------------------------------------------------------------------ evaluation


@dataclass
class Curve:
    """A learning rate over steps ``0..len(values)-1``."""

    label: str
    values: list[float]
    precision: str  # "float64" (lr function lists) or "float32" (tensors, as the optimizer uses)


def evaluate_schedule(schedule: msoptim.LearningRateSchedule, steps: int) -> list[float]:
    """``schedule(step)`` for ``step`` in ``0..steps-1``, as float32 values.

    The schedule's ``forward`` is written with element-wise tensor ops, so it is evaluated once on
    an int32 step vector (the optimizer's ``global_step`` dtype). A spot check against per-step
    calls guards that shortcut; any mismatch, error or wrong shape falls back to one call per step.
    """
    grid = torch.arange(steps, dtype=torch.int32)
    try:
        values = schedule.forward(grid)
    except Exception:
        values = None
    if isinstance(values, torch.Tensor) and values.shape == grid.shape:
        probes = sorted({0, 1, steps // 3, steps // 2, steps - 1} & set(range(steps)))
        exact = all(
            torch.equal(values[i].reshape(()), schedule(torch.tensor(i, dtype=torch.int32)))
            for i in probes
        )
        if exact:
            return values.to(torch.float32).tolist()
    return [float(schedule(torch.tensor(i, dtype=torch.int32))) for i in range(steps)]


def _default_steps(schedule: Any) -> int:
    for name in ("decay_steps", "warmup_steps"):
        value = getattr(schedule, name, None)
        if isinstance(value, int):
            return 2 * value
    return 100


def evaluate(name: str, kwargs: dict[str, Any], steps: int | None = None) -> Curve:
    """Evaluate ``PREVIEWABLE[name](**kwargs)``: the function's list, or the schedule per step.

    Args:
        name: a key of :data:`PREVIEWABLE`.
        kwargs: the callable's arguments, passed unchanged.
        steps: for a schedule, how many steps (default: twice its decay or warm-up steps).

    Returns:
        A :class:`Curve` labelled with the call.

    Raises:
        TypeError, ValueError: the callable's own validation errors, unchanged.

    Example:
        >>> evaluate("warmup_lr", {"learning_rate": 0.1, "total_step": 4, "step_per_epoch": 1,
        ...                        "warmup_epoch": 2}).values
        [0.0, 0.05, 0.1, 0.1]
    """
    result = PREVIEWABLE[name](**kwargs)
    return _curve_of(name, kwargs, result, steps)


def _curve_of(name: str, kwargs: dict[str, Any], result: Any, steps: int | None) -> Curve:
    label = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    if isinstance(result, msoptim.LearningRateSchedule):
        count = steps or _default_steps(result)
        return Curve(label, evaluate_schedule(result, count), "float32")
    return Curve(label, [float(value) for value in result], "float64")


# ---------------------------------------------------------------------------------------- groups


def _no_update(self: Any, gradients: Any) -> None:
    """The preview optimizer's update: nothing (the lr machinery around it is real)."""


_REQUIRED_ARGS: dict[str, dict[str, Any]] = {"Momentum": {"momentum": 0.9}}


def _takes_params(candidate: Any) -> bool:
    """An msoptim optimizer class built from ``params`` (not a wrapper such as LARS)."""
    if not (isinstance(candidate, type) and issubclass(candidate, msoptim.Optimizer)):
        return False
    if candidate is msoptim.Optimizer:
        return False
    first = next(iter(inspect.signature(candidate).parameters), None)
    return first == "params"


def _preview_optimizer_class(name: str) -> type:
    base = getattr(msoptim, name, None)
    if not _takes_params(base):
        choices = [n for n in msoptim.__all__ if _takes_params(getattr(msoptim, n))]
        raise PreviewError(f"unknown optimizer {name!r}; choose from {', '.join(choices)}.")
    # Same name as the real class, so validation messages read exactly as in training.
    return type(base.__name__, (base,), {"construct": _no_update, "__module__": __name__})


def _resolve_lr_spec(value: Any, where: str) -> Any:
    """In JSON/YAML configs, ``{"cosine_decay_lr": {...}}`` calls a previewable."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, kwargs),) = value.items()
        if name in PREVIEWABLE:
            if not isinstance(kwargs, dict):
                raise PreviewError(f"{where}: the arguments of {name} must be a mapping.")
            return PREVIEWABLE[name](**kwargs)
    return value


def _placeholder_groups(groups: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Replace each group's parameters with zero-size placeholders; return groups and labels."""
    if not isinstance(groups, list) or not groups:
        raise PreviewError(
            "'groups' must be a non-empty list of dicts, e.g. groups = [{'lr': 0.1}, "
            "{'lr': msoptim.cosine_decay_lr(0.0, 0.1, 100, 10, 10)}]."
        )
    built: list[dict[str, Any]] = []
    labels: list[str] = []
    order_slots = []
    every: list[tuple[str, nn.Parameter]] = []
    for index, group in enumerate(groups):
        if not isinstance(group, dict):
            raise PreviewError(f"groups[{index}] must be a dict, but got {type(group).__name__}.")
        if "order_params" in group:
            order_slots.append(len(built))
            built.append({"order_params": None})
            continue
        group = dict(group)
        label = str(group.pop("name", group.pop("label", f"group{index}")))
        names = group.pop("params", None)
        if names is None:
            names = [f"{label}.param"]
        elif not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            raise PreviewError(
                f"groups[{index}]['params'] must be a list of parameter names (strings) in a "
                "preview config, or left out."
            )
        if "lr" in group:
            group["lr"] = _resolve_lr_spec(group["lr"], f"groups[{index}]['lr']")
        params = [(name, nn.Parameter(torch.empty(0))) for name in names]
        every += params
        built.append({"params": params, **group})
        labels.append(label)
    for slot in order_slots:
        built[slot] = {"order_params": list(every)}
    return built, labels


def _with_params(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [group for group in groups if "params" in group]


def evaluate_groups(
    groups: Any,
    steps: int | None = None,
    learning_rate: Any = None,
    optimizer: str = "Momentum",
) -> list[Curve]:
    """Each group's lr per step, as ``opt.get_lr()`` reports it on a real msoptim optimizer.

    Args:
        groups: group dicts as given to an optimizer, without real parameters (see module doc).
        steps: steps to evaluate; default: the length of the dynamic lr tables.
        learning_rate: the optimizer's ``learning_rate``; required when a group has no ``lr``.
        optimizer: the msoptim class whose construction rules apply.

    Returns:
        One float32 :class:`Curve` per group with parameters, in order.

    Raises:
        TypeError, ValueError, IndexError: the optimizer's own errors (bad group, exhausted table).
        PreviewError: a malformed configuration.
    """
    built, labels = _placeholder_groups(groups)
    if learning_rate is None:
        missing = [label for label, group in zip(labels, _with_params(built)) if "lr" not in group]
        if missing:
            raise PreviewError(
                f"group {missing[0]!r} has no 'lr', so it uses the optimizer's learning_rate: "
                "define learning_rate = ... in the config."
            )
        learning_rate = 0.1  # unused: every group has its own lr
    learning_rate = _resolve_lr_spec(learning_rate, "learning_rate")
    cls = _preview_optimizer_class(optimizer)
    opt = cls(built, learning_rate=learning_rate, **_REQUIRED_ARGS.get(optimizer, {}))
    if steps is None:
        lengths = [
            len(lr)
            for lr in [*(group.get("lr") for group in built), learning_rate]
            if isinstance(lr, list | tuple) or (isinstance(lr, torch.Tensor) and lr.ndim == 1)
        ]
        if not lengths:
            raise PreviewError(
                "no dynamic lr table sets the number of steps: pass --steps N or define "
                "'steps = N' in the config."
            )
        steps = lengths[0]
    index_of = {id(param): i for i, param in enumerate(opt.parameters)}
    columns = [index_of[id(group["params"][0][1])] for group in _with_params(built)]
    rows = []
    no_gradients = (None,) * len(opt.parameters)
    with torch.inference_mode():  # a throw-away optimizer: skip autograd bookkeeping
        for _ in range(steps):
            lrs = opt.get_lr()  # what this step would use (global_step before the update)
            rows.append(
                torch.stack([lrs[i] for i in columns])
                if isinstance(lrs, tuple)
                else lrs.reshape(1).expand(len(columns))
            )
            opt(no_gradients)  # no gradient, no update: the pipeline runs, global_step += 1
    table = torch.stack(rows).to(torch.float32).cpu().T.tolist() if rows else [[]] * len(columns)
    return [Curve(label, values, "float32") for label, values in zip(labels, table)]


def load_config(path: str) -> dict[str, Any]:
    """Read a group configuration: a .py file (``groups``, ``steps``, ...), JSON or YAML."""
    file = Path(path)
    if not file.is_file():
        raise PreviewError(f"config file {path!r} not found.")
    suffix = file.suffix.lower()
    if suffix == ".json":
        data = json.loads(file.read_text())
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise PreviewError(
                f"{path} is YAML but PyYAML is not installed: pip install pyyaml, or write the "
                "config as a .py or .json file."
            ) from None
        data = yaml.safe_load(file.read_text())
    else:
        try:
            data = runpy.run_path(str(file))
        except Exception as error:  # the user's code: report it like a bad argument
            if isinstance(error, TypeError | ValueError):
                raise PreviewError(f"{path}: {error}") from None
            raise PreviewError(f"{path}: {type(error).__name__}: {error}") from None
    if not isinstance(data, dict) or "groups" not in data:
        raise PreviewError(
            f"{path} must define 'groups' (a list of dicts with 'lr'), and may define 'steps' "
            "and 'learning_rate'."
        )
    return data


# ---------------------------------------------------------------------------------------- output


def sparkline(values: Sequence[float], width: int = 64) -> str:
    """A one-line Unicode sketch of ``values`` (sampled to ``width`` columns, scaled min..max).

    Example:
        >>> sparkline([0.0, 0.5, 1.0])
        '▁▅█'
    """
    if not values:
        return ""
    count = min(width, len(values))
    picks = [values[round(i * (len(values) - 1) / max(count - 1, 1))] for i in range(count)]
    low, high = min(values), max(values)
    if high == low:
        return _BARS[3] * count
    top = len(_BARS) - 1
    return "".join(_BARS[round((v - low) / (high - low) * top)] for v in picks)


def change_points(columns: Sequence[Sequence[float]]) -> list[int]:
    """The steps where any column's value differs from the step before."""
    count = len(columns[0]) if columns else 0
    return [step for step in range(1, count) if any(c[step] != c[step - 1] for c in columns)]


def milestone_rows(columns: Sequence[Sequence[float]], limit: int) -> tuple[list[int], list[int]]:
    """The steps to tabulate: the first three, where any value changes, and the last.

    Returns:
        ``(rows, changes)``: the rows to show (change points sampled evenly down to ``limit``)
        and every change point.
    """
    count = len(columns[0]) if columns else 0
    if count == 0:
        return [], []
    changes = change_points(columns)
    shown = changes
    if len(changes) > limit:
        last = len(changes) - 1
        shown = [changes[round(i * last / max(limit - 1, 1))] for i in range(limit)]
    return sorted({*range(min(3, count)), *shown, count - 1}), changes


def format_table(
    curves: Sequence[Curve], limit: int, step_per_epoch: int | None = None
) -> list[str]:
    """The compact table: step, (epoch), one value column per curve, and what happens there."""
    columns = [curve.values for curve in curves]
    rows, changes = milestone_rows(columns, limit)
    hidden = set(changes) - set(rows)
    headers = ["step"] + (["epoch"] if step_per_epoch else [])
    headers += [curve.label if len(curves) > 1 else "lr" for curve in curves] + ["note"]
    body = []
    previous = None
    last = len(columns[0]) - 1 if columns else -1
    for step in rows:
        if previous is not None and hidden.intersection(range(previous + 1, step)):
            body.append(["⋮"] + ([""] if step_per_epoch else []) + [""] * len(curves) + [""])
        note = "first" if step == 0 else "last" if step == last else ""
        if step and step != last and any(col[step] != col[step - 1] for col in columns):
            note = "changes"
        elif step == last and step and any(col[step] != col[step - 1] for col in columns):
            note = "changes, last"
        cells = [str(step)] + ([str(step // step_per_epoch)] if step_per_epoch else [])
        cells += [_format(col[step], curve.precision) for col, curve in zip(columns, curves)]
        body.append([*cells, note])
        previous = step
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)).rstrip() for row in body]
    if hidden:
        lines.append(
            f"(⋮: {len(hidden)} of {len(changes)} change points not shown; --rows N for more, "
            "--csv for every step)"
        )
    return lines


def summary_lines(curve: Curve, label_width: int = 0) -> list[str]:
    """The sparkline and the min/max of one curve."""
    values = curve.values
    low, high = min(values), max(values)
    prefix = f"{curve.label:<{label_width}}  " if label_width else ""
    return [
        f"{prefix}{sparkline(values)}",
        f"{' ' * len(prefix)}min {_format(low, curve.precision)} (step {values.index(low)})  "
        f"max {_format(high, curve.precision)} (step {values.index(high)})  "
        f"{len(values)} steps",
    ]


def write_csv(path: str, curves: Sequence[Curve]) -> None:
    """One row per step: ``step`` then each curve's value (exact text)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        names = [curve.label for curve in curves] if len(curves) > 1 else ["lr"]
        writer.writerow(["step", *names])
        for step in range(len(curves[0].values)):
            writer.writerow(
                [step, *(_format(curve.values[step], curve.precision) for curve in curves)]
            )


def write_png(path: str, curves: Sequence[Curve], title: str) -> bool:
    """Plot every curve against the step; False (with a hint on stderr) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"{PROG}: --png needs matplotlib: {MATPLOTLIB_HINT}", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    for curve in curves:
        steps = range(len(curve.values))
        ax.plot(steps, curve.values, drawstyle="steps-post", linewidth=1.8, label=curve.label)
    ax.set_xlabel("step (global_step before the update)")
    positive = [v for curve in curves for v in curve.values if v > 0]
    if positive and max(positive) / min(positive) > 100:  # spans decades: a log axis shows all
        ax.set_yscale("log")
        ax.set_ylabel("learning rate (log scale; zeros not drawn)")
    else:
        ax.set_ylabel("learning rate")
    ax.set_title("\n".join(textwrap.wrap(title, 100)), fontsize=8)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _report(
    curves: list[Curve], title: str, args: argparse.Namespace, step_per_epoch: int | None = None
) -> int:
    if not curves or not curves[0].values:
        raise PreviewError("nothing to preview: zero steps.")
    print(title)
    for line in format_table(curves, args.rows, step_per_epoch):
        print("  " + line)
    width = max(len(c.label) for c in curves) if len(curves) > 1 else 0
    for curve in curves:
        for line in summary_lines(curve, width):
            print("  " + line)
    status = 0
    if args.csv:
        write_csv(args.csv, curves)
        print(f"  wrote {args.csv} ({len(curves[0].values)} rows)")
    if args.png:
        if write_png(args.png, curves, title):
            print(f"  wrote {args.png}")
        else:
            status = 1
    return status


# ---------------------------------------------------------------------------------------- CLI


def _general_help() -> str:
    lines = [
        f"usage: {PROG} NAME [--ARG VALUE ...] [--steps N] [--csv PATH] [--png PATH] [--rows N]",
        f"       {PROG} --groups CONFIG [--steps N] [--optimizer NAME] [--csv PATH] [--png PATH]",
        f"       {PROG} NAME --help       (the arguments of NAME)",
        "",
        "Evaluate a learning-rate function or schedule from the command line, with the same",
        "validation as in training ('0' is an int, '0.0' a float), and show a table of the",
        "steps where it changes, a sparkline and its min/max. Bad arguments exit with status 2.",
        "",
        "names:",
    ]
    width = max(map(len, PREVIEWABLE))
    for name, target in PREVIEWABLE.items():
        summary = (inspect.getdoc(target) or "").split("\n", 1)[0]
        lines.append(f"  {name:<{width}}  {summary}")
    lines += [
        "",
        "example:",
        f"  {PROG} cosine_decay_lr --min-lr 0.01 --max-lr 0.1 --total-step 600 "
        "--step-per-epoch 30 --decay-epoch 20",
        f"  {PROG} CosineDecayLR --min-lr 0.01 --max-lr 0.1 --decay-steps 600 --steps 800",
        "",
        "--groups CONFIG: a .py file defining groups = [{'lr': ..., 'weight_decay': ..., 'name':",
        "...}, ...] and optionally steps and learning_rate (.json, or .yaml with PyYAML). Each",
        "group's lr is read from a real optimizer's get_lr() at every step, so MindSpore's",
        "(lr + 1) - 1 float32 rounding of static lrs mixed with dynamic ones shows.",
    ]
    return "\n".join(lines)


def _groups_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} --groups",
        description="Preview every group's lr from a configuration file (see msoptim preview -h).",
    )
    parser.add_argument("--groups", required=True, metavar="CONFIG", help=".py, .json or .yaml")
    parser.add_argument(
        "--steps",
        type=_positive_int,
        metavar="N",
        help="steps to evaluate [default: the config's steps, else the lr tables' length]",
    )
    parser.add_argument(
        "--optimizer",
        default=None,
        help="msoptim optimizer whose rules apply [default: the config's optimizer, or Momentum]",
    )
    _add_output_options(parser)
    return parser


def _run_groups(argv: list[str]) -> int:
    args = _groups_parser().parse_args(argv)
    config = load_config(args.groups)
    steps = args.steps or config.get("steps")
    optimizer = args.optimizer or config.get("optimizer", "Momentum")
    try:
        curves = evaluate_groups(
            config["groups"],
            steps=steps,
            learning_rate=config.get("learning_rate"),
            optimizer=optimizer,
        )
    except (TypeError, ValueError, IndexError, KeyError, RuntimeError) as error:
        # The optimizer's own message, as training would show it (bad group, exhausted table).
        raise PreviewError(str(error)) from None
    title = f"{args.groups}: {len(curves)} groups, {optimizer}, lr from opt.get_lr() per step"
    return _report(curves, title, args)


def _run_callable(name: str, argv: list[str]) -> int:
    target = PREVIEWABLE[name]
    args = _callable_parser(name, target).parse_args(argv)
    values = vars(args)
    kwargs = {arg.name: values[arg.name] for arg in arguments_of(target) if arg.name in values}
    try:
        result = target(**kwargs)
    except (TypeError, ValueError) as error:
        # The validator's own message, exactly as training would raise it.
        raise PreviewError(str(error)) from None
    curve = _curve_of(name, kwargs, result, getattr(args, "steps", None))
    kind = (
        "float32 per step, as the optimizer evaluates it"
        if curve.precision == "float32"
        else "a list of Python floats; the optimizer stores it as float32"
    )
    title = f"{curve.label}: {len(curve.values)} steps ({kind})"
    step_per_epoch = kwargs.get("step_per_epoch")
    valid = isinstance(step_per_epoch, int) and step_per_epoch > 0
    return _report([curve], title, args, step_per_epoch if valid else None)


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``msoptim preview``; returns the exit status (0 ok, 2 bad arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    name = None
    for flag in ("--schedule", "--function"):
        if flag in argv:
            at = argv.index(flag)
            if at + 1 >= len(argv):
                return _error(f"{flag} needs a name")
            name = argv[at + 1]
            del argv[at : at + 2]
    if name is None and argv and not argv[0].startswith("-"):
        name, argv = argv[0], argv[1:]
    try:
        if name is None:
            if any(a == "--groups" or a.startswith("--groups=") for a in argv):
                return _run_groups(argv)
            if argv and argv[0] == "--list":
                print("\n".join(PREVIEWABLE))
                return 0
            print(_general_help())
            return 0 if argv and argv[0] in ("-h", "--help") else 2
        if name not in PREVIEWABLE:
            close = difflib.get_close_matches(name, PREVIEWABLE, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            return _error(f"unknown name {name!r}.{hint} Choose from: {', '.join(PREVIEWABLE)}.")
        return _run_callable(name, argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2, message printed)
        return exit_.code if isinstance(exit_.code, int) else 2
    except PreviewError as error:
        return _error(str(error))
    except OSError as error:  # --csv / --png could not be written
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
