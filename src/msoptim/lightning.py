"""Lightning adapters for msoptim's callbacks (``pip install 'msoptim[lightning]'``).

msoptim optimizers need no adapter: ``configure_optimizers`` returns one like any
``torch.optim.Optimizer`` (with automatic optimization Lightning calls ``step(closure)``, which runs
the closure first), and torch lr schedulers returned with it drive a static lr. This module turns
MindSpore's callbacks into Lightning callbacks:

* :class:`LearningRateSchedulerCallback` calls ``fn(lr, step)`` after every optimizer step, with
  ``step = trainer.global_step`` (1-based, counts optimizer steps, so gradient accumulation is
  handled);
* :class:`ReduceLROnPlateauCallback` feeds ``trainer.callback_metrics`` to a
  :class:`~msoptim.ReduceLROnPlateau` once per epoch.

Both keep their counters in Lightning checkpoints. This module imports ``pytorch_lightning`` (or,
if that is missing, ``lightning.pytorch``) and is imported only by ``import msoptim.lightning``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from msoptim._validate import describe
from msoptim.callbacks import LearningRateScheduler
from msoptim.optimizer import Optimizer
from msoptim.plateau import ReduceLROnPlateau

try:
    import pytorch_lightning as pl
except ImportError:  # pragma: no cover - the unified package
    try:
        import lightning.pytorch as pl  # type: ignore[no-redef]
    except ImportError as error:
        raise ImportError(
            "msoptim.lightning needs PyTorch Lightning: pip install 'msoptim[lightning]' "
            "(or pip install pytorch-lightning)."
        ) from error

__all__ = ["LearningRateSchedulerCallback", "ReduceLROnPlateauCallback"]


def _optimizer(trainer: Any, index: int | None, api: str) -> Any:
    """The msoptim optimizer to act on: ``trainer.optimizers[index]``, or the only one."""
    optimizers = list(trainer.optimizers)
    if index is None:
        ours = [opt for opt in optimizers if isinstance(opt, Optimizer)]
        if len(ours) != 1:
            raise ValueError(
                f"{api}: expected exactly one msoptim optimizer in the trainer, but "
                f"configure_optimizers returned {[type(o).__name__ for o in optimizers]}. Pass "
                "optimizer_index= to choose one."
            )
        return ours[0]
    if not 0 <= index < len(optimizers):
        raise ValueError(
            f"{api}: optimizer_index={index} but the trainer has {len(optimizers)} optimizers."
        )
    return optimizers[index]


class LearningRateSchedulerCallback(pl.Callback):
    """MindSpore's ``LearningRateScheduler`` as a Lightning callback.

    After each optimizer step (``on_train_batch_end`` once ``trainer.global_step`` has advanced)
    it calls ``fn(lr, trainer.global_step)`` and writes the result into the optimizer's static lr,
    which the next step uses: the same as calling ``scheduler.step_end(opt, step)`` in a plain
    loop. With ``accumulate_grad_batches=k`` it acts once per optimizer step, not per batch.

    Args:
        learning_rate_function: ``fn(lr: float, step: int) -> float``, or a
            :class:`~msoptim.LearningRateScheduler`.
        optimizer_index: which of ``trainer.optimizers`` to drive; by default the only msoptim one.

    Example:
        >>> import msoptim
        >>> from msoptim.lightning import LearningRateSchedulerCallback
        >>> callback = LearningRateSchedulerCallback(lambda lr, step: lr * 0.5 if step % 100 == 0 else lr)
        >>> # pytorch_lightning.Trainer(callbacks=[callback], ...)
    """

    def __init__(
        self,
        learning_rate_function: Callable[[float, int], float] | LearningRateScheduler,
        optimizer_index: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(learning_rate_function, LearningRateScheduler):
            self.scheduler = learning_rate_function
        else:
            self.scheduler = LearningRateScheduler(learning_rate_function)
        self.optimizer_index = optimizer_index
        self._last_step: int | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._last_step = trainer.global_step

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self._last_step:
            return  # an accumulation batch: no optimizer step happened
        self._last_step = step
        optimizer = _optimizer(trainer, self.optimizer_index, type(self).__name__)
        self.scheduler.step_end(optimizer, step)


class ReduceLROnPlateauCallback(pl.Callback):
    """MindSpore's ``ReduceLROnPlateau`` as a Lightning callback, fed ``trainer.callback_metrics``.

    Once per epoch it passes ``trainer.callback_metrics`` (what ``self.log`` recorded: e.g. an
    ``eval_loss`` logged in ``validation_step`` or an epoch-level training metric) to
    ``plateau.epoch_end(optimizer, metrics)``. A monitor that was not logged this epoch is
    skipped with a warning, as in MindSpore.

    Args:
        plateau: the :class:`~msoptim.ReduceLROnPlateau` holding the rule and its counters.
        on: ``"train_epoch_end"`` (MindSpore's moment; validation of that epoch has run by then)
            or ``"validation_epoch_end"`` (after each validation run; sanity checks are ignored).
        optimizer_index: which of ``trainer.optimizers`` to drive; by default the only msoptim one.

    Example:
        >>> import msoptim
        >>> from msoptim.lightning import ReduceLROnPlateauCallback
        >>> callback = ReduceLROnPlateauCallback(msoptim.plateau.ReduceLROnPlateau("eval_loss", patience=2))
        >>> # pytorch_lightning.Trainer(callbacks=[callback], ...)
    """

    def __init__(
        self,
        plateau: ReduceLROnPlateau,
        *,
        on: Literal["train_epoch_end", "validation_epoch_end"] = "train_epoch_end",
        optimizer_index: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(plateau, ReduceLROnPlateau):
            raise TypeError(
                "ReduceLROnPlateauCallback: 'plateau' must be an msoptim.ReduceLROnPlateau, but "
                f"got {describe(plateau)}."
            )
        if on not in ("train_epoch_end", "validation_epoch_end"):
            raise ValueError(
                "ReduceLROnPlateauCallback: 'on' must be 'train_epoch_end' or "
                f"'validation_epoch_end', but got {on!r}."
            )
        self.plateau = plateau
        self.on = on
        self.optimizer_index = optimizer_index
        self._restored = False

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        # MindSpore resets at train begin; a run resumed from a Lightning checkpoint keeps its state.
        if not self._restored:
            self.plateau.on_train_begin()

    def _update(self, trainer: Any) -> None:
        optimizer = _optimizer(trainer, self.optimizer_index, type(self).__name__)
        self.plateau.epoch_end(optimizer, dict(trainer.callback_metrics))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.on == "train_epoch_end":
            self._update(trainer)

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.on == "validation_epoch_end" and not trainer.sanity_checking:
            self._update(trainer)

    def state_dict(self) -> dict[str, Any]:
        return self.plateau.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.plateau.load_state_dict(state_dict)
        self._restored = True
