"""Shared pytest set-up: the golden-case directory and the import path of the replay helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # `import golden_replay` under any --import-mode
    sys.path.insert(0, str(TESTS_DIR))

GOLDEN_DIR_ENV = "MSOPTIM_GOLDEN_DIR"


def pytest_addoption(parser):
    parser.addoption(
        "--golden-dir",
        default=None,
        help=f"directory of golden *.json cases (default: ${GOLDEN_DIR_ENV} or tests/golden)",
    )


def pytest_configure(config):
    golden_dir = config.getoption("--golden-dir")
    if golden_dir:
        os.environ[GOLDEN_DIR_ENV] = str(Path(golden_dir).resolve())
    if not hasattr(config, "workerinput"):
        # Build the C++ table module once, before any xdist worker starts: every test then runs
        # with it (or, where it cannot be built, every test without it).
        from msoptim.kernels import _native

        _native.step_extension(wait=True)


def pytest_report_header(config):
    return f"golden cases: {os.environ.get(GOLDEN_DIR_ENV) or TESTS_DIR / 'golden'}"


@pytest.fixture(params=[1, 2, 3, 4], ids=lambda n: f"{n}-threads")
def threads(request):
    """torch's thread count for the test: 1 to 4 (the C kernels read it at every call)."""
    from native_kernels import torch_threads

    with torch_threads(request.param):
        yield request.param


@pytest.fixture
def native_calls(request, monkeypatch):
    """How many parameters each call of the test module's C kernel (its ``kernels`` module) took;
    a module whose kernel records something else defines its own."""
    from native_kernels import spy_native_steps

    module = request.module.kernels
    return spy_native_steps(monkeypatch, module, lambda lists, *rest: len(lists[0]))
