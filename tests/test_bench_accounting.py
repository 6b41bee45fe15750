"""The benchmark's byte accounting: the least traffic it credits multi-pass optimizers with."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.shapes import MODELS
from bench.variants import SPECS, adafactor_least_bytes


def test_adafactor_least_bytes_per_shape_kind():
    assert adafactor_least_bytes([(1000,)]) == 40  # a vector: two passes over its moment
    # a matrix: 32 B per element plus its row (100) and column (50) states read and written
    assert adafactor_least_bytes([(100, 50)]) == pytest.approx(32 + 8 * 150 / 5000)
    # a 1x1 kernel: its row and column states are each as large as the kernel
    assert adafactor_least_bytes([(64, 32, 1, 1)]) == 48
    mixed = [(1000,), (100, 50)]
    total = 40 * 1000 + (32 * 5000 + 8 * 150)
    assert adafactor_least_bytes(mixed) == pytest.approx(total / 6000)


def test_the_models_figures_quoted_in_the_results():
    assert adafactor_least_bytes(MODELS["gpt2-small"]()) == pytest.approx(32, abs=0.1)
    assert adafactor_least_bytes(MODELS["resnet50"]()) == pytest.approx(42, abs=0.5)


def test_only_multi_pass_optimizers_claim_more_than_one_pass():
    claims = {name: spec.least_bytes for name, spec in SPECS.items() if spec.least_bytes}
    assert set(claims) == {"Lamb", "LARS", "AdaFactor"}
    shapes = [(4, 4)]
    for name, least in claims.items():
        assert least(shapes) > SPECS[name].bytes_per_param, name
    assert math.isclose(claims["Lamb"](shapes), 40)
    assert math.isclose(claims["LARS"](shapes), 28)


def test_the_cpu_defaults_benchmark_prints_one_row_per_optimizer(monkeypatch, capsys):
    from bench import cpu_defaults

    small = {"tiny": lambda: [(12, 5), (7,), (2, 3, 3, 3)]}
    monkeypatch.setattr(cpu_defaults, "MODELS", small)
    monkeypatch.setattr(sys, "argv", ["cpu_defaults", "--model", "tiny", "--rounds", "1"])
    cpu_defaults.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0][2:] for row in rows[1:]] == list(cpu_defaults.BUILDERS)
    for row in rows[1:]:
        default, reference = (float(cell) for cell in row.split(" | ")[1:3])
        assert default > 0
        assert reference > 0


def test_paired_rounds_go_on_for_their_seconds_up_to_the_cap(monkeypatch):
    from bench import run

    now = [0.0]  # a clock that only the steps move: one "second" a step
    monkeypatch.setattr(run.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(run, "count_syncs", lambda step: 0)
    cpu = run.torch.device("cpu")

    def pair():
        def step():
            now[0] += 1.0

        return [run.Variant("X", "msoptim", "fused", step) for _ in range(2)]

    quick = pair()
    run.run_rounds(quick, 3, cpu)  # no floor: the rounds asked for
    assert [len(v.times) for v in quick] == [3, 3]
    floored = pair()
    run.run_rounds(floored, 3, cpu, min_seconds=12)  # two steps a round: 6 rounds
    assert [len(v.times) for v in floored] == [6, 6]
    capped = pair()
    run.run_rounds(capped, 2, cpu, min_seconds=10_000)
    assert [len(v.times) for v in capped] == [2 * run.ROUNDS_CAP] * 2
