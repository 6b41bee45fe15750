"""MindSpore ``SGD`` kernel: first step ``accum = g``, then ``accum = m * accum + (1 - dampening) * g``.

``d = g + m * accum`` (Nesterov) or ``accum``; ``w -= lr * d``. ``stat`` (1 until the first update)
marks the first step per element. With ``momentum == 0`` the buffers are never touched.

Precision: MindSpore's CPU kernel works in float32 throughout: ``dampening`` is a float32
attribute, ``1 - dampening`` a float32 value, and ``m * accum`` and ``(1 - dampening) * g`` are
rounded before their sum (no fused multiply-add), which every recorded SGD run matches bit for bit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels import _triton
from msoptim.kernels._exact import float32_constant
from msoptim.kernels._fused import fused_apply

__all__ = ["sgd_foreach", "sgd_fused", "sgd_reference", "sgd_update"]


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
    """:func:`sgd_update` compiled (see :mod:`msoptim.kernels._fused`; bit-identical); on CUDA
    one multi-tensor launch (:mod:`msoptim.kernels._triton`)."""
    lists = (params, grads, accums, stats)
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
