"""``msoptim.ReduceLROnPlateau``: MindSpore's callback, rule by rule, epoch by epoch.

The expected lrs and counters below were worked out by hand from MindSpore 2.10's rules (spec
§6.2), not by running the implementation:

* a value of exactly 0.0 (or a missing one) is skipped: nothing changes;
* if ``cooldown_counter > 0``: decrement it and set ``wait = 0`` (first);
* improvement (min: ``v < best - min_delta``; max: ``v > best + min_delta``, absolute):
  ``best = v``, ``wait = 0``;
* otherwise, if ``cooldown_counter <= 0``: ``wait += 1``; when ``wait >= patience``: if
  ``lr > min_lr`` then ``lr = max(float32(lr * factor), min_lr)``; then ``cooldown_counter =
  cooldown`` and ``wait = 0`` (even when the lr was not reduced).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import msoptim
from msoptim.plateau import PlateauLrKindError, ReduceLROnPlateau


def _optimizer(lr=1.0):
    w = torch.nn.Parameter(torch.ones(2))
    return msoptim.Momentum([("w", w)], learning_rate=lr, momentum=0.9)


def _f32(x: float) -> float:
    return float(np.float32(x))


# monitor 'eval_loss' (min), patience=2, factor=0.5, min_delta=0.1, cooldown=2, min_lr=0.2, lr=1.0
# epoch: value -> (lr after the epoch, wait, cooldown_counter, best)
MIN_SCRIPT = [
    (1.0, 1.0, 0, 0, 1.0),  # first value improves on +inf
    (0.95, 1.0, 1, 0, 1.0),  # 0.95 < 1.0 - 0.1? no: wait 1
    (0.92, 0.5, 0, 2, 1.0),  # wait 2 >= patience: lr 1.0 -> 0.5, cooldown 2, wait 0
    (0.99, 0.5, 0, 1, 1.0),  # cooldown 2 -> 1, wait 0; still cooling: no wait
    (0.97, 0.5, 1, 0, 1.0),  # cooldown 1 -> 0 first, then 0 <= 0: wait 1
    (0.96, 0.25, 0, 2, 1.0),  # wait 2: lr 0.5 -> 0.25
    (0.5, 0.25, 0, 1, 0.5),  # cooldown 2 -> 1; 0.5 < 0.9: improvement
    (0.45, 0.25, 1, 0, 0.5),  # cooldown 1 -> 0; 0.45 < 0.4? no: wait 1
    (0.41, 0.2, 0, 2, 0.5),  # wait 2: max(0.125, min_lr 0.2) = 0.2
    (0.0, 0.2, 0, 2, 0.5),  # exactly 0.0: treated as missing, nothing changes
    (0.42, 0.2, 0, 1, 0.5),  # cooldown 2 -> 1
    (0.43, 0.2, 1, 0, 0.5),  # cooldown 1 -> 0, wait 1
    (0.44, 0.2, 0, 2, 0.5),  # wait 2, but lr 0.2 is not > min_lr: unchanged; cooldown still reset
    (0.46, 0.2, 0, 1, 0.5),
    (0.47, 0.2, 1, 0, 0.5),
]


def test_min_mode_script_epoch_by_epoch():
    opt = _optimizer(1.0)
    plateau = ReduceLROnPlateau(
        monitor="eval_loss", factor=0.5, patience=2, min_delta=0.1, cooldown=2, min_lr=0.2
    )
    assert plateau.smaller_is_better
    for epoch, (value, lr, wait, cooldown, best) in enumerate(MIN_SCRIPT, start=1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plateau.epoch_end(opt, {"eval_loss": value, "acc": 0.5})
        state = (float(opt.learning_rate), plateau.wait, plateau.cooldown_counter, plateau.best)
        assert state == (_f32(lr), wait, cooldown, best), f"epoch {epoch}"


# monitor 'acc' (auto -> max), patience=0, factor=0.1, min_delta=0, cooldown=0, min_lr=0, lr=0.1
def test_max_mode_patience_zero_reduces_on_every_flat_epoch():
    opt = _optimizer(0.1)
    plateau = ReduceLROnPlateau(monitor="acc", factor=0.1, patience=0, min_delta=0)
    assert not plateau.smaller_is_better
    lr1 = np.float32(0.1)
    lr2 = np.float32(lr1 * np.float32(0.1))  # float32 multiply, as MindSpore's Tensor * float
    lr3 = np.float32(lr2 * np.float32(0.1))
    script = [
        (0.5, lr1),
        (0.5, lr2),
        (0.6, lr2),
        (0.55, lr3),
        (0.6, np.float32(lr3 * np.float32(0.1))),
    ]
    for epoch, (value, lr) in enumerate(script, start=1):
        plateau.epoch_end(opt, value)
        assert float(opt.learning_rate) == float(lr), f"epoch {epoch}"
    assert plateau.best == 0.6


@pytest.mark.parametrize(
    ("monitor", "mode", "smaller"),
    [
        ("eval_loss", "auto", True),
        ("loss", "auto", True),
        ("mae", "auto", True),
        ("mse", "auto", True),
        ("perplexity", "auto", True),
        ("hausdorff_distance", "auto", True),
        ("mean_surface_distance", "auto", True),
        ("root_mean_square_distance", "auto", True),
        ("acc", "auto", False),
        ("val_loss", "auto", False),  # not in MindSpore's list: larger is better
        ("eval_loss", "max", False),
        ("acc", "min", True),
    ],
)
def test_direction_from_mode_and_monitor(monitor, mode, smaller):
    plateau = ReduceLROnPlateau(monitor=monitor, mode=mode)
    assert plateau.smaller_is_better is smaller
    assert plateau.best == (float("inf") if smaller else float("-inf"))


def test_threshold_is_absolute_and_min_delta_takes_abs():
    opt = _optimizer(1.0)
    plateau = ReduceLROnPlateau(factor=0.5, patience=1, min_delta=-0.5)
    assert plateau.min_delta == 0.5
    plateau.epoch_end(opt, 10.0)
    plateau.epoch_end(opt, 9.6)  # 9.6 < 10 - 0.5? no (torch's relative 1e-4 would improve)
    assert float(opt.learning_rate) == 0.5
    plateau.epoch_end(opt, 9.4)  # 9.4 < 9.5: improvement
    assert (plateau.best, plateau.wait, float(opt.learning_rate)) == (9.4, 0, 0.5)


def test_reduces_one_epoch_earlier_than_torch():
    """MindSpore: wait >= patience; torch: num_bad_epochs > patience."""
    values = [1.0, 1.0, 1.0, 1.0]
    opt = _optimizer(1.0)
    ours = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.0)
    param = torch.nn.Parameter(torch.ones(1))
    sgd = torch.optim.SGD([param], lr=1.0)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(sgd, factor=0.5, patience=2, threshold=0.0)
    our_lrs, their_lrs = [], []
    for value in values:
        ours.epoch_end(opt, value)
        theirs.step(value)
        our_lrs.append(float(opt.learning_rate))
        their_lrs.append(sgd.param_groups[0]["lr"])
    assert our_lrs == [1.0, 1.0, 0.5, 0.5]
    assert their_lrs == [1.0, 1.0, 1.0, 0.5]


def test_missing_and_zero_values_are_skipped_with_a_warning():
    opt = _optimizer(1.0)
    plateau = ReduceLROnPlateau(patience=0, factor=0.5)
    plateau.epoch_end(opt, 1.0)
    before = plateau.state_dict()
    with pytest.warns(UserWarning, match="not in the metrics"):
        assert plateau.epoch_end(opt, {"acc": 0.3}) is None
    with pytest.warns(UserWarning, match=r"0\.0"):
        assert plateau.epoch_end(opt, {"eval_loss": 0.0}) is None
    with pytest.warns(UserWarning, match="no value"):
        assert plateau.epoch_end(opt, None) is None
    after = plateau.state_dict()
    assert {k: after[k] for k in ("wait", "best", "cooldown_counter")} == {
        k: before[k] for k in ("wait", "best", "cooldown_counter")
    }
    assert float(opt.learning_rate) == 1.0


def test_accepts_numbers_tensors_and_arrays():
    opt = _optimizer(1.0)
    plateau = ReduceLROnPlateau(monitor="loss", patience=5)
    for value in (3, 2.5, np.float32(2.0), np.array(1.5), torch.tensor(1.0)):
        assert plateau.epoch_end(opt, {"loss": value}) == pytest.approx(float(value))
    assert plateau.best == 1.0


def test_non_scalar_monitor_raises():
    plateau = ReduceLROnPlateau()
    with pytest.raises(ValueError, match="scalar"):
        plateau.epoch_end(_optimizer(), {"eval_loss": torch.ones(2)})
    with pytest.raises(ValueError, match="scalar"):
        plateau.epoch_end(_optimizer(), np.ones(1))
    with pytest.raises(TypeError, match="number"):
        plateau.epoch_end(_optimizer(), "0.5")


def test_nan_loss_warns_and_counts_as_no_improvement():
    opt = _optimizer(1.0)
    plateau = ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5)
    plateau.epoch_end(opt, 1.0)
    with pytest.warns(UserWarning, match="invalid loss"):
        plateau.epoch_end(opt, float("nan"))
    assert float(opt.learning_rate) == 0.5


def test_step_end_is_the_same_rule():
    opt = _optimizer(1.0)
    plateau = ReduceLROnPlateau(factor=0.5, patience=1)
    plateau.step_end(opt, 1.0)
    plateau.step_end(opt, 1.0)
    assert float(opt.learning_rate) == 0.5


def test_on_train_begin_resets_and_state_dict_round_trips():
    opt = _optimizer(1.0)
    plateau = ReduceLROnPlateau(factor=0.5, patience=3, cooldown=4)
    for value in (1.0, 2.0, 2.0):
        plateau.epoch_end(opt, value)
    saved = plateau.state_dict()
    assert (saved["wait"], saved["best"]) == (2, 1.0)
    other = ReduceLROnPlateau(factor=0.5, patience=3, cooldown=4)
    other.load_state_dict(saved)
    assert other.state_dict() == saved
    plateau.on_train_begin()
    assert (plateau.wait, plateau.cooldown_counter, plateau.best) == (0, 0, float("inf"))


def test_verbose_prints_the_new_lr(capsys):
    opt = _optimizer(1.0)
    plateau = ReduceLROnPlateau(factor=0.5, patience=0, verbose=True)
    plateau.epoch_end(opt, 1.0)
    plateau.epoch_end(opt, 1.0)
    assert (
        capsys.readouterr().out == "Epoch 00002: ReduceLROnPlateau reducing learning rate to 0.5.\n"
    )


def test_min_lr_may_be_an_int_and_wins_the_max():
    opt = _optimizer(1.0)
    plateau = ReduceLROnPlateau(factor=0.1, patience=0, min_lr=1)
    plateau.epoch_end(opt, 1.0)
    plateau.epoch_end(opt, 1.0)  # lr 1.0 is not > min_lr 1: unchanged
    assert float(opt.learning_rate) == 1.0
    opt = _optimizer(2.0)
    plateau = ReduceLROnPlateau(factor=0.1, patience=0, min_lr=1)
    plateau.epoch_end(opt, 1.0)
    plateau.epoch_end(opt, 1.0)  # max(0.2, 1) = 1
    assert float(opt.learning_rate) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"monitor": 1}, TypeError, "'monitor' must be a str"),
        ({"factor": 1}, TypeError, "'factor' must be a float"),
        ({"factor": 1.0}, ValueError, r"'factor' must be in the range \(0.0, 1.0\)"),
        ({"factor": 0.0}, ValueError, "'factor'"),
        ({"patience": -1}, ValueError, "'patience'"),
        ({"patience": 2.0}, TypeError, "'patience'"),
        ({"patience": True}, TypeError, "'patience'"),
        ({"verbose": 1}, TypeError, "'verbose'"),
        ({"mode": "up"}, ValueError, "'mode' must be 'auto', 'min' or 'max'"),
        ({"mode": None}, TypeError, "'mode'"),
        ({"min_delta": "0.1"}, TypeError, "'min_delta'"),
        ({"cooldown": -2}, ValueError, "'cooldown'"),
        ({"min_lr": None}, TypeError, "'min_lr'"),
    ],
)
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        ReduceLROnPlateau(**kwargs)


@pytest.mark.parametrize("lr", ["table", "schedule", "group"])
def test_dynamic_and_group_lrs_raise_value_error(lr):
    w = torch.nn.Parameter(torch.ones(2))
    v = torch.nn.Parameter(torch.ones(2))
    if lr == "table":
        opt = msoptim.Momentum([("w", w)], [0.1, 0.1], 0.9)
    elif lr == "schedule":
        opt = msoptim.Momentum([("w", w)], msoptim.WarmUpLR(0.1, 2), 0.9)
    else:
        opt = msoptim.Momentum(
            [{"params": [("w", w)], "lr": 0.5}, {"params": [("v", v)]}], 0.1, 0.9
        )
    plateau = ReduceLROnPlateau()
    with pytest.raises(ValueError, match=r"dynamic|per-group") as info:
        plateau.epoch_end(opt, 1.0)
    assert isinstance(info.value, PlateauLrKindError)
    assert isinstance(info.value, msoptim.UnsupportedLrKindError)


def test_training_loop_example():
    """A plain loop: evaluate each epoch, feed the value, the next epoch trains with the new lr."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = msoptim.Momentum(msoptim.trainable_params(model), 0.1, 0.0)
    plateau = ReduceLROnPlateau(monitor="eval_loss", factor=0.5, patience=1)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    lrs = []
    for _ in range(4):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        plateau.epoch_end(opt, {"eval_loss": 1.0})  # a flat validation loss
        lrs.append(float(opt.learning_rate))
    assert lrs == [_f32(0.1), _f32(0.05), _f32(0.025), _f32(0.0125)]
