"""MindSpore ``SGD`` kernel: first step ``accum = g``, then ``accum = m * accum + (1 - dampening) * g``.

``d = g + m * accum`` (Nesterov) or ``accum``; ``w -= lr * d``. ``stat`` (1 until the first update)
marks the first step per element. With ``momentum == 0`` the buffers are never touched.

On the CPU, by default (``fused`` and ``foreach`` unset: :func:`sgd_native_or_reference`) and
with ``fused=True`` (:func:`sgd_fused`), plain contiguous float32 tensors take ``sgd_native.c``
(built on first use, :mod:`msoptim.kernels._native`): the same float32 operations in one pass per
parameter, all of a step's parameters (of every group) in one call that shares them among torch's
threads. The other tensors take the reference by default and compiled kernels with
``fused=True``.

Precision: MindSpore's CPU kernel works in float32 throughout: ``dampening`` is a float32
attribute, ``1 - dampening`` a float32 value, and ``m * accum`` and ``(1 - dampening) * g`` are
rounded before their sum (no fused multiply-add), which every recorded SGD run matches bit for bit.
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch
from torch import Tensor

from msoptim.kernels import _native, _triton, pick_lists
from msoptim.kernels._exact import float32_constant
from msoptim.kernels._fused import fused_apply

__all__ = [
    "sgd_foreach",
    "sgd_fused",
    "sgd_native_or_reference",
    "sgd_reference",
    "sgd_steps_together",
    "sgd_update",
]


def _keep(dampening: float) -> float:
    """``1 - dampening`` as the kernel's float32 arithmetic gives it."""
    return float32_constant(1.0 - float32_constant(dampening))


def _dampened_accum(accum: Tensor, grad: Tensor, momentum: float, dampening: float) -> Tensor:
    if dampening == 0.0:
        return accum * momentum + grad
    return accum * momentum + grad * _keep(dampening)


def sgd_update(
    param: Tensor,
    grad: Tensor,
    accum: Tensor,
    stat: Tensor,
    lr: Tensor,
    *,
    momentum: float,
    dampening: float,
    nesterov: bool,
) -> None:
    """One tensor's update, in the CPU kernel's op order."""
    if momentum > 0:
        updated = _dampened_accum(accum, grad, momentum, dampening)
        accum.copy_(torch.where(stat > 0, grad, updated))
        stat.zero_()
        direction = grad + accum * momentum if nesterov else accum
    else:
        direction = grad
    param.sub_(direction * lr)


def sgd_reference(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    stats: list[Tensor],
    *,
    lr: Tensor,
    momentum: float,
    dampening: float,
    nesterov: bool,
) -> None:
    """Per-tensor loop of :func:`sgd_update` (the ground truth)."""
    for param, grad, accum, stat in zip(params, grads, accums, stats):
        sgd_update(
            param, grad, accum, stat, lr, momentum=momentum, dampening=dampening, nesterov=nesterov
        )


def sgd_fused(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    stats: list[Tensor],
    *,
    lr: Tensor,
    momentum: float,
    dampening: float,
    nesterov: bool,
) -> None:
    """:func:`sgd_update`, bit for bit: on the CPU the C kernel (``sgd_native.c``) for plain
    contiguous float32 tensors, :func:`sgd_update` compiled for the others (see
    :mod:`msoptim.kernels._fused`); on CUDA one multi-tensor launch
    (:mod:`msoptim.kernels._triton`)."""
    lists = (params, grads, accums, stats)
    hyper = {"momentum": momentum, "dampening": dampening, "nesterov": nesterov}
    rest = _step_native(lists, lr=lr, **hyper)
    if not rest:
        return
    if len(rest) < len(params):
        lists = pick_lists(lists, rest)
        params, grads, accums, stats = lists
    if _triton.available(params) and _triton.sgd(
        lists, lr, momentum=momentum, keep=_keep(dampening), nesterov=nesterov
    ):
        return
    fused_apply(
        sgd_update,
        (params, grads, accums, stats),
        (lr,),
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
    )


def sgd_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    stats: list[Tensor],
    *,
    lr: Tensor,
    momentum: float,
    dampening: float,
    nesterov: bool,
) -> None:
    """Foreach form of :func:`sgd_reference` (bit-identical)."""
    if momentum > 0:
        scaled = torch._foreach_mul(accums, momentum)
        if dampening == 0.0:
            torch._foreach_add_(scaled, grads)
        else:
            torch._foreach_add_(scaled, torch._foreach_mul(grads, _keep(dampening)))
        for accum, stat, grad, new in zip(accums, stats, grads, scaled):
            torch.where(stat > 0, grad, new, out=accum)
        torch._foreach_zero_(stats)
        if nesterov:
            directions = torch._foreach_mul(accums, momentum)
            torch._foreach_add_(directions, grads)
        else:
            directions = accums
    else:
        directions = grads
    torch._foreach_sub_(params, torch._foreach_mul(directions, lr))


def sgd_native_or_reference(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    stats: list[Tensor],
    **options: Any,
) -> None:
    """SGD's default on CPU (``fused`` and ``foreach`` unset): the C kernel where it runs (plain
    contiguous float32 tensors, a C compiler: nothing to compile per process), the reference
    elsewhere; the reference's bits either way. ``options``: :func:`sgd_reference`'s."""
    lists = (params, grads, accums, stats)
    rest = _step_native(lists, **options)
    if rest:
        sgd_reference(*pick_lists(lists, rest), **options)


def sgd_steps_together(
    lists: tuple[list[Tensor], ...],
    lrs: list[Tensor],
    *,
    momentum: float,
    dampening: float,
    nesterov: bool,
    kept: dict[Any, _native.KeptTable] | None = None,
) -> list[int]:
    """The parameters of several groups with the same hyperparameters in one call: of the C
    kernel on the CPU (which reads the buffers only with momentum: they may be empty lists
    then), of the multi-tensor kernel on CUDA (``lrs``: each parameter's group lr; ``lists``:
    :func:`sgd_reference`'s four). Returns the positions it could not take, for their groups'
    own kernels. ``kept``: the optimizer's kept tables (CPU,
    :class:`~msoptim.kernels._native.KeptTable`), or None."""
    if lists[0] and lists[0][0].is_cuda:
        hyper = {"momentum": momentum, "keep": _keep(dampening), "nesterov": nesterov}
        return _triton.steps_together(lambda: _triton.sgd(lists, lrs, **hyper), lists[0])
    hyper = {"momentum": momentum, "dampening": dampening, "nesterov": nesterov}
    return _step_native(lists, lr=lrs, **hyper, kept=kept)


#: Extra compiler flags of the C kernel (tests build a variant that splits small tensors too).
NATIVE_FLAGS: tuple[str, ...] = ()
#: Run the C kernel's threads as torch's OpenMP workers where torch has one (tests also run its
#: own threads).
USE_OPENMP = True


def _load_native() -> Any:
    """The C kernel's step function, or None (no compiler, or a failed build)."""
    return _native.load_step("sgd_native", "msoptim_sgd_step", NATIVE_FLAGS)


def _step_native(
    lists: tuple[list[Tensor], ...],
    *,
    lr: Tensor | list[Tensor],
    momentum: float,
    dampening: float,
    nesterov: bool,
    kept: dict[Any, _native.KeptTable] | None = None,
) -> list[int]:
    """Step the parameters the C kernel takes (plain contiguous float32 CPU tensors with their
    buffers, plain float32 lrs: :mod:`msoptim.kernels._native`); return the positions of the
    others. ``lr``: the group's, or one per parameter (several groups in one call). None is
    taken while dynamo traces or when the kernel cannot be built."""
    params = lists[0]
    if not _native.can_step(params, _load_native):
        return list(range(len(params)))
    lrs = lr if isinstance(lr, list) else [lr] * len(params)
    hyper = {"momentum": momentum, "dampening": dampening, "nesterov": nesterov}
    # Without momentum the kernel reads only w, g and the lr: the buffers are neither checked
    # nor listed (two fewer passes over cold tensors a step).
    walked = lists if momentum > 0 else lists[:2]
    return _native.step_where_possible(
        (*walked, lrs),
        lambda picked, _, tables: _native_step(picked, tables, **hyper),
        walked=len(walked),
        scalars=len(walked),
        kept=kept,
        site=("sgd", momentum, dampening, nesterov),
    )


def _native_step(
    lists: tuple[list[Tensor], ...],
    tables: _native.TableBuilder,
    *,
    momentum: float,
    dampening: float,
    nesterov: bool,
) -> None:
    """One pass per parameter (``sgd_native.c``; the reference's bits). ``lists``: parameters,
    gradients, accumulators and first-step flags (with momentum) and each parameter's lr;
    ``tables``: builds the address table (:data:`~msoptim.kernels._native.TableBuilder`)."""
    accumulate = momentum > 0
    if accumulate:
        params, grads, accums, stats, lrs = lists
        table, lengths, order = tables([params, grads, accums, stats, lrs])
        written = [*params, *accums, *stats]
    else:
        params, grads, lrs = lists
        table, lengths, order = tables([params, grads, None, None, lrs])
        written = list(params)
    # The kernel writes through raw pointers: bump the version counters as in-place ops would.
    torch._C._increment_version(written)
    _load_native()(
        ctypes.c_void_p(table.ctypes.data),
        ctypes.c_void_p(lengths.ctypes.data),
        ctypes.c_int64(len(order)),
        ctypes.c_float(momentum),
        ctypes.c_float(_keep(dampening)),
        ctypes.c_int(int(accumulate)),
        ctypes.c_int(int(dampening != 0.0)),
        ctypes.c_int(int(nesterov)),
        *_native.team_arguments(USE_OPENMP),
    )
