"""Resume in a new process: save at step k, restart, load, continue — bit-identical to no break.

For every optimizer and every lr kind it accepts (static, table, schedule, groups mixing a table, a
schedule and a static lr): the test process trains ``SAVE_AT`` steps, writes ``torch.save`` of the
model and ``opt.state_dict()``, and continues ``CONTINUE`` steps as the reference. One subprocess
(a fresh interpreter: no shared tensors, ids or caches) builds each model and optimizer from a
*different* seed, loads the checkpoint with ``torch.load(weights_only=True)``, continues, and saves
its final state; every tensor must equal the reference bit for bit. A checkpoint from a different
group layout must raise a clear ``ValueError`` and change nothing.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import msoptim
from fixtures.optimizer_registry import (
    CASES,
    LR_KINDS,
    REQUIRED,
    available_cases,
    build,
    exported_optimizer_names,
    find_class,
    flat_state,
    make_model,
    single_thread,  # noqa: F401 (autouse fixture)
    train_step,
)

SAVE_AT = 3
CONTINUE = 4
TESTS_DIR = Path(__file__).resolve().parent


def test_registry_covers_every_optimizer():
    """Every optimizer msoptim has is exercised by the integration tests, and all have landed."""
    missing = [name for name in REQUIRED if find_class(name) is None]
    assert not missing, f"msoptim has no {missing} yet"
    package = importlib.import_module("msoptim.optimizers")
    defined = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"msoptim.optimizers.{info.name}")
        defined |= {
            name
            for name, obj in vars(module).items()
            if inspect.isclass(obj)
            and obj.__module__ == module.__name__
            and not name.startswith("_")
            and issubclass(obj, msoptim.Optimizer)
        }
    uncovered = sorted((defined | set(exported_optimizer_names())) - set(CASES))
    assert not uncovered, f"add {uncovered} to tests/fixtures/optimizer_registry.py"


def _runs() -> list[tuple[str, str]]:
    return [
        (case.name, kind)
        for case in available_cases()
        for kind in LR_KINDS
        if kind in case.lr_kinds
    ]


def _file(directory: Path, name: str, kind: str, what: str) -> Path:
    return directory / f"{name}-{kind}-{what}.pt"


def _quiet_build(name: str, kind: str, seed: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build(CASES[name], kind, seed=seed)


def resume_all(directory: Path) -> None:
    """The subprocess side: load every checkpoint, continue, save the final state."""
    torch.set_num_threads(1)
    for name, kind in _runs():
        model, optimizer = _quiet_build(name, kind, seed=123)
        saved = torch.load(_file(directory, name, kind, "ckpt"), weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        for step in range(SAVE_AT, SAVE_AT + CONTINUE):
            train_step(model, optimizer, step)
        torch.save(flat_state(model, optimizer), _file(directory, name, kind, "resumed"))


def test_resume_in_new_process_is_bit_identical(tmp_path):
    torch.set_num_threads(1)
    runs = _runs()
    assert runs
    references = {}
    for name, kind in runs:
        model, optimizer = _quiet_build(name, kind, seed=0)
        for step in range(SAVE_AT):
            train_step(model, optimizer, step)
        checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
        torch.save(checkpoint, _file(tmp_path, name, kind, "ckpt"))
        for step in range(SAVE_AT, SAVE_AT + CONTINUE):
            train_step(model, optimizer, step)
        references[name, kind] = flat_state(model, optimizer)
    code = (
        "import sys; from pathlib import Path; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "import test_resume; test_resume.resume_all(Path(sys.argv[3]))\n"
    )
    source_dir = str(Path(msoptim.__file__).resolve().parent.parent)
    result = subprocess.run(
        [sys.executable, "-c", code, str(TESTS_DIR), source_dir, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    mismatches = []
    for name, kind in runs:
        resumed = torch.load(_file(tmp_path, name, kind, "resumed"), weights_only=True)
        reference = references[name, kind]
        assert set(resumed) == set(reference), (name, kind, set(resumed) ^ set(reference))
        for key, value in reference.items():
            if not torch.equal(resumed[key], value):
                mismatches.append(f"{name}/{kind}: {key}")
    assert not mismatches, "not bit-identical after resume:\n" + "\n".join(mismatches)


def _two_group_params(model, swap: bool = False):
    named = msoptim.trainable_params(model)
    first, second = named[:2], named[2:]
    if swap:
        first, second = named[2:4], named[:2] + named[4:]
    return [{"params": first}, {"params": second}]


@pytest.mark.parametrize("case", available_cases(), ids=lambda c: c.name)
def test_checkpoint_from_another_group_layout_raises(case):
    model = make_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = case.make(_two_group_params(model), case.lr)
        regrouped = case.make(_two_group_params(model, swap=True), case.lr)
        flat = case.make(msoptim.trainable_params(model), case.lr)
    train_step(model, source, 0)
    saved = source.state_dict()
    for target in (regrouped, flat):
        before = flat_state(model, target)
        with pytest.raises(ValueError, match=r"load_state_dict: .*(group|differ)"):
            target.load_state_dict(saved)
        after = flat_state(model, target)
        assert all(torch.equal(before[k], after[k]) for k in before)


def test_checkpoint_with_other_shapes_raises():
    """Unnamed parameters match by position: a checkpoint of other shapes must not load silently."""
    a = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(2, 2))
    source = msoptim.Momentum([a, b], 0.1, 0.9)
    a.grad, b.grad = torch.ones(3), torch.ones(2, 2)
    source.step()
    target = msoptim.Momentum(
        [torch.nn.Parameter(torch.ones(2, 2)), torch.nn.Parameter(torch.ones(3))], 0.1, 0.9
    )
    with pytest.raises(ValueError, match="shape"):
        target.load_state_dict(source.state_dict())


@pytest.mark.parametrize("kind", ["static", "table", "schedule"])
def test_checkpoint_with_another_lr_kind_raises(kind):
    case = CASES["Momentum"]
    _model, optimizer = build(case, kind)
    other = "table" if kind != "table" else "static"
    _, source = build(case, other)
    with pytest.raises(ValueError, match="learning rate"):
        optimizer.load_state_dict(source.state_dict())
