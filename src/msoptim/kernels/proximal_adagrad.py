"""MindSpore ``ApplyProximalAdagrad``: Adagrad with an l1/l2 proximal step at the adaptive lr::

    acc  += g*g
    lr_t  = lr / sqrt(acc)
    prox  = w - lr_t * g
    w     = sign(prox) * max(|prox| - lr_t * l1, 0) / (1 + lr_t * l2)     (w = prox / (1 + lr_t * l2) if l1 == 0)

Precision: the arithmetic of MindSpore's vectorized CPU kernel, which is compiled with fused
multiply-adds: ``acc + g*g``, ``w - g*lr_t``, ``1 + l2*lr_t`` and ``|prox| - lr_t*l1`` are each rounded
once (evaluated in float64, where the float32 product is exact, and rounded once), the rest is
float32 with a correctly rounded square root. Matched against the MindSpore 2.10 CPU recordings
(accumulator bit for bit, parameters within 2 ulp): MindSpore also runs a scalar tail of up to 3
elements per tensor, and some whole small tensors depending on its thread split, in mixed
float/double arithmetic; msoptim uses the vector arithmetic for every element.
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels._exact import exact_sqrt, float32_constant, foreach_exact_sqrt
from msoptim.kernels._fused import fused_apply

__all__ = [
    "proximal_adagrad_foreach",
    "proximal_adagrad_fused",
    "proximal_adagrad_reference",
    "proximal_adagrad_update",
]


def _fma(a: Tensor, b: Tensor | float, c: Tensor | float) -> Tensor:
    """``a * b + c`` rounded once to ``a``'s dtype (a float32 product is exact in float64)."""
    b64 = b.double() if isinstance(b, Tensor) else b
    c64 = c.double() if isinstance(c, Tensor) else c
    return (a.double() * b64 + c64).to(a.dtype)


def _prox(param: Tensor, grad: Tensor, lr_t: Tensor, l1: float, l2: float) -> Tensor:
    proximal = _fma(-grad, lr_t, param)
    denominator = _fma(lr_t, l2, 1.0)
    if l1 > 0:
        shrunk = torch.clamp_min(_fma(-lr_t, l1, torch.abs(proximal)), 0.0)
        return (shrunk / denominator) * torch.sign(proximal)
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
    """Per-tensor loop of :func:`proximal_adagrad_update` (the ground truth)."""
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
    """:func:`proximal_adagrad_reference` with ``torch._foreach_*`` ops (bit-identical)."""
    l1, l2 = float32_constant(l1), float32_constant(l2)
    grads64 = [grad.double() for grad in grads]
    sums = torch._foreach_mul(grads64, grads64)
    torch._foreach_add_(sums, [accum.double() for accum in accums])
    for accum, value in zip(accums, sums):
        accum.copy_(value)
    lr_ts = [lr.to(root.dtype) / root for root in foreach_exact_sqrt(accums)]
    lr_ts64 = [lr_t.double() for lr_t in lr_ts]
    proximals = torch._foreach_mul(torch._foreach_neg(grads64), lr_ts64)
    torch._foreach_add_(proximals, [param.double() for param in params])
    proximals = [p.to(param.dtype) for p, param in zip(proximals, params)]
    denominators = torch._foreach_mul(lr_ts64, l2)
    torch._foreach_add_(denominators, 1.0)
    denominators = [d.to(param.dtype) for d, param in zip(denominators, params)]
    if l1 > 0:
        shrunk = torch._foreach_mul(torch._foreach_neg(lr_ts64), l1)
        torch._foreach_add_(shrunk, [p.double() for p in torch._foreach_abs(proximals)])
        shrunk = torch._foreach_clamp_min([s.to(p.dtype) for s, p in zip(shrunk, params)], 0.0)
        torch._foreach_div_(shrunk, denominators)
        torch._foreach_mul_(shrunk, torch._foreach_sign(proximals))
        values = shrunk
    else:
        values = torch._foreach_div(proximals, denominators)
    for param, value in zip(params, values):
        param.copy_(value)
