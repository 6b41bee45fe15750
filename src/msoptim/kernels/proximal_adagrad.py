"""MindSpore ``ApplyProximalAdagrad``: Adagrad with an l1/l2 proximal step at the adaptive lr::

    acc  += g*g
    lr_t  = lr / sqrt(acc)
    prox  = w - lr_t * g
    w     = sign(prox) * max(|prox| - lr_t * l1, 0) / (1 + lr_t * l2)     (w = prox / (1 + lr_t * l2) if l1 == 0)

Precision: the arithmetic of MindSpore's vectorized CPU kernel, which is compiled with fused
multiply-adds: ``acc + g*g``, ``w - g*lr_t``, ``1 + l2*lr_t`` and ``|prox| - lr_t*l1`` are each one
IEEE fused multiply-add (rounded once: :func:`~msoptim.kernels.adam.fused_multiply_add` eagerly, a
hardware FMA in a compiled kernel), the rest is float32 with a correctly rounded square root.
Matched against the MindSpore 2.10 CPU recordings (accumulator bit for bit, parameters within 2
ulp): MindSpore also runs a scalar tail of up to 3 elements per tensor, and some whole small
tensors depending on its thread split, in mixed float/double arithmetic; msoptim uses the vector
arithmetic for every element.
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels import apply_concatenated
from msoptim.kernels._exact import exact_sqrt, float32_constant
from msoptim.kernels._fused import fused_apply
from msoptim.kernels.adam import fused_multiply_add, local_tensors

__all__ = [
    "proximal_adagrad_foreach",
    "proximal_adagrad_fused",
    "proximal_adagrad_reference",
    "proximal_adagrad_update",
]


def _fma(a: Tensor, b: Tensor | float, c: Tensor | float) -> Tensor:
    """``a * b + c`` rounded once to ``a``'s dtype (an IEEE fused multiply-add)."""
    if not isinstance(c, Tensor):
        c = torch.full((), c, dtype=a.dtype, device=a.device)
    return fused_multiply_add(a, b, c)


def _prox(param: Tensor, grad: Tensor, lr_t: Tensor, l1: float, l2: float) -> Tensor:
    proximal = _fma(-grad, lr_t, param)
    denominator = _fma(lr_t, l2, 1.0)
    if l1 > 0:
        # The kernel's max(x, 0) and sign(x) give 0 for NaN (a zero gradient with accum 0
        # makes ``0 * inf``): that element becomes 0, where torch's clamp and sign keep the NaN.
        shrunk = _fma(-lr_t, l1, torch.abs(proximal))
        shrunk = torch.where(shrunk > 0, shrunk, 0.0)
        sign = (proximal > 0).to(proximal.dtype) - (proximal < 0).to(proximal.dtype)
        return (shrunk / denominator) * sign
    return proximal / denominator


def proximal_adagrad_update(
    param: Tensor, grad: Tensor, accum: Tensor, lr: Tensor, *, l1: float, l2: float
) -> None:
    """One tensor's update in MindSpore's op order (``l1``, ``l2`` as float32 values)."""
    accum.copy_(_fma(grad, grad, accum))
    lr_t = lr.to(accum.dtype) / exact_sqrt(accum)
    param.copy_(_prox(param, grad, lr_t, l1, l2))


def proximal_adagrad_reference(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    *,
    lr: Tensor,
    l1: float,
    l2: float,
) -> None:
    """Per-tensor loop of :func:`proximal_adagrad_update` (the ground truth).

    Element-wise, so a DTensor's local shard is updated directly (the exact FMA emulation repairs
    elements through a flat view, which a DTensor has no rule for).
    """
    params, grads, accums = (local_tensors(t) for t in (params, grads, accums))
    l1, l2 = float32_constant(l1), float32_constant(l2)
    for param, grad, accum in zip(params, grads, accums):
        proximal_adagrad_update(param, grad, accum, lr, l1=l1, l2=l2)


def proximal_adagrad_fused(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    *,
    lr: Tensor,
    l1: float,
    l2: float,
) -> None:
    """:func:`proximal_adagrad_update` compiled (see :mod:`msoptim.kernels._fused`)."""
    fused_apply(
        proximal_adagrad_update,
        (params, grads, accums),
        (lr,),
        l1=float32_constant(l1),
        l2=float32_constant(l2),
    )


def proximal_adagrad_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    *,
    lr: Tensor,
    l1: float,
    l2: float,
) -> None:
    """:func:`proximal_adagrad_reference` once over the concatenated tensors of each dtype
    (element-wise arithmetic: bit-identical)."""
    params, grads, accums = (local_tensors(t) for t in (params, grads, accums))
    l1, l2 = float32_constant(l1), float32_constant(l2)
    apply_concatenated(proximal_adagrad_update, (params, grads, accums), (0, 2), lr, l1=l1, l2=l2)
