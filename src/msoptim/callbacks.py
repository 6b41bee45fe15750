"""MindSpore's learning-rate callbacks, for plain training loops (Lightning adapters live apart).

``LearningRateScheduler(fn)`` calls ``fn(lr, step)`` at the end of each step and writes the result
into the optimizer's static lr tensor: the new lr applies from the next step, as in MindSpore.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from msoptim._validate import describe
from msoptim.errors import UnsupportedLrKindError

__all__ = ["LearningRateScheduler", "printed_float32", "static_lr_of"]


def printed_float32(value: float) -> float:
    """The Python float MindSpore reads back from a float32 lr: ``float(np.array2string(lr))``.

    NumPy prints a 0-d float32 array with at most 8 digits *after the decimal point* (the shortest
    that identifies the value, else rounded there), in scientific notation (8 digits after the
    mantissa's point) below 1e-4 and from 1e8, and float32 integers from 2**24 exactly: 0.0013889475
    reads back as 0.00138895. ``fn(lr, step)`` then sees what MindSpore's callback sees (``lr * 0.1``
    of 0.1 gives 0.010000000000000002, not the float32 0.1's 0.010000000149...). Written with
    NumPy's formatting primitives, so the result does not depend on the NumPy version (matched to
    NumPy 1.26's ``array2string``, MindSpore's, on 250,000 values).
    """
    x = np.float32(value)
    size = abs(float(x))
    if size != 0.0 and (size < 1e-4 or size >= 1e8):
        return float(np.format_float_scientific(x, precision=8, unique=True, trim="."))
    if size >= 2**24:
        return float(x)
    return float(np.format_float_positional(x, precision=8, unique=True, fractional=True, trim="."))


def static_lr_of(optimizer: Any, api: str) -> torch.Tensor:
    """The optimizer's single static lr tensor, or a clear error for group / dynamic lrs."""
    if getattr(optimizer, "is_group_lr", False) or getattr(optimizer, "dynamic_lr", False):
        kind = "per-group" if optimizer.is_group_lr else "dynamic (table or schedule)"
        raise UnsupportedLrKindError(
            f"{api}: the optimizer's learning rate is {kind}; {api} can only change a single "
            "static learning rate (as in MindSpore, where it fails with AttributeError). Use a "
            "float learning_rate, or express the change as a LearningRateSchedule."
        )
    lr = getattr(optimizer, "learning_rate", None)
    if not isinstance(lr, torch.Tensor) or lr.ndim != 0:
        raise UnsupportedLrKindError(
            f"{api}: expected an msoptim optimizer with a static learning rate, but got "
            f"{describe(optimizer)}."
        )
    return lr


class LearningRateScheduler:
    """Change a static learning rate at each step end with ``fn(lr, step)`` (MindSpore's callback).

    ``step`` is 1-based and counts every step since training began (over epochs). The lr given to
    ``fn`` is the float32 lr as MindSpore prints it (see :func:`printed_float32`). When the returned
    value differs (``not math.isclose(lr, new, rel_tol=1e-10)``) it is written into
    ``optimizer.learning_rate`` and applies from the next step.

    Args:
        learning_rate_function: ``fn(lr: float, step: int) -> float``.

    Raises:
        TypeError: ``learning_rate_function`` is not callable.

    Example:
        >>> import torch, msoptim
        >>> w = torch.nn.Parameter(torch.ones(1))
        >>> opt = msoptim.Momentum([("w", w)], learning_rate=0.1, momentum=0.9)
        >>> scheduler = msoptim.LearningRateScheduler(lambda lr, step: lr * 0.5 if step % 2 == 0 else lr)
        >>> for step in range(1, 5):
        ...     scheduler.step_end(opt, step)
        >>> round(float(opt.learning_rate), 6)
        0.025

    Note (MindSpore vs torch.optim):
        Like ``torch.optim.lr_scheduler.LambdaLR`` but the function maps the *current* lr and the
        global step to the next lr, and it acts at step end.
    """

    def __init__(self, learning_rate_function: Callable[[float, int], float]) -> None:
        if not callable(learning_rate_function):
            raise TypeError(
                "LearningRateScheduler: 'learning_rate_function' must be callable as "
                f"fn(lr, step) -> float, but got {describe(learning_rate_function)}."
            )
        self.learning_rate_function = learning_rate_function

    def step_end(self, optimizer: Any, step: int) -> None:
        """Call at the end of step ``step`` (1-based, global over epochs)."""
        lr_tensor = static_lr_of(optimizer, "LearningRateScheduler")
        if isinstance(step, bool) or not hasattr(type(step), "__index__"):
            raise TypeError(
                f"LearningRateScheduler: 'step' must be an int (the 1-based global step), but got "
                f"{describe(step)}."
            )
        lr = printed_float32(float(lr_tensor))
        new_lr = self.learning_rate_function(lr, step)
        if isinstance(new_lr, torch.Tensor) and new_lr.numel() == 1:
            new_lr = new_lr.item()
        # Any real number, numpy's float32 included (MindSpore builds a Tensor from it).
        if not isinstance(new_lr, numbers.Real) or isinstance(new_lr, bool | np.bool_):
            raise TypeError(
                "LearningRateScheduler: the learning-rate function must return a float, but "
                f"returned {describe(new_lr)} at step {step}."
            )
        new_lr = float(new_lr)
        # A negative lr is assigned, as MindSpore assigns it (the optimizer then ascends, as with
        # a negative table entry); a non-finite one could never train.
        if not math.isfinite(new_lr):
            raise ValueError(
                "LearningRateScheduler: the learning-rate function returned "
                f"{new_lr!r} at step {step}; a learning rate must be finite."
            )
        if not math.isclose(lr, new_lr, rel_tol=1e-10):
            with torch.no_grad():
                lr_tensor.fill_(new_lr)
