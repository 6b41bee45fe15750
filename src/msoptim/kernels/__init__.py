"""Update kernels: pure functions over tensor lists, one module per optimizer.

Each module has ``<optimizer>_update`` (one tensor's update, in MindSpore's float32 op order),
``<optimizer>_reference`` (a loop calling it eagerly: the ground truth) and, where it pays,
``<optimizer>_foreach`` (the same arithmetic with ``torch._foreach_*`` ops) and
``<optimizer>_fused`` (``<optimizer>_update`` compiled by Inductor, see
:mod:`msoptim.kernels._fused`). Seven optimizers also have a C kernel (``<module>_native.c``,
built once per machine by :mod:`msoptim.kernels._native`) that ``fused`` takes first on CPU for
plain contiguous float32 tensors: AdaFactor (its sequential sums are an order Inductor does not
keep), LARS and Lamb (each parameter visited once, norms included), Adam and AdamWeightDecay
(whose float64 arithmetic Inductor's kernels do not keep at the memory's pace), Momentum and SGD
(every group's tensors in one call, where compiled kernels make a call per tensor).
Tests compare every path with the reference bit for bit, state included. Kernels mutate in place
and return None.

Which path a step takes (:func:`select_kernel`), per parameter group:

* ``fused=True``: the C kernel where there is one (CPU), else the compiled kernels (opt-in: the
  first step compiles, 10-16 s with an empty Inductor cache on 2 CPU cores, about 3 s with it
  warm; then the fastest path on CPU, see ``bench/RESULTS.md``). On CUDA, Momentum, SGD, Adam,
  AdamWeightDecay, Adagrad and RMSProp run a multi-tensor Triton kernel
  (:mod:`msoptim.kernels._triton`; one launch for all the groups of Momentum, SGD, Adam or
  AdamWeightDecay whose other hyperparameters agree, one per group for Adagrad and RMSProp), and with
  ``fused`` and ``foreach`` both left unset they take it by default (the fastest path there by
  far, compiled in about a second; ``bench/RESULTS.md``);
* ``fused`` and ``foreach`` unset on CPU: the C kernel of the seven optimizers above (nothing to
  compile per process; the reference where it cannot run), the reference loop for the others;
* else ``foreach=True``, or ``foreach=None`` on CUDA: the foreach kernels;
* else the reference loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from msoptim._validate import describe
from msoptim.kernels import _triton
from msoptim.kernels._fused import fused_apply
from msoptim.kernels._launch import split_by_scalar_loop

__all__ = [
    "apply_concatenated",
    "check_impl",
    "pick_lists",
    "select_kernel",
    "together_device",
    "use_foreach",
    "use_fused",
]


def use_foreach(foreach: bool | None, tensors: list[Tensor]) -> bool:
    """torch's convention: ``None`` picks foreach on CUDA, the reference loop elsewhere."""
    if foreach is not None:
        return foreach
    return bool(tensors) and all(t.is_cuda for t in tensors) and not torch.jit.is_scripting()


def check_impl(foreach: Any, fused: Any, api: str) -> None:
    """Validate the ``foreach`` / ``fused`` keyword arguments of an optimizer (as torch does)."""
    for name, value in (("foreach", foreach), ("fused", fused)):
        if value is not None and not isinstance(value, bool):
            raise TypeError(
                f"{api}: '{name}' must be None, True or False, but got {describe(value)}."
            )
    if foreach and fused:
        raise ValueError(
            f"{api}: 'foreach' and 'fused' cannot both be True. Pick one: fused=True compiles "
            "the kernels (fastest after the first step), foreach=True uses torch._foreach_* ops."
        )


def use_fused(group: dict[str, Any], params: list[Tensor], multi_tensor: bool = False) -> bool:
    """``fused`` as given; left unset (and ``foreach`` too), True on CUDA for an optimizer with a
    multi-tensor Triton kernel (``multi_tensor``): there it is the fastest path by far and
    compiles in about a second (``bench/RESULTS.md``).

    ``group.get`` keeps checkpoints saved before the ``fused`` option loadable.
    """
    fused = group.get("fused")
    if fused is not None or not multi_tensor or group.get("foreach") is not None:
        return bool(fused)
    return _triton.available(params) and all(t.is_cuda for t in params)


def together_device(params: list[Tensor]) -> str | None:
    """Where a group's step may share one call with other groups' (see
    :meth:`msoptim.optimizer.Optimizer._update_together`): ``"cpu"`` (a C kernel), ``"cuda"``
    (a multi-tensor Triton launch, where Triton runs and dynamo is not tracing), else None."""
    if not params:
        return None
    kind = params[0].device.type
    if kind == "cuda":
        return kind if _triton.available(params) else None
    return kind if kind == "cpu" else None


def select_kernel(
    group: dict[str, Any],
    params: list[Tensor],
    reference: Callable[..., None],
    foreach: Callable[..., None] | None = None,
    fused: Callable[..., None] | None = None,
    *,
    multi_tensor: bool = False,
    cpu_default: Callable[..., None] | None = None,
) -> Callable[..., None]:
    """The kernel a group's step runs: fused if asked for (or by default on CUDA for an optimizer
    with a multi-tensor kernel, see :func:`use_fused`), else foreach/reference as torch picks.
    ``cpu_default``: what runs instead of the reference when neither ``fused`` nor ``foreach`` was
    given (an optimizer's C kernel, which falls back to the reference where it cannot run)."""
    if fused is not None and use_fused(group, params, multi_tensor):
        return fused
    if foreach is not None and use_foreach(group.get("foreach"), params):
        return foreach
    if cpu_default is not None and group.get("fused") is None and group.get("foreach") is None:
        return cpu_default
    return reference


#: apply_concatenated works through at most about this many elements at a time.
CONCATENATED_CHUNK = 1 << 21


def apply_concatenated(
    update: Callable[..., None],
    lists: tuple[list[Tensor], ...],
    written: tuple[int, ...],
    *shared: Any,
    **constants: Any,
) -> None:
    """Run a per-tensor element-wise ``update`` over concatenated tensors of one dtype at a time.

    A foreach path for updates whose exact arithmetic has no ``torch._foreach_*`` form (fused
    multiply-adds): one call per chunk of about :data:`CONCATENATED_CHUNK` elements instead of one
    per tensor, the same bits as the reference loop (element-wise). Chunks keep the float64
    temporaries of the exact arithmetic in the caches instead of a pass over gigabytes.
    ``written`` are the positions in ``lists`` of the tensors the update changes; they are copied
    back.
    """
    by_dtype: dict[torch.dtype, list[int]] = {}
    for index, tensor in enumerate(lists[0]):
        by_dtype.setdefault(tensor.dtype, []).append(index)
    for bucket in by_dtype.values():
        chunk: list[int] = []
        size = 0
        for index in bucket:
            chunk.append(index)
            size += lists[0][index].numel()
            if size >= CONCATENATED_CHUNK:
                _apply_chunk(update, lists, written, chunk, shared, constants)
                chunk, size = [], 0
        if chunk:
            _apply_chunk(update, lists, written, chunk, shared, constants)


def concatenated_by_scalar_loop(
    update: Callable[..., None],
    lists: tuple[list[Tensor], ...],
    written: tuple[int, ...],
    *shared: Any,
    width: int,
    **constants: Any,
) -> None:
    """:func:`apply_concatenated` for an ``update(..., scalar_tail=)`` with MindSpore's scalar
    loops (:mod:`msoptim.kernels._launch`): concatenated, a tensor's scalar loops would be lost,
    so the tensors that can have one (in one piece or two) are updated one by one."""
    whole, rest = split_by_scalar_loop(tuple(map(Tensor.numel, lists[0])), width)
    if whole:
        apply_concatenated(
            update, pick_lists(lists, whole), written, *shared, **constants, scalar_tail=False
        )
    for i in rest:
        update(*(items[i] for items in lists), *shared, **constants)


def fused_by_scalar_loop(
    update: Callable[..., None],
    lists: tuple[list[Tensor], ...],
    shared: tuple[Any, ...],
    *,
    width: int,
    **constants: Any,
) -> None:
    """:func:`~msoptim.kernels._fused.fused_apply` for an ``update(..., scalar_tail=)`` with
    MindSpore's scalar loops: tensors whose pieces are whole blocks skip the scalar loop's float64
    arithmetic. A compiled kernel sees a permuted layout in memory order, but the scalar loops are
    the last elements in row-major order: strided tensors that can have one run eagerly."""
    params = lists[0]
    whole, rest = split_by_scalar_loop(tuple(map(Tensor.numel, params)), width)
    eager = [i for i in rest if not params[i].is_contiguous()]
    for i in eager:
        update(*(items[i] for items in lists), *shared, **constants)
    rest = [i for i in rest if i not in eager]
    for indices, scalar_tail in ((whole, False), (rest, True)):
        if indices:
            picked = lists if len(indices) == len(params) else pick_lists(lists, indices)
            fused_apply(update, picked, shared, **constants, scalar_tail=scalar_tail)


def pick_lists(lists: tuple[list[Tensor], ...], indices: list[int]) -> tuple[list[Tensor], ...]:
    """The entries at ``indices`` of each aligned list (params, grads, states, ...)."""
    return tuple([items[i] for i in indices] for items in lists)


def _apply_chunk(
    update: Callable[..., None],
    lists: tuple[list[Tensor], ...],
    written: tuple[int, ...],
    chunk: list[int],
    shared: tuple[Any, ...],
    constants: dict[str, Any],
) -> None:
    picked = [[items[i] for i in chunk] for items in lists]
    flats = [torch.cat([t.reshape(-1) for t in items]) for items in picked]
    update(*flats, *shared, **constants)
    numels = [t.numel() for t in picked[0]]
    for position in written:
        targets = picked[position]
        chunks = flats[position].split(numels)
        torch._foreach_copy_(targets, [c.view(t.shape) for c, t in zip(chunks, targets)])
