"""MindSpore ``ApplyMomentum``: ``v = momentum * v + g``; ``w -= lr * v`` (Nesterov: ``lr * (g + momentum * v)``)."""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels import _triton
from msoptim.kernels._fused import fused_apply

__all__ = ["momentum_foreach", "momentum_fused", "momentum_reference", "momentum_update"]


def momentum_update(
    param: Tensor, grad: Tensor, moment: Tensor, lr: Tensor, *, momentum: float, nesterov: bool
) -> None:
    """One tensor's update; every op rounds to the parameter dtype, as MindSpore's float32 kernel."""
    moment.mul_(momentum).add_(grad)
    if nesterov:
        param.sub_((grad + moment * momentum) * lr)
    else:
        param.sub_(moment * lr)


def momentum_reference(
    params: list[Tensor],
    grads: list[Tensor],
    moments: list[Tensor],
    *,
    lr: Tensor,
    momentum: float,
    nesterov: bool,
) -> None:
    """Per-tensor loop of :func:`momentum_update` (the ground truth)."""
    for param, grad, moment in zip(params, grads, moments):
        momentum_update(param, grad, moment, lr, momentum=momentum, nesterov=nesterov)


def momentum_fused(
    params: list[Tensor],
    grads: list[Tensor],
    moments: list[Tensor],
    *,
    lr: Tensor,
    momentum: float,
    nesterov: bool,
) -> None:
    """:func:`momentum_update` compiled (see :mod:`msoptim.kernels._fused`; bit-identical); on
    CUDA one multi-tensor launch (:mod:`msoptim.kernels._triton`)."""
    lists = (params, grads, moments)
    if _triton.available(params) and _triton.momentum(
        lists, lr, momentum=momentum, nesterov=nesterov
    ):
        return
    fused_apply(
        momentum_update, (params, grads, moments), (lr,), momentum=momentum, nesterov=nesterov
    )


def momentum_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    moments: list[Tensor],
    *,
    lr: Tensor,
    momentum: float,
    nesterov: bool,
) -> None:
    """The reference arithmetic with ``torch._foreach_*`` ops (bit-identical)."""
    torch._foreach_mul_(moments, momentum)
    torch._foreach_add_(moments, grads)
    if nesterov:
        steps = torch._foreach_mul(moments, momentum)
        torch._foreach_add_(steps, grads)
        torch._foreach_mul_(steps, lr)
    else:
        steps = torch._foreach_mul(moments, lr)
    torch._foreach_sub_(params, steps)
