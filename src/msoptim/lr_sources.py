"""The three kinds of learning rate, parsed once and evaluated on the device.

A user's ``learning_rate`` (or a group's ``lr``, or a ``weight_decay``) is parsed by :func:`parse_lr`
into an :class:`LrSpec`: *static* (a float32 0-d tensor, re-assignable in place), *table* (a 1-D
float32 tensor read at ``global_step``) or *schedule* (a :class:`LearningRateSchedule`). The optimizer
turns tables into :class:`TableLR` and, where MindSpore does, static values into :class:`ConstantLR`;
both are schedules, so a step evaluates every lr the same way: ``source(global_step)``, tensor ops only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from msoptim._validate import describe
from msoptim.errors import LearningRateEntryError, NestedLearningRateError
from msoptim.schedules import LearningRateSchedule

__all__ = [
    "ConstantLR",
    "LrSpec",
    "NonFiniteLrError",
    "NonNumericLrEntryError",
    "RefusedLrError",
    "TableLR",
    "parse_lr",
    "parse_weight_decay",
]

LrKind = Literal["static", "table", "schedule"]


@dataclass(frozen=True)
class LrSpec:
    """A validated learning rate: its kind and value (float, 1-D float64 array, or schedule)."""

    kind: LrKind
    value: Any
    where: str
    #: Why a table MindSpore accepts at construction cannot serve any step (raised at the first).
    unusable: str | None = None

    @property
    def table_length(self) -> int:
        return len(self.value) if self.kind == "table" else 0


class TableLR(LearningRateSchedule):
    """A dynamic lr given as a table: ``table[global_step]`` (a gather on the device, no host sync).

    The optimizer checks the table length against its host-side step count before every step, so
    the gather never runs past the end.
    """

    def __init__(self, table: Tensor, unusable: str | None = None) -> None:
        super().__init__()
        self.register_buffer("learning_rate", table, persistent=True)
        #: Set for a nested list: the error the first step (or ``get_lr()``) raises.
        self.unusable = unusable

    def __len__(self) -> int:
        return self.learning_rate.shape[0]

    def forward(self, global_step: Tensor) -> Tensor:  # type: ignore[override]
        return self.lookup(self.learning_rate, global_step)

    @staticmethod
    def lookup(table: Tensor, global_step: Tensor) -> Tensor:
        """``table[global_step]`` as a 0-d tensor (a gather on the table's device)."""
        index = torch.as_tensor(global_step, device=table.device).reshape(1)
        return torch.index_select(table, 0, index).reshape(())

    def extra_repr(self) -> str:
        return f"length={len(self)}"


class ConstantLR(LearningRateSchedule):
    """A static lr evaluated as ``(lr + 1) - 1`` in float32, as MindSpore does when it must.

    MindSpore wraps every static lr in this form when an optimizer has per-group lrs and at least one
    dynamic lr (its ``_ConvertToCell``). In float32 the round trip rounds small values: 0.05 becomes
    0.049999952 and 1e-8 becomes 0.0; MindSpore uses the rounded value for the update and ``get_lr()``,
    so msoptim does too. ``lr`` is the live static tensor: re-assigning it changes this schedule.
    """

    def __init__(self, lr: Tensor) -> None:
        super().__init__()
        self.lr = lr

    def forward(self, global_step: Tensor) -> Tensor:  # type: ignore[override]
        return self.round_trip(self.lr)

    @staticmethod
    def round_trip(lr: Tensor) -> Tensor:
        """``(lr + 1) - 1`` in ``lr``'s dtype."""
        return (lr + 1.0) - 1.0


class RefusedLrError(Exception):
    """msoptim's own refusal of an lr MindSpore takes at construction. The optimizer raises it
    after MindSpore's checks of its other arguments, whose errors come first as in MindSpore;
    ``stand_in`` is the lr with the refused values zeroed, for the checks in between."""

    def __init__(self, message: str, stand_in: LrSpec) -> None:
        super().__init__(message)
        self.stand_in = stand_in


class NonFiniteLrError(RefusedLrError, ValueError):
    """A NaN or infinite value in a tensor or list lr (MindSpore accepts them; a float NaN or inf
    both refuse)."""


class NonNumericLrEntryError(RefusedLrError, LearningRateEntryError):
    """``None``, a bool or a string such as ``'0.2'`` in an lr list: MindSpore's float32
    conversion takes them (``None`` becomes NaN); a string that is no number it refuses at once."""


def _label(where: str) -> str:
    """``'learning_rate'`` for an argument name; ``param_groups[1]['lr']`` as is."""
    return where if "[" in where else f"'{where}'"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _static_from_number(value: Any, where: str, api: str) -> LrSpec:
    # MindSpore calls float(lr): ints and bools are accepted for a static lr.
    result = float(value)
    if not math.isfinite(result) or result < 0:
        raise ValueError(
            f"{api}: {_label(where)} must be a finite float >= 0, but got {describe(value)}. "
            "Use a non-negative learning rate such as 0.01."
        )
    return LrSpec("static", result, where)


def _static_from_tensor(value: Tensor, where: str, api: str) -> LrSpec:
    if value.is_complex() or value.dtype == torch.bool:
        raise TypeError(
            f"{api}: {_label(where)} must be a real-valued tensor, but got dtype {value.dtype}. "
            "Pass a float32 tensor."
        )
    # Like MindSpore, no sign check for a tensor (a negative value ascends, as in a table).
    number = float(value.detach().to("cpu", torch.float64))
    if not math.isfinite(number):
        raise NonFiniteLrError(
            f"{api}: {_label(where)} must hold a finite value, but got tensor({number}). "
            "A non-finite learning rate cannot train.",
            LrSpec("static", torch.zeros_like(value), where),
        )
    return LrSpec("static", value, where)


def _table_from_values(values: np.ndarray, where: str, api: str) -> LrSpec:
    # MindSpore accepts an empty list, and a nested one as the optimizer's learning_rate (not as a
    # group's), at construction and fails at the first step; so do we (with a warning now, and
    # before anything changes then).
    if values.ndim != 1:
        message = (
            f"{api}: {_label(where)} must be a flat list of floats (one lr per step), but got a "
            f"nested list of shape {values.shape}. Flatten it, or give each group its own 'lr'."
        )
        if where.startswith("param_groups"):
            raise NestedLearningRateError(message)
        warnings.warn(
            f"{message} (MindSpore accepts it here; the first step raises.)", stacklevel=4
        )
        return LrSpec("table", np.zeros(0, np.float32), where, unusable=message)
    if values.size == 0:
        warnings.warn(
            f"{api}: {_label(where)} is an empty list: no step has a learning rate, so the first step "
            "raises (as in MindSpore). Give one learning rate per step, e.g. from "
            "msoptim.cosine_decay_lr(...).",
            stacklevel=4,
        )
        return LrSpec("table", values.astype(np.float32), where)
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise NonFiniteLrError(
            f"{api}: {_label(where)} must hold finite values, but entry {bad} is {float(values[bad])!r}. "
            "Check the function that built the table.",
            _finite_table(values, where),
        )
    if values.size < 2:
        warnings.warn(
            f"{api}: {_label(where)} is a dynamic learning rate with a single value: it covers only the "
            "first step. Pass a float for a constant learning rate.",
            stacklevel=4,
        )
    return LrSpec("table", values.astype(np.float32), where)


def _table_from_iterable(value: Iterable[Any], where: str, api: str) -> LrSpec:
    items = list(value)
    for index, item in enumerate(items):
        if isinstance(item, dict):
            raise TypeError(
                f"{api}: {_label(where)} must be a float, list of floats, tensor or LearningRateSchedule, "
                f"but item {index} is a dict with keys {sorted(map(str, item))}. A parameter group cannot be nested "
                "as an lr: list it as its own dict in the top-level list."
            )
    entries = [index for index, item in enumerate(items) if _is_entry_mistake(item)]
    for index in entries:
        if isinstance(items[index], str) and not _reads_as_number(items[index]):
            raise _entry_error(LearningRateEntryError, items, index, where, api)
    numbers = [0.0 if _is_entry_mistake(item) else item for item in items]
    try:
        values = np.asarray(numbers, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise LearningRateEntryError(
            f"{api}: {_label(where)} must be a flat list of floats, but it could not be read as numbers "
            f"({error}). Write every entry as a float."
        ) from None
    if entries and values.ndim == 1:
        stand_in = _finite_table(values, where)
        raise _entry_error(NonNumericLrEntryError, items, entries[0], where, api, stand_in)
    if entries:
        raise _entry_error(LearningRateEntryError, items, entries[0], where, api)
    return _table_from_values(values, where, api)


def _finite_table(values: np.ndarray, where: str) -> LrSpec:
    """A refused table's stand-in: its non-finite entries zeroed."""
    return LrSpec("table", np.where(np.isfinite(values), values, 0.0).astype(np.float32), where)


def _is_entry_mistake(item: Any) -> bool:
    return item is None or isinstance(item, bool | str)


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _entry_error(
    kind: type[Exception], items: list[Any], index: int, where: str, api: str, *stand_in: LrSpec
) -> Exception:
    return kind(
        f"{api}: {_label(where)} must be a list of floats, but item {index} is "
        f"{describe(items[index])}. Write every entry as a float.",
        *stand_in,
    )


def parse_lr(value: Any, *, where: str, api: str) -> LrSpec:
    """Validate a learning rate given as a number, tensor, sequence or schedule.

    Args:
        value: the user's ``learning_rate`` or a group's ``lr``.
        where: how to name it in messages, e.g. ``"learning_rate"`` or ``"param_groups[1]['lr']"``.
        api: the calling class, e.g. ``"Momentum"``.

    Returns:
        The parsed :class:`LrSpec`.

    Raises:
        TypeError: for a kind MindSpore does not accept (dicts, 0-d numpy arrays, a group's nested
            list, ...).
        ValueError: for a negative float or a non-finite static lr, a string, a 2-D tensor.

    An empty list, and a nested one as the optimizer's ``learning_rate``, are accepted with a
    warning, as MindSpore accepts them; the first step raises (``ValueError``, or for the empty
    table ``LearningRateTableExhaustedError``).
    """
    if isinstance(value, LearningRateSchedule):
        return LrSpec("schedule", value, where)
    if _is_number(value) or isinstance(value, bool):
        return _static_from_number(value, where, api)
    if isinstance(value, Tensor):
        if value.device.type == "meta":
            raise ValueError(
                f"{api}: {_label(where)} must hold learning-rate values, but got a tensor on the "
                "'meta' device, which has a shape and no data. Create it on a real device, e.g. "
                "torch.tensor(0.01)."
            )
        if value.ndim == 0:
            return _static_from_tensor(value, where, api)
        if value.ndim == 1:
            if not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
                raise TypeError(
                    f"{api}: {_label(where)} must be a float tensor, but got dtype {value.dtype}. "
                    "Pass a float32 tensor."
                )
            array = value.detach().to("cpu", torch.float64).numpy()
            return _table_from_values(array, where, api)
        raise ValueError(
            f"{api}: {_label(where)} must be a 0-d tensor (static lr) or a 1-D tensor (one lr per step), "
            f"but got a tensor of shape {tuple(value.shape)}."
        )
    if isinstance(value, str):
        raise ValueError(
            f"{api}: {_label(where)} must be a float, list of floats, tensor or LearningRateSchedule, but "
            f"got the string {value!r}. Pass a number, e.g. learning_rate=0.1."
        )
    if isinstance(value, np.ndarray) and value.ndim == 0:
        raise TypeError(
            f"{api}: {_label(where)} must be a float, list of floats, tensor or LearningRateSchedule, but "
            f"got a 0-d numpy array ({value!r}). Pass float(x) for a static learning rate."
        )
    if isinstance(value, dict):
        raise TypeError(
            f"{api}: {_label(where)} must be a float, list of floats, tensor or LearningRateSchedule, but "
            f"got a dict. A parameter group cannot be nested as an lr: list it as its own dict."
        )
    if isinstance(value, Iterable):
        return _table_from_iterable(value, where, api)
    raise TypeError(
        f"{api}: {_label(where)} must be a float, list of floats, tensor or LearningRateSchedule, but got "
        f"{describe(value)}."
    )


def parse_weight_decay(value: Any, *, where: str, api: str) -> float | LearningRateSchedule:
    """Validate a weight decay: a number ``>= 0`` (ints and bools convert, as in MindSpore) or a schedule.

    Raises:
        TypeError: for anything else (numpy arrays and tensors included, as in MindSpore).
        ValueError: for a negative or non-finite number.
    """
    if isinstance(value, LearningRateSchedule):
        return value
    if not isinstance(value, int | float):
        raise TypeError(
            f"{api}: {_label(where)} must be a float >= 0 or a LearningRateSchedule, but got "
            f"{describe(value)}. Pass a Python float such as 1e-4."
        )
    result = float(value)
    if not math.isfinite(result) or result < 0:
        raise ValueError(
            f"{api}: {_label(where)} must be a finite float >= 0, but got {describe(value)}. "
            "Use 0.0 to switch weight decay off."
        )
    return result


def assign(target: Tensor, value: float | Tensor) -> Tensor:
    """Write ``value`` into ``target`` in place (MindSpore's ``ops.assign``), e.g. a static lr.

    The change is seen by the next optimizer step, with no graph or compile invalidation.

    Args:
        target: the tensor to overwrite, e.g. ``opt.learning_rate``.
        value: a number, or a tensor broadcastable to ``target``.

    Returns:
        ``target``.

    Example:
        >>> import torch
        >>> lr = torch.tensor(0.1)
        >>> _ = assign(lr, 0.01)
        >>> round(float(lr), 6)
        0.01
    """
    if not isinstance(target, Tensor):
        raise TypeError(f"assign: 'target' must be a tensor, but got {describe(target)}.")
    if isinstance(value, bool) or not isinstance(value, int | float | Tensor):
        raise TypeError(f"assign: 'value' must be a number or a tensor, but got {describe(value)}.")
    if isinstance(value, Tensor):
        if value.is_complex() and not target.is_complex():
            raise TypeError(
                f"assign: 'value' is a {value.dtype} tensor but 'target' is {target.dtype}: the "
                "imaginary part would be dropped. Pass a real tensor."
            )
        try:
            fits = torch.broadcast_shapes(value.shape, target.shape) == target.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"assign: 'value' of shape {tuple(value.shape)} cannot be written into 'target' of "
                f"shape {tuple(target.shape)}. Pass a tensor of the target's shape (a 0-d tensor "
                "for a learning rate)."
            )
    with torch.no_grad():
        if isinstance(value, Tensor):
            target.copy_(value)
        else:
            target.fill_(value)
    return target
