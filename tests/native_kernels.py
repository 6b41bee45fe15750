"""What the C kernels' tests share: thread counts (and the ``threads`` fixture in conftest.py), a
machine without a C compiler, a spy on a kernel module's calls, a compiled step against an eager
one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from msoptim.kernels import _native


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """``torch.set_num_threads(count)`` for the block (the C kernels read it at every call)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def column_major_matrices(grad: torch.Tensor) -> torch.Tensor:
    """A matrix gradient in the transposed layout (same values): not what a C kernel walks."""
    return grad.t().contiguous().t() if grad.ndim == 2 else grad


def without_compiler(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, module: Any, name: str
) -> None:
    """Make ``module``'s C kernel ``name`` unbuildable (no compiler found) and check it says so."""
    monkeypatch.setenv("MSOPTIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_native, "_compiler", lambda: None)
    flags = ("-DMSOPTIM_TEST_NO_COMPILER",)
    monkeypatch.setattr(module, "NATIVE_FLAGS", flags)
    assert module._load_native() is None
    assert "no C compiler" in _native.unavailable_reason(name, flags)


def spy_native_steps(monkeypatch: pytest.MonkeyPatch, module: Any, record: Any) -> list[Any]:
    """Wrap ``module._native_step``: each call appends ``record(*args)`` to the returned list."""
    calls: list[Any] = []
    real = module._native_step

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(record(*args))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "_native_step", spy)
    return calls


def assert_builds(module: Any, name: str) -> None:
    """Where there is a C compiler the kernel must build: a failing build must not hide behind
    the tests that skip without one."""
    if _native._compiler() is None:
        pytest.skip("no C compiler on this machine")
    assert module._load_native() is not None, _native.unavailable_reason(name)


def assert_compiled_steps_equal_eager(
    make: Callable[[list[tuple[str, torch.nn.Parameter]]], Any], shapes: dict[str, tuple[int, ...]]
) -> None:
    """Build an optimizer twice on the same named parameters (``make(named)``), step one through
    ``torch.compile(opt.step)`` (dynamo cannot trace a ctypes call, so it sees the reference
    math) and the other eagerly, on the same gradients for three steps: same results."""
    from test_fast_path import same_values

    def build() -> tuple[list[torch.nn.Parameter], Any]:
        gen = torch.Generator().manual_seed(3)
        named = [(n, torch.nn.Parameter(torch.randn(s, generator=gen))) for n, s in shapes.items()]
        return [p for _, p in named], make(named)

    (compiled_params, compiled), (eager_params, eager) = build(), build()
    step = torch.compile(compiled.step, backend="eager")
    gen = torch.Generator().manual_seed(5)
    for _ in range(3):
        for a, b in zip(compiled_params, eager_params):
            a.grad = torch.randn(a.shape, generator=gen)
            b.grad = a.grad.clone()
        step()
        eager.step()
    for name, a, b in zip(shapes, compiled_params, eager_params):
        assert same_values(a.detach(), b.detach()), name
