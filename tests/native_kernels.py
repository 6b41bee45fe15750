"""What the C kernels' tests share: thread counts (and the ``threads`` fixture in conftest.py), the
build that splits every tensor among the threads, a machine without a C compiler, a spy on a
kernel module's calls, random shapes, the version-counter check, a compiled step against an
eager one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from hypothesis import strategies as st

from msoptim.kernels import _native

#: What the kernels walk whole (0-d, one element, vector tails) and what their threads split (at
#: least ``TEAM_MIN_NUMEL`` elements).
MIXED_SHAPES = [(), (1,), (7,), (33,), (2, 3), (300, 9), (64, 16, 3, 3), (70001,), (300, 257)]

#: Random shapes for the kernels' property tests: tails around the 8- and 16-element vectors,
#: tensors above the tiny split threshold of :func:`split_build`.
RANDOM_SHAPES = st.lists(
    st.lists(st.sampled_from([1, 2, 3, 7, 8, 9, 15, 16, 17, 33, 300]), min_size=0, max_size=3),
    min_size=1,
    max_size=5,
).map(lambda shapes: [tuple(shape) for shape in shapes])


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """``torch.set_num_threads(count)`` for the block (the C kernels read it at every call)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def moment_state(
    shapes: list[tuple[int, ...]], seed: int = 1, dtype: torch.dtype = torch.float32
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Parameters (of growing scale) and two moment lists (the second non-negative), part way
    through a run."""
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen, dtype=dtype) * (i + 1) for i, s in enumerate(shapes)]
    first = [torch.randn(shape, generator=gen, dtype=dtype) * 0.01 for shape in shapes]
    second = [torch.rand(shape, generator=gen, dtype=dtype) * 0.01 for shape in shapes]
    return params, first, second


def assert_steps_equal(
    reference: Callable[..., None],
    kernel: Callable[..., None],
    states: tuple[tuple[list[torch.Tensor], ...], tuple[list[torch.Tensor], ...]],
    names: tuple[str, ...],
    options: Callable[[int], dict[str, Any]],
    *,
    steps: int,
    grad_scale: float,
    grad_layout: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """``steps`` steps of ``reference`` on ``states[0]`` and of ``kernel`` on ``states[1]``
    (``(params, *state_lists)``, equal to begin with) with the same random gradients
    (``grad_layout`` reshapes them) and ``options(step)``: every tensor (``names``: of the lists)
    keeps the same values."""
    from test_fast_path import same_values

    expected, got = states
    gen = torch.Generator().manual_seed(2)
    for step in range(1, steps + 1):
        grads = [torch.randn(p.shape, generator=gen, dtype=p.dtype) * grad_scale for p in got[0]]
        if grad_layout is not None:
            grads = [grad_layout(g) for g in grads]
        reference(expected[0], grads, *expected[1:], **options(step))
        kernel(got[0], [g.clone() for g in grads], *got[1:], **options(step))
        for name, a, b in zip(names, expected, got):
            for index, (x, y) in enumerate(zip(a, b)):
                assert same_values(x, y), f"step {step}: {name} {index} differs"


def split_build(monkeypatch: pytest.MonkeyPatch, module: Any, *, openmp: bool = True) -> None:
    """Build ``module``'s C kernel so that its threads split every tensor of 8 elements or more
    (not only the large ones), run by torch's OpenMP workers or by threads of its own."""
    if openmp and _native.openmp_entry_points() is None:
        pytest.skip("torch has no OpenMP runtime here")
    monkeypatch.setattr(module, "NATIVE_FLAGS", ("-DTEAM_MIN_NUMEL=8",))
    monkeypatch.setattr(module, "USE_OPENMP", openmp)


def random_case(module: Any, run: Callable[[], None], *, team: bool) -> list[Any]:
    """``run()`` with two threads (a hypothesis example: no fixtures), the kernel built to split
    every tensor when ``team``; returns what each of the kernel's calls took (parameters, or
    LARS's mode)."""
    with pytest.MonkeyPatch.context() as patch, torch_threads(2):
        if team:
            split_build(patch, module)
        calls = spy_native_steps(patch, module, _what_a_call_took)
        run()
    return calls


def _what_a_call_took(first: Any, *rest: Any) -> Any:
    return len(first[0]) if isinstance(first, tuple) else first


def assert_bumps_versions(step: Callable[[], None], weight: torch.Tensor, *state: torch.Tensor):
    """Autograd must see a kernel's in-place update: ``weight`` saved for backward, then
    ``step()`` (under no_grad) bumps its version counter and the state's."""
    weight.requires_grad_()
    saved = (weight * weight).sum()  # saves weight for backward
    tensors = (weight, *state)
    before = [t._version for t in tensors]
    with torch.no_grad():
        step()
    assert all(t._version > b for t, b in zip(tensors, before))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        saved.backward()


def assert_default_and_fused_are_native(
    run: Callable[..., list[torch.Tensor]], native_calls: list[Any], calls_per_run: list[Any]
) -> None:
    """An optimizer's CPU default (``fused`` and ``foreach`` unset) and ``fused=True`` run the C
    kernel (``native_calls`` grows by ``calls_per_run`` each); ``fused=False`` and
    ``foreach=False`` run the reference, ``foreach=True`` the foreach kernels; all five give the
    same bits (``run(**impl)`` returns the tensors to compare)."""
    from test_fast_path import same_values

    by_default = run()
    assert native_calls == calls_per_run
    for a, b in zip(run(fused=True), by_default):
        assert same_values(a, b)
    assert native_calls == calls_per_run * 2
    for impl in ({"fused": False}, {"foreach": False}, {"foreach": True}):
        for a, b in zip(run(**impl), by_default):
            assert same_values(a, b)
    assert native_calls == calls_per_run * 2


def column_major_matrices(grad: torch.Tensor) -> torch.Tensor:
    """A matrix gradient in the transposed layout (same values): not what a C kernel walks."""
    return grad.t().contiguous().t() if grad.ndim == 2 else grad


def assert_other_layouts_take_the_reference(
    run: Callable[..., None], calls: list[Any], **options: Any
) -> None:
    """A kernel module's default leaves transposed gradients (two matrices of four tensors) and
    float64 tensors to the reference, which gives the same bits; the C kernel takes the others.
    ``run(shapes, **kwargs)``: the module's steps-equal check; ``calls``: its ``native_calls``."""
    shapes = [(300, 9), (7,), (64, 16, 3, 3), (40, 40)]
    run(shapes, grad_layout=column_major_matrices, steps=2, **options)
    assert calls == [2, 2]
    run(shapes, steps=1, dtype=torch.float64, **options)
    assert calls == [2, 2]


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


def poisoned(value: float, *, last: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """A ``grad_layout`` that sets a gradient's first element (and its last: ``last``) to
    ``value``: non-finite values and signed zeros in the vector blocks and the scalar loops."""

    def poison(grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        grad.view(-1)[0] = value
        if last:
            grad.view(-1)[-1] = value
        return grad

    return poison
