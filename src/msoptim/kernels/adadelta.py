"""MindSpore ``ApplyAdadelta``::

    acc     = rho * acc + (1 - rho) * g*g
    delta   = sqrt(acc_upd + eps) * (g / sqrt(acc + eps))
    acc_upd = rho * acc_upd + (1 - rho) * delta*delta
    w      -= lr * delta

Precision (bit for bit against the MindSpore 2.10 CPU recordings): the kernel's ``1.0 - rho`` is a
C++ double, so each accumulator update ``float(rho * acc) + (1.0 - rho) * float(g * g)`` is evaluated
in double and rounded to float32 once; everything else is float32, one rounding per operation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels._exact import exact_sqrt, float32_constant, foreach_exact_sqrt
from msoptim.kernels._fused import fused_apply

__all__ = ["adadelta_foreach", "adadelta_fused", "adadelta_reference", "adadelta_update"]


def _decayed(old: Tensor, square: Tensor, rho: float, rate: float) -> Tensor:
    """``float(rho * old) + rate * float(square)`` in double, rounded once to ``old``'s dtype."""
    return ((old * rho).double() + square.double() * rate).to(old.dtype)


def adadelta_update(
    param: Tensor,
    grad: Tensor,
    accum: Tensor,
    accum_update: Tensor,
    lr: Tensor,
    *,
    rho: float,
    rate: float,
    epsilon: float,
) -> None:
    """One tensor's update in MindSpore's op order (``rho``, ``epsilon`` float32; ``rate = 1 - rho``)."""
    accum.copy_(_decayed(accum, grad * grad, rho, rate))
    delta = exact_sqrt(accum_update + epsilon) * (grad / exact_sqrt(accum + epsilon))
    accum_update.copy_(_decayed(accum_update, delta * delta, rho, rate))
    param.sub_(delta * lr.to(delta.dtype))


def _constants(rho: float, epsilon: float) -> dict[str, float]:
    rho = float32_constant(rho)
    return {"rho": rho, "rate": 1.0 - rho, "epsilon": float32_constant(epsilon)}


def adadelta_reference(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    accum_updates: list[Tensor],
    *,
    lr: Tensor,
    rho: float,
    epsilon: float,
) -> None:
    """Per-tensor loop of :func:`adadelta_update` (the ground truth)."""
    constants = _constants(rho, epsilon)
    for param, grad, accum, accum_update in zip(params, grads, accums, accum_updates):
        adadelta_update(param, grad, accum, accum_update, lr, **constants)


def adadelta_fused(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    accum_updates: list[Tensor],
    *,
    lr: Tensor,
    rho: float,
    epsilon: float,
) -> None:
    """:func:`adadelta_update` compiled (see :mod:`msoptim.kernels._fused`; bit-identical)."""
    constants = _constants(rho, epsilon)
    fused_apply(adadelta_update, (params, grads, accums, accum_updates), (lr,), **constants)


def adadelta_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    accum_updates: list[Tensor],
    *,
    lr: Tensor,
    rho: float,
    epsilon: float,
) -> None:
    """:func:`adadelta_reference` with ``torch._foreach_*`` ops (bit-identical)."""
    rho, epsilon = float32_constant(rho), float32_constant(epsilon)
    rate = 1.0 - rho

    def decay_(olds: list[Tensor], squares: list[Tensor]) -> None:
        kept = [t.double() for t in torch._foreach_mul(olds, rho)]
        torch._foreach_add_(kept, torch._foreach_mul([s.double() for s in squares], rate))
        for old, value in zip(olds, kept):
            old.copy_(value)

    decay_(accums, torch._foreach_mul(grads, grads))
    deltas = torch._foreach_div(grads, foreach_exact_sqrt(torch._foreach_add(accums, epsilon)))
    scales = foreach_exact_sqrt(torch._foreach_add(accum_updates, epsilon))
    deltas = torch._foreach_mul(scales, deltas)
    decay_(accum_updates, torch._foreach_mul(deltas, deltas))
    torch._foreach_sub_(params, torch._foreach_mul(deltas, [lr.to(d.dtype) for d in deltas]))
