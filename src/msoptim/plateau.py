"""MindSpore's ``ReduceLROnPlateau`` callback, fed the monitored value by the caller.

MindSpore's callback reads its monitor from ``Model.fit``'s run context; here the training loop (or
the Lightning adapter in :mod:`msoptim.lightning`) passes it to :meth:`ReduceLROnPlateau.epoch_end`.
Everything else is MindSpore's: the validation, the absolute ``min_delta`` threshold, ``wait >=
patience``, the cooldown that is decremented before the improvement test, a monitor value of ``0.0``
treated as missing, and float32 arithmetic for the new lr.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from msoptim._validate import check_bool, check_non_negative_int, describe, fail
from msoptim.callbacks import static_lr_of
from msoptim.errors import UnsupportedLrKindError

__all__ = ["PlateauLrKindError", "ReduceLROnPlateau"]

#: Monitors for which ``mode='auto'`` means smaller is better (MindSpore's list).
SMALLER_IS_BETTER = frozenset(
    {
        "hausdorff_distance",
        "mae",
        "mse",
        "loss",
        "perplexity",
        "mean_surface_distance",
        "root_mean_square_distance",
        "eval_loss",
    }
)

_API = "ReduceLROnPlateau"


class PlateauLrKindError(UnsupportedLrKindError, ValueError):
    """ReduceLROnPlateau met a per-group or dynamic lr.

    A ``ValueError`` as in MindSpore ("does not support dynamic learning rate and group learning
    rate"), and msoptim's :class:`~msoptim.UnsupportedLrKindError` like ``LearningRateScheduler``'s.
    """


def _static_lr(optimizer: Any) -> torch.Tensor:
    try:
        return static_lr_of(optimizer, _API)
    except UnsupportedLrKindError as error:
        raise PlateauLrKindError(str(error)) from None


class ReduceLROnPlateau:
    r"""Reduce a static learning rate when a monitored value stops improving (MindSpore's callback).

    Call :meth:`epoch_end` once per epoch with the monitored value (or a dict holding it under
    ``monitor``). With ``value`` the monitored value and ``best`` the best value so far:

    .. code-block:: text

        if value is missing or 0.0: nothing happens (MindSpore treats a falsy value as missing)
        if cooldown_counter > 0:    cooldown_counter -= 1; wait = 0
        if value improves on best:  best = value; wait = 0      # min: value < best - min_delta
        elif cooldown_counter <= 0:                               # max: value > best + min_delta
            wait += 1
            if wait >= patience:
                if lr > min_lr: lr = max(float32(lr * factor), min_lr)
                cooldown_counter = cooldown; wait = 0

    Args:
        monitor: the name of the monitored value. With ``mode='auto'`` it decides the direction:
            smaller is better for ``'eval_loss'``, ``'loss'``, ``'mae'``, ``'mse'``, ``'perplexity'``,
            ``'hausdorff_distance'``, ``'mean_surface_distance'`` and
            ``'root_mean_square_distance'``; larger is better for every other name.
        factor: the lr is multiplied by it (a float in the open interval (0, 1)).
        patience: how many epochs without improvement to wait (an int ``>= 0``; ``0`` reduces on
            every epoch that does not improve).
        verbose: print a line when the lr is reduced.
        mode: ``'auto'``, ``'min'`` or ``'max'``.
        min_delta: an improvement must beat ``best`` by more than ``abs(min_delta)`` (absolute).
        cooldown: epochs after a reduction during which no waiting is counted (an int ``>= 0``).
        min_lr: the lr never goes below it (a float or int).

    Raises:
        TypeError: an argument of the wrong type (e.g. ``factor=1``, ``patience=2.0``).
        ValueError: ``factor`` outside (0, 1), a negative ``patience``/``cooldown``, an unknown
            ``mode``.

    Example:
        >>> import torch, msoptim
        >>> w = torch.nn.Parameter(torch.ones(1))
        >>> opt = msoptim.Momentum([("w", w)], learning_rate=1.0, momentum=0.9)
        >>> plateau = ReduceLROnPlateau(factor=0.5, patience=1)
        >>> for eval_loss in [3.0, 2.0, 2.0, 2.5, 1.0]:
        ...     _ = plateau.epoch_end(opt, {"eval_loss": eval_loss})
        ...     print(float(opt.learning_rate))
        1.0
        1.0
        0.5
        0.25
        0.25

    Note (MindSpore vs torch.optim):
        Unlike ``torch.optim.lr_scheduler.ReduceLROnPlateau`` the threshold is absolute
        (``min_delta``), the lr is reduced when ``wait >= patience`` (torch: ``> patience``, one
        epoch later), a value of exactly ``0.0`` is ignored, there is no ``eps`` guard, the
        direction can be inferred from the monitor's name, and only a single static lr is
        supported (per-group and dynamic lrs raise, as in MindSpore). In a multi-process run pass
        the value averaged over processes (MindSpore all-reduces it itself).

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/train/mindspore.train.ReduceLROnPlateau.html
    """

    def __init__(
        self,
        monitor: str = "eval_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: bool = False,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0,
    ) -> None:
        if not isinstance(monitor, str):
            fail(
                _API,
                "monitor",
                "a str",
                monitor,
                "Pass the metric name, e.g. 'eval_loss'.",
                exc=TypeError,
            )
        if not isinstance(factor, float):
            fix = "Write it as a float, e.g. 0.1 (MindSpore rejects ints here)."
            fail(_API, "factor", "a float in (0.0, 1.0)", factor, fix, exc=TypeError)
        if not 0.0 < factor < 1.0:
            fail(_API, "factor", "in the range (0.0, 1.0)", factor, "new_lr = lr * factor.")
        check_non_negative_int(patience, "patience", _API)
        check_bool(verbose, "verbose", _API)
        if not isinstance(mode, str):
            fail(_API, "mode", "a str", mode, "Use 'auto', 'min' or 'max'.", exc=TypeError)
        if mode not in ("auto", "min", "max"):
            fail(_API, "mode", "'auto', 'min' or 'max'", mode)
        for name, value in (("min_delta", min_delta), ("min_lr", min_lr)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                fail(_API, name, "a float or int", value, "Pass a Python number.", exc=TypeError)
            if value != value:
                # NaN compares False with everything: the callback would silently never act.
                fail(_API, name, "a number, not NaN", value, "Pass e.g. 1e-4 or 0.")
        check_non_negative_int(cooldown, "cooldown", _API)
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.min_delta = abs(min_delta)
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.smaller_is_better = mode == "min" or (mode == "auto" and monitor in SMALLER_IS_BETTER)
        self.on_train_begin()

    def on_train_begin(self) -> None:
        """Reset the counters and the best value (MindSpore does this when training starts)."""
        self.cooldown_counter = 0
        self.wait = 0
        self.best = math.inf if self.smaller_is_better else -math.inf
        self.epochs = 0

    def is_improvement(self, value: float) -> bool:
        """Whether ``value`` beats :attr:`best` by more than ``min_delta`` (absolute threshold)."""
        if self.smaller_is_better:
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def epoch_end(self, optimizer: Any, metrics: Any) -> float | None:
        """Feed one epoch's monitored value; may reduce ``optimizer``'s lr in place.

        Args:
            optimizer: an msoptim optimizer with a single static lr.
            metrics: the monitored value (a number, a 0-d tensor or array), or a dict holding it
                under :attr:`monitor` (e.g. ``{"eval_loss": 0.31, "acc": 0.9}``). A missing value,
                ``None`` or ``0.0`` is skipped, as in MindSpore.

        Returns:
            The value used, or None when it was skipped.

        Raises:
            PlateauLrKindError: (a ``ValueError``, as in MindSpore, and an
                ``UnsupportedLrKindError``) the optimizer's lr is per-group or dynamic.
            ValueError: the value is not a scalar.
        """
        lr_tensor = _static_lr(optimizer)
        self.epochs += 1
        value = self._monitor_value(metrics)
        if value is None:
            return None
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.is_improvement(value):
            self.best = value
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                self._reduce(lr_tensor)
                self.cooldown_counter = self.cooldown
                self.wait = 0
        return value

    def step_end(self, optimizer: Any, metrics: Any) -> float | None:
        """:meth:`epoch_end` at a step's end, for loops that evaluate every few steps.

        ``patience`` and ``cooldown`` then count calls (evaluations), not epochs.
        """
        return self.epoch_end(optimizer, metrics)

    def _reduce(self, lr_tensor: torch.Tensor) -> None:
        current = np.float32(lr_tensor.item())
        # MindSpore compares the float32 lr with Tensor(min_lr) and multiplies in float32.
        if current > np.float32(self.min_lr):
            reduced = current * np.float32(self.factor)
            new_lr = float(reduced) if reduced >= np.float32(self.min_lr) else float(self.min_lr)
            with torch.no_grad():
                lr_tensor.fill_(new_lr)
            if self.verbose:
                print(
                    f"Epoch {self.epochs:05d}: ReduceLROnPlateau reducing learning rate to "
                    f"{float(np.float32(new_lr))!r}."
                )

    def _monitor_value(self, metrics: Any) -> float | None:
        if isinstance(metrics, Mapping):
            if self.monitor not in metrics or metrics[self.monitor] is None:
                warnings.warn(
                    f"{_API}: learning-rate reduction is conditioned on '{self.monitor}', which is "
                    f"not in the metrics this epoch (available: {sorted(map(str, metrics))}); this "
                    "epoch is skipped. Log the monitored value, or set monitor= to one of these.",
                    stacklevel=3,
                )
                return None
            value = metrics[self.monitor]
        else:
            value = metrics
        if value is None:
            warnings.warn(
                f"{_API}: no value for '{self.monitor}' this epoch; skipped.", stacklevel=3
            )
            return None
        if isinstance(value, torch.Tensor | np.ndarray):
            if value.ndim != 0:
                raise ValueError(
                    f"{_API}: the monitored value must be a scalar, but '{self.monitor}' has shape "
                    f"{tuple(value.shape)}. Pass a single number, e.g. loss.item() or loss.mean()."
                )
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"{_API}: the monitored value must be a number, but '{self.monitor}' is "
                f"{describe(value)}."
            )
        value = float(value)
        if value == 0.0:
            # MindSpore returns None for any falsy monitor value: an exact 0.0 is skipped.
            warnings.warn(
                f"{_API}: '{self.monitor}' is exactly 0.0, which MindSpore treats as missing; this "
                "epoch is skipped (no change to wait, cooldown or best).",
                stacklevel=3,
            )
            return None
        if not math.isfinite(value) and self.monitor == "loss":
            warnings.warn(f"{_API}: invalid {self.monitor} {value!r}.", stacklevel=3)
        return value

    def state_dict(self) -> dict[str, Any]:
        """The counters and best value, for checkpoints (plain Python numbers)."""
        return {
            "cooldown_counter": self.cooldown_counter,
            "wait": self.wait,
            "best": self.best,
            "epochs": self.epochs,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (all or nothing)."""
        keys = ("cooldown_counter", "wait", "best")
        if not isinstance(state, Mapping) or any(key not in state for key in keys):
            raise ValueError(
                f"{_API}.load_state_dict: expected the dict from state_dict() with keys "
                f"{list(keys)}, but got {describe(state)}."
            )
        values = (
            int(state["cooldown_counter"]),
            int(state["wait"]),
            float(state["best"]),
            int(state.get("epochs", 0)),
        )
        self.cooldown_counter, self.wait, self.best, self.epochs = values
