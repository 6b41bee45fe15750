"""Argument validators shared by every public entry point.

MindSpore's type rules are strict and we keep them: where MindSpore wants a ``float``, a Python ``int``
(and a ``bool``) is a ``TypeError``; ranges are ``ValueError``; inf/NaN are ``ValueError``. Where
MindSpore's own check lets a NaN or an inf through, msoptim's refusal (:func:`refuse`) comes after
MindSpore's checks of the other arguments (:func:`refusals_later`).

Every message follows one template::

    {api}: '{name}' must be {rule}, but got {value!r} ({type}). {fix}

so that a user reading it learns which call, which argument, which rule and what to do.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import Any

__all__ = [
    "check_bool",
    "check_float",
    "check_float_at_least",
    "check_float_in_range",
    "check_float_type",
    "check_non_negative_float",
    "check_non_negative_int",
    "check_number_as_float",
    "check_positive_float",
    "check_positive_int",
    "collect_refusals",
    "describe",
    "fail",
    "refusals_later",
    "refuse",
    "stop_collecting",
]


def describe(value: Any) -> str:
    """``repr(value)`` followed by its type name, as error messages show it."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def fail(api: str, name: str, rule: str, value: Any, fix: str = "", *, exc: type = ValueError):
    """Raise ``exc`` with the project's message template."""
    raise exc(_message(api, name, rule, value, fix))


def _message(api: str, name: str, rule: str, value: Any, fix: str) -> str:
    return f"{api}: '{name}' must be {rule}, but got {describe(value)}." + (
        f" {fix}" if fix else ""
    )


_LATER: ContextVar[list[ValueError] | None] = ContextVar("msoptim_refusals_later", default=None)


def refuse(api: str, name: str, rule: str, value: Any, fix: str = "") -> None:
    """msoptim's own refusal of a value MindSpore's check lets through (a NaN in a range, an
    infinite momentum): a ``ValueError`` raised now or, inside :func:`refusals_later`, kept for
    after MindSpore's checks, so that of several mistakes the one MindSpore reports comes first."""
    error = ValueError(_message(api, name, rule, value, fix))
    later = _LATER.get()
    if later is None:
        raise error
    later.append(error)


def collect_refusals(later: list[ValueError]) -> Token:
    """From now on :func:`refuse` appends to ``later``; pass the token to :func:`stop_collecting`."""
    return _LATER.set(later)


def stop_collecting(token: Token) -> None:
    _LATER.reset(token)


@contextlib.contextmanager
def refusals_later() -> Iterator[list[ValueError]]:
    """Collect :func:`refuse`'s errors in the yielded list instead of raising them."""
    later: list[ValueError] = []
    token = collect_refusals(later)
    try:
        yield later
    finally:
        stop_collecting(token)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _float_fix(value: Any) -> str:
    if _is_int(value):
        return f"Write it as a float, e.g. {float(value)!r} (MindSpore rejects ints here)."
    return "Pass a Python float."


def check_float_type(value: Any, name: str, api: str, rule: str = "a float") -> float:
    """A Python ``float`` (``int`` and ``bool`` are a ``TypeError``, as in MindSpore)."""
    if not isinstance(value, float):
        fail(api, name, rule, value, _float_fix(value), exc=TypeError)
    return value


def check_positive_int(value: Any, name: str, api: str) -> int:
    """An ``int`` (not ``bool``) ``> 0``."""
    if not _is_int(value):
        fail(api, name, "a positive int", value, "Pass a Python int such as 10.", exc=TypeError)
    if value <= 0:
        fail(api, name, "a positive int (> 0)", value)
    return value


def check_non_negative_int(value: Any, name: str, api: str) -> int:
    """An ``int`` (not ``bool``) ``>= 0``."""
    if not _is_int(value):
        fail(api, name, "a non-negative int", value, "Pass a Python int such as 0.", exc=TypeError)
    if value < 0:
        fail(api, name, "a non-negative int (>= 0)", value)
    return value


def check_float(value: Any, name: str, api: str) -> float:
    """A finite Python ``float`` (``int`` and ``bool`` are rejected, as in MindSpore)."""
    check_float_type(value, name, api, "a float")
    if not math.isfinite(value):
        fail(api, name, "a finite float", value)
    return value


def check_positive_float(value: Any, name: str, api: str) -> float:
    """A finite Python ``float`` ``> 0``."""
    check_float_type(value, name, api, "a positive float")
    if not math.isfinite(value) or value <= 0:
        fail(api, name, "a finite float > 0", value)
    return value


def check_non_negative_float(value: Any, name: str, api: str) -> float:
    """A finite Python ``float`` ``>= 0``."""
    check_float_type(value, name, api, "a non-negative float")
    if not math.isfinite(value) or value < 0:
        fail(api, name, "a finite float >= 0", value)
    return value


def check_float_at_least(
    value: float, name: str, api: str, low: float, *, nan_fails: bool, fix: str = ""
) -> float:
    """``value >= low`` as MindSpore compares it (its ``check_number`` fails a NaN, a plain
    ``value < low`` test passes it: ``nan_fails``), then msoptim's refusal (:func:`refuse`) of a
    NaN or an infinity that passed. ``value`` is a float (its type checked before)."""
    rule = f"a finite float >= {low:g}"
    if value < low or (nan_fails and math.isnan(value)):
        fail(api, name, rule, value, fix)
    if not math.isfinite(value):
        refuse(api, name, rule, value, fix)
    return value


def check_number_as_float(
    value: Any, name: str, api: str, *, minimum: float | None = None
) -> float:
    """An ``int``, ``float`` or ``bool`` converted to float (MindSpore's looser rule), finite.

    Used where MindSpore calls ``float(x)`` itself (``loss_scale``, ``weight_decay``, static lrs).
    """
    if not isinstance(value, int | float):
        fail(api, name, "an int or float", value, "Pass a Python number.", exc=TypeError)
    result = float(value)
    if not math.isfinite(result):
        fail(api, name, "finite", value)
    if minimum is not None and result < minimum:
        fail(api, name, f">= {minimum}", value)
    return result


def check_float_in_range(
    value: Any,
    name: str,
    api: str,
    low: float,
    high: float,
    *,
    low_inclusive: bool = False,
    high_inclusive: bool = False,
    allow_int: bool = False,
) -> float:
    """A Python ``float`` inside ``(low, high)``, ``[low, high]`` or a mix (MindSpore ``check_float_range``)."""
    if allow_int and _is_int(value):
        value = float(value)
    check_float_type(value, name, api, "a float")
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    rule = f"in the range {left}{low}, {high}{right}"
    if math.isnan(value):  # MindSpore's check_float_range takes a NaN
        refuse(api, name, rule, value)
        return value
    above = value >= low if low_inclusive else value > low
    below = value <= high if high_inclusive else value < high
    if not (above and below):
        fail(api, name, rule, value)
    return value


def check_bool(value: Any, name: str, api: str) -> bool:
    """A Python ``bool`` (``1``/``0`` are rejected, as in MindSpore)."""
    if not isinstance(value, bool):
        fail(api, name, "a bool", value, "Pass True or False.", exc=TypeError)
    return value
