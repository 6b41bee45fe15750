"""``msoptim preview``: every previewable from the command line, with training's own validation.

Contract: each of the 13 callables runs from arguments named as in the API; the table, sparkline and
min/max are printed; ``--csv`` holds one row per step with the exact values (float64 for the lr
functions, float32 for schedules, equal to ``schedule(step)``); a bad argument exits with status 2
and the validator's own message, without a traceback; a group configuration is read from a real
optimizer's ``get_lr()``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import msoptim
from msoptim import preview
from msoptim.__main__ import main as cli_main

SRC = Path(preview.__file__).resolve().parents[1]

# name -> (arguments, keyword arguments as Python sees them, steps)
CASES = {
    "piecewise_constant_lr": (
        "--milestone 2 5,10 --learning-rates 0.1 0.05 0.01",
        {"milestone": [2, 5, 10], "learning_rates": [0.1, 0.05, 0.01]},
        10,
    ),
    "exponential_decay_lr": (
        "--learning-rate 0.1 --decay-rate 0.9 --total-step 12 --step-per-epoch 2 --decay-epoch 1",
        {"learning_rate": 0.1, "decay_rate": 0.9, "total_step": 12, "step_per_epoch": 2,
         "decay_epoch": 1},
        12,
    ),
    "natural_exp_decay_lr": (
        "--learning-rate 0.1 --decay-rate 0.9 --total-step 6 --step-per-epoch 2 --decay-epoch 2 "
        "--is-stair",
        {"learning_rate": 0.1, "decay_rate": 0.9, "total_step": 6, "step_per_epoch": 2,
         "decay_epoch": 2, "is_stair": True},
        6,
    ),
    "inverse_decay_lr": (
        "--learning-rate 0.1 --decay-rate 0.5 --total-step 6 --step-per-epoch 1 --decay-epoch 1 "
        "--is-stair false",
        {"learning_rate": 0.1, "decay_rate": 0.5, "total_step": 6, "step_per_epoch": 1,
         "decay_epoch": 1, "is_stair": False},
        6,
    ),
    "cosine_decay_lr": (
        "--min-lr 0.01 --max-lr 0.1 --total-step 600 --step-per-epoch 30 --decay-epoch 20",
        {"min_lr": 0.01, "max_lr": 0.1, "total_step": 600, "step_per_epoch": 30,
         "decay_epoch": 20},
        600,
    ),
    "polynomial_decay_lr": (
        "--learning-rate 0.1 --end-learning-rate 0.01 --total-step 10 --step-per-epoch 1 "
        "--decay-epoch 3 --power 1.0 --update-decay-epoch true",
        {"learning_rate": 0.1, "end_learning_rate": 0.01, "total_step": 10, "step_per_epoch": 1,
         "decay_epoch": 3, "power": 1.0, "update_decay_epoch": True},
        10,
    ),
    "warmup_lr": (
        "--learning-rate 0.1 --total-step 6 --step-per-epoch 1 --warmup-epoch 4",
        {"learning_rate": 0.1, "total_step": 6, "step_per_epoch": 1, "warmup_epoch": 4},
        6,
    ),
    "ExponentialDecayLR": (
        "--learning-rate 0.1 --decay-rate 0.9 --decay-steps 4 --steps 40",
        {"learning_rate": 0.1, "decay_rate": 0.9, "decay_steps": 4},
        40,
    ),
    "NaturalExpDecayLR": (
        "--learning-rate 0.1 --decay-rate 0.9 --decay-steps 4 --is-stair true --steps 12",
        {"learning_rate": 0.1, "decay_rate": 0.9, "decay_steps": 4, "is_stair": True},
        12,
    ),
    "InverseDecayLR": (
        "--learning-rate 0.1 --decay-rate 0.9 --decay-steps 4",  # default --steps: 2 x 4
        {"learning_rate": 0.1, "decay_rate": 0.9, "decay_steps": 4},
        8,
    ),
    "CosineDecayLR": (
        "--min-lr 0.01 --max-lr 0.1 --decay-steps 600 --steps 800",
        {"min_lr": 0.01, "max_lr": 0.1, "decay_steps": 600},
        800,
    ),
    "PolynomialDecayLR": (
        "--learning-rate 0.1 --end-learning-rate 0.01 --decay-steps 4 --power 0.5 "
        "--update-decay-steps --steps 20",
        {"learning_rate": 0.1, "end_learning_rate": 0.01, "decay_steps": 4, "power": 0.5,
         "update_decay_steps": True},
        20,
    ),
    "WarmUpLR": (
        "--learning-rate 0.1 --warmup-steps 4 --steps 10",
        {"learning_rate": 0.1, "warmup_steps": 4},
        10,
    ),
}  # fmt: skip


def test_cases_cover_every_previewable():
    assert set(CASES) == set(preview.PREVIEWABLE)
    assert len(preview.PREVIEWABLE) == 13


def _read_csv(path: Path) -> list[list[str]]:
    with path.open() as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("name", list(CASES))
def test_each_callable(name, tmp_path, capsys):
    argv, kwargs, steps = CASES[name]
    path = tmp_path / "lr.csv"
    assert preview.main([name, *argv.split(), "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{name}(")
    for word in ("step", "first", "last", "min ", "max "):
        assert word in out
    assert any(bar in out for bar in "▁▂▃▄▅▆▇█")
    rows = _read_csv(path)
    assert rows[0] == ["step", "lr"]
    assert len(rows) - 1 == steps
    assert [int(r[0]) for r in rows[1:]] == list(range(steps))
    result = preview.PREVIEWABLE[name](**kwargs)  # the values training would use
    if isinstance(result, msoptim.LearningRateSchedule):
        expected = [np.float32(result(torch.tensor(s, dtype=torch.int32))) for s in range(steps)]
        assert [np.float32(r[1]) for r in rows[1:]] == expected
    else:
        assert [float(r[1]) for r in rows[1:]] == result


def test_schedules_match_per_step_calls_on_a_long_run():
    schedule = msoptim.PolynomialDecayLR(0.1, 0.01, 7, 2.0, update_decay_steps=True)
    fast = preview.evaluate_schedule(schedule, 3000)
    slow = [float(schedule(torch.tensor(s, dtype=torch.int32))) for s in range(0, 3000, 7)]
    assert fast[::7] == slow


def test_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    argv, _, _ = CASES["cosine_decay_lr"]
    path = tmp_path / "lr.png"
    assert preview.main(["cosine_decay_lr", *argv.split(), "--png", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {path}" in capsys.readouterr().out


def _message(call):
    with pytest.raises((TypeError, ValueError)) as error_info:
        call()
    return str(error_info.value)


@pytest.mark.parametrize(
    ("argv", "call"),
    [
        (
            "cosine_decay_lr --min-lr 0 --max-lr 0.1 --total-step 600 --step-per-epoch 30 "
            "--decay-epoch 20",
            lambda: msoptim.cosine_decay_lr(0, 0.1, 600, 30, 20),
        ),
        (
            "cosine_decay_lr --min-lr 0.2 --max-lr 0.1 --total-step 6 --step-per-epoch 3 "
            "--decay-epoch 2",
            lambda: msoptim.cosine_decay_lr(0.2, 0.1, 6, 3, 2),
        ),
        (
            "warmup_lr --learning-rate 0.1 --total-step 6.0 --step-per-epoch 1 --warmup-epoch 2",
            lambda: msoptim.warmup_lr(0.1, 6.0, 1, 2),
        ),
        (
            "exponential_decay_lr --learning-rate 0.1 --decay-rate 0.9 --total-step 6 "
            "--step-per-epoch 1 --decay-epoch 2 --is-stair 1",
            lambda: msoptim.exponential_decay_lr(0.1, 0.9, 6, 1, 2, is_stair=1),
        ),
        (
            "piecewise_constant_lr --milestone 2 5 --learning-rates 1 0.5",
            lambda: msoptim.piecewise_constant_lr([2, 5], [1, 0.5]),
        ),
        (
            "CosineDecayLR --min-lr 0.0 --max-lr 0.1 --decay-steps 2.0",
            lambda: msoptim.CosineDecayLR(0.0, 0.1, 2.0),
        ),
        (
            "WarmUpLR --learning-rate 1 --warmup-steps 4",
            lambda: msoptim.WarmUpLR(1, 4),
        ),
    ],
)
def test_bad_argument_exits_2_with_the_validators_message(argv, call, capsys):
    assert preview.main(argv.split()) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == f"msoptim preview: error: {_message(call)}"
    assert captured.out == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["cosine_decay_lr", "--min-lr", "0.0"],  # missing required arguments
        ["cosine_decay_lr", "--min-lr", "abc"],  # not a number
        ["cosine_decay_lr", "--no-such-option", "1"],
        ["warmup_lr", "--steps", "3"],  # --steps is for schedules only
        ["cosine_decay"],  # unknown name
        [],  # nothing to do
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    assert preview.main(argv) == 2
    assert "error" in capsys.readouterr().err or not argv


def test_unknown_name_suggests(capsys):
    assert preview.main(["CosineDecay"]) == 2
    assert "Did you mean CosineDecayLR" in capsys.readouterr().err


def test_parse_value_keeps_the_written_type():
    assert [type(preview.parse_value(t)) for t in ("0", "0.0", "1e-3", "-2", "true", "FALSE")] == [
        int,
        float,
        float,
        int,
        bool,
        bool,
    ]


def test_help_is_generated_from_the_signature(capsys):
    assert preview.main(["CosineDecayLR", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--min-lr FLOAT", "--max-lr FLOAT", "--decay-steps INT", "--steps N", "--csv"):
        assert flag in out
    assert preview.main(["--help"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in preview.PREVIEWABLE)


def test_console_entry_point_no_traceback():
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    argv = (
        "preview cosine_decay_lr --min-lr 0 --max-lr 0.1 --total-step 6 --step-per-epoch 1 "
        "--decay-epoch 2"
    )
    done = subprocess.run(
        [sys.executable, "-m", "msoptim", *argv.split()],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert _message(lambda: msoptim.cosine_decay_lr(0, 0.1, 6, 1, 2)) in done.stderr


def test_cli_dispatch(capsys):
    assert cli_main(["preview", "--list"]) == 0
    assert capsys.readouterr().out.split() == list(preview.PREVIEWABLE)
    assert cli_main(["--version"]) == 0
    assert msoptim.__version__ in capsys.readouterr().out
    assert cli_main(["frobnicate"]) == 2
    assert cli_main([]) == 2


# ---------------------------------------------------------------------------------------- groups

GROUPS_CONFIG = """
import msoptim

steps = 12
learning_rate = 0.05
groups = [
    {"name": "conv", "lr": msoptim.cosine_decay_lr(0.0, 0.1, 12, 3, 4), "weight_decay": 1e-4},
    {"name": "bn", "lr": 1e-4, "weight_decay": 0.0},
    {"name": "warm", "lr": msoptim.WarmUpLR(0.1, 4)},
    {"name": "rest"},
]
"""


def _real_momentum_lrs(steps: int) -> list[list[float]]:
    """The same groups on a real Momentum over real parameters, stepped with zero gradients."""
    params = [torch.nn.Parameter(torch.ones(3)) for _ in range(4)]
    opt = msoptim.Momentum(
        [
            {"params": [("a", params[0])], "lr": msoptim.cosine_decay_lr(0.0, 0.1, 12, 3, 4),
             "weight_decay": 1e-4},
            {"params": [("b", params[1])], "lr": 1e-4, "weight_decay": 0.0},
            {"params": [("c", params[2])], "lr": msoptim.WarmUpLR(0.1, 4)},
            {"params": [("d", params[3])]},
        ],
        learning_rate=0.05,
        momentum=0.9,
    )  # fmt: skip
    rows = []
    for _ in range(steps):
        rows.append([float(lr) for lr in opt.get_lr()])
        opt(tuple(torch.zeros(3) for _ in params))
    return [list(column) for column in zip(*rows)]


def test_groups_preview_reads_the_real_optimizer(tmp_path, capsys):
    config = tmp_path / "groups.py"
    config.write_text(GROUPS_CONFIG)
    path = tmp_path / "groups.csv"
    assert preview.main(["--groups", str(config), "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert "4 groups" in out
    for label in ("conv", "bn", "warm", "rest"):
        assert label in out
    rows = _read_csv(path)
    assert rows[0] == ["step", "conv", "bn", "warm", "rest"]
    assert len(rows) - 1 == 12
    columns = [[float(np.float32(r[i])) for r in rows[1:]] for i in range(1, 5)]
    assert columns == _real_momentum_lrs(12)
    one = np.float32(1.0)
    assert columns[1][0] == float((np.float32(1e-4) + one) - one) != float(np.float32(1e-4))
    assert columns[3][0] == float((np.float32(0.05) + one) - one)  # default learning_rate


def test_groups_preview_of_the_example_config(capsys):
    example = Path(__file__).resolve().parents[1] / "examples" / "preview_groups_config.py"
    assert preview.main(["--groups", str(example), "--steps", "300"]) == 0
    assert "300 steps" in capsys.readouterr().out


def test_groups_preview_is_quick_enough():
    table = msoptim.cosine_decay_lr(0.0, 0.1, 2000, 100, 20)
    curves = preview.evaluate_groups([{"lr": table}, {"lr": 0.01}, {}], learning_rate=0.1)
    assert [len(c.values) for c in curves] == [2000] * 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "groups = [{'lr': [0.1, 0.2]}, {'lr': 0.1, 'weight_decy': 0.1}]",
            "Did you mean 'weight_decay'?",
        ),
        (
            "import msoptim\ngroups = [{'lr': msoptim.cosine_decay_lr(0, 0.1, 4, 1, 2)}]",
            "'min_lr' must be a non-negative float, but got 0 (int)",
        ),
        ("groups = [{'lr': [0.1, 0.2]}]\nsteps = 3", "table of 2 values"),
        ("groups = [{'lr': 0.1}]", "pass --steps N"),
        ("groups = [{'lr': [0.1, 0.2]}, {'name': 'rest'}]", "define learning_rate"),
        ("groups = [{'lr': 0.1}]\noptimizer = 'LARS'", "unknown optimizer 'LARS'"),
        ("steps = 3", "must define 'groups'"),
    ],
)
def test_groups_errors_exit_2(text, message, tmp_path, capsys):
    config = tmp_path / "config.py"
    config.write_text(text)
    assert preview.main(["--groups", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("msoptim preview: error: ")
    assert message in err


def test_groups_from_json(tmp_path, capsys):
    config = tmp_path / "groups.json"
    cosine = {"min_lr": 0.0, "max_lr": 0.1, "total_step": 6, "step_per_epoch": 2, "decay_epoch": 3}
    config.write_text(json.dumps({"groups": [{"lr": {"cosine_decay_lr": cosine}}, {"lr": 0.1}]}))
    assert preview.main(["--groups", str(config)]) == 0
    assert "6 steps" in capsys.readouterr().out
