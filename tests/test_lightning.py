"""PyTorch Lightning with msoptim: optimizers, torch schedulers, MindSpore's callbacks, lr logging.

Contract:
* ``configure_optimizers`` may return an msoptim optimizer; automatic optimization calls
  ``step(closure)``, the closure runs, and training equals a plain loop bit for bit.
* ``LearningRateSchedulerCallback(fn)`` calls ``fn(lr, trainer.global_step)`` once per optimizer
  step (also under gradient accumulation); ``ReduceLROnPlateauCallback`` feeds
  ``trainer.callback_metrics`` to ``ReduceLROnPlateau`` once per epoch.
* ``LearningRateMonitor`` logs ``param_groups[i]["lr"]``: the static lr of every group (per
  group, ``lr-<Optimizer>/pg<i>``), or for a dynamic lr the lr of the previous step.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import msoptim
from msoptim.plateau import ReduceLROnPlateau

pl = pytest.importorskip("pytorch_lightning")
from msoptim.lightning import LearningRateSchedulerCallback, ReduceLROnPlateauCallback  # noqa: E402


class MemoryLogger(pl.loggers.Logger):
    """Keeps every logged row as Python floats (converted when logged)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "memory"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.rows.append((step, {key: float(value) for key, value in metrics.items()}))

    def series(self, key: str) -> list[float]:
        return [row[key] for _, row in self.rows if key in row]


def _data(batches: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(7)
    return [
        (torch.randn(4, 3, generator=generator), torch.randn(4, 1, generator=generator))
        for _ in range(batches)
    ]


class Module(pl.LightningModule):
    def __init__(self, make_optimizer, val_losses=None, scheduler=None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)
        )
        self.make_optimizer = make_optimizer
        self.make_scheduler = scheduler
        self.val_losses = val_losses
        self.training_steps = 0

    def training_step(self, batch, batch_idx):
        self.training_steps += 1
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        self.log("eval_loss", self.val_losses[self.current_epoch], on_epoch=True)

    def configure_optimizers(self):
        self.opt = self.make_optimizer(msoptim.trainable_params(self.net))
        if self.make_scheduler is None:
            return self.opt
        scheduler = {"scheduler": self.make_scheduler(self.opt), "interval": "step"}
        return {"optimizer": self.opt, "lr_scheduler": scheduler}


def _trainer(**kwargs):
    options = {
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "logger": False,
        "log_every_n_steps": 1,
        "num_sanity_val_steps": 0,
    }
    options.update(kwargs)
    return pl.Trainer(**options)


def _fit(module, trainer, train=None, val=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's "no workers" / "few batches" advice
        loader = torch.utils.data.DataLoader
        train = loader(train or _data(), batch_size=None)
        val = None if val is None else loader(val, batch_size=None)
        trainer.fit(module, train_dataloaders=train, val_dataloaders=val)


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_msoptim_optimizer_trains_and_matches_a_plain_loop():
    table = [0.1 * 0.5**i for i in range(10)]
    logger = MemoryLogger()
    module = Module(lambda params: msoptim.Momentum(params, table, 0.9, weight_decay=1e-3))
    monitor = pl.callbacks.LearningRateMonitor(logging_interval="step")
    _fit(module, _trainer(max_steps=4, logger=logger, callbacks=[monitor]))
    assert module.training_steps == 4  # the closure ran once per step
    assert int(module.opt.global_step) == 4
    # A dynamic lr is mirrored after each step: at the start of step k the monitor sees step k-1's.
    assert logger.series("lr-Momentum") == [
        np.float32(v) for v in (table[0], table[0], table[1], table[2])
    ]

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    opt = msoptim.Momentum(msoptim.trainable_params(net), table, 0.9, weight_decay=1e-3)
    for x, y in _data()[:4]:
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    for ours, theirs in zip(module.net.parameters(), net.parameters()):
        assert torch.equal(ours, theirs)


def test_learning_rate_scheduler_callback_with_accumulation():
    calls = []

    def halve_every_two(lr, step):
        calls.append(step)
        return lr * 0.5 if step % 2 == 0 else lr

    logger = MemoryLogger()
    module = Module(lambda params: msoptim.Momentum(params, 0.1, 0.0))
    monitor = pl.callbacks.LearningRateMonitor(logging_interval="step")
    callbacks = [LearningRateSchedulerCallback(halve_every_two), monitor]
    _fit(
        module, _trainer(max_steps=4, accumulate_grad_batches=2, logger=logger, callbacks=callbacks)
    )
    assert calls == [1, 2, 3, 4]
    assert int(module.opt.global_step) == 4
    assert float(module.opt.learning_rate) == np.float32(0.025)
    # Logged at every batch start (two batches per step): the lr the coming step uses.
    lrs = [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]
    assert logger.series("lr-Momentum") == [np.float32(v) for v in lrs]


def test_learning_rate_monitor_shows_each_group_with_a_torch_scheduler():
    logger = MemoryLogger()

    def make(params):
        return msoptim.Momentum(
            [{"params": params[:2], "lr": 0.2}, {"params": params[2:], "lr": 0.01}], 0.1, 0.9
        )

    module = Module(make, scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5))
    monitor = pl.callbacks.LearningRateMonitor(logging_interval="step")
    _fit(module, _trainer(max_steps=5, logger=logger, callbacks=[monitor]))
    assert logger.series("lr-Momentum/pg1") == [np.float32(v) for v in (0.2, 0.2, 0.1, 0.1, 0.05)]
    assert logger.series("lr-Momentum/pg2") == [
        np.float32(v) for v in (0.01, 0.01, 0.005, 0.005, 0.0025)
    ]
    assert [float(lr) for lr in module.opt.get_lr()][::2] == [np.float32(0.05), np.float32(0.0025)]


class _RecordLr(pl.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.lrs.append(float(pl_module.opt.learning_rate))


@pytest.mark.parametrize("on", ["train_epoch_end", "validation_epoch_end"])
def test_reduce_lr_on_plateau_callback_reads_callback_metrics(on):
    # patience=1, factor=0.5, min_delta=0.1; eval_loss 1.0, 0.95, 0.92, 0.5:
    # epoch 1 improves (best 1.0); 2: 0.95 is not < 0.9, wait 1 >= 1: lr 0.5; 3: same, lr 0.25;
    # 4: 0.5 < 0.9 improves.
    plateau = ReduceLROnPlateau("eval_loss", factor=0.5, patience=1, min_delta=0.1)
    record = _RecordLr()
    module = Module(
        lambda params: msoptim.Momentum(params, 1.0, 0.0), val_losses=[1.0, 0.95, 0.92, 0.5]
    )
    trainer = _trainer(
        max_epochs=4,
        limit_train_batches=2,
        limit_val_batches=1,
        num_sanity_val_steps=1 if on == "validation_epoch_end" else 0,
        callbacks=[ReduceLROnPlateauCallback(plateau, on=on), record],
    )
    _fit(module, trainer, val=_data(1))
    assert record.lrs == [1.0, 0.5, 0.25, 0.25]
    assert plateau.best == 0.5


def test_plateau_callback_state_and_errors():
    plateau = ReduceLROnPlateau(patience=3)
    callback = ReduceLROnPlateauCallback(plateau)
    plateau.wait, plateau.best = 2, 0.7
    other = ReduceLROnPlateauCallback(ReduceLROnPlateau(patience=3))
    other.load_state_dict(callback.state_dict())
    assert (other.plateau.wait, other.plateau.best) == (2, 0.7)
    with pytest.raises(TypeError, match="ReduceLROnPlateau"):
        ReduceLROnPlateauCallback({"monitor": "loss"})
    with pytest.raises(ValueError, match="'on'"):
        ReduceLROnPlateauCallback(plateau, on="step_end")
