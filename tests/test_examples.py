"""Every script in ``examples/`` runs to completion and says what it demonstrates."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: A line each example must print: the point it makes.
EXPECTED = {
    "seed_grouping.py": [
        "DuplicateParameterError",
        "with `and`",
        "LearningRateTableExhaustedError",
    ],
    "change_lr_mid_training.py": ["lr 0.02", "lr 0.005", "lr 0.0125", "UnsupportedLrKindError"],
    "custom_schedule.py": ["WarmupCosineLR(", "'kind': 'schedule'", "global_step 12"],
    "custom_optimizer.py": ["identical to msoptim.Momentum: parameters True, moments True"],
    "preview_groups_config.py": ["5 groups", "1500 steps"],
}


def test_every_example_is_checked():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name, capsys):
    code = 0
    try:
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
    assert code in (0, None)
    out = capsys.readouterr().out
    for text in EXPECTED[name]:
        assert text in out, f"{name} should print {text!r}"
