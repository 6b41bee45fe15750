"""MindSpore ``ApplyAdagrad``: ``acc += g*g`` (if ``update_slots``); ``w -= lr * g / sqrt(acc)``.

There is no epsilon. Op order of MindSpore's float32 CPU kernel: ``w - (lr * g) * (1 / sqrt(acc))``,
one rounding per operation (matched bit for bit against the MindSpore 2.10 recordings, apart from a
rare last-bit difference in MindSpore's own ``1/sqrt``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels import _triton
from msoptim.kernels._exact import exact_reciprocal, exact_sqrt, foreach_exact_sqrt
from msoptim.kernels._fused import fused_apply

__all__ = ["adagrad_foreach", "adagrad_fused", "adagrad_reference", "adagrad_update"]


def adagrad_update(
    param: Tensor, grad: Tensor, accum: Tensor, lr: Tensor, *, update_slots: bool
) -> None:
    """One tensor's update in MindSpore's float32 op order."""
    if update_slots:
        accum.add_(grad * grad)
    param.sub_((grad * lr.to(grad.dtype)) * exact_reciprocal(exact_sqrt(accum)))


def adagrad_reference(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    *,
    lr: Tensor,
    update_slots: bool,
) -> None:
    """Per-tensor loop of :func:`adagrad_update` (the ground truth)."""
    for param, grad, accum in zip(params, grads, accums):
        adagrad_update(param, grad, accum, lr, update_slots=update_slots)


def adagrad_fused(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    *,
    lr: Tensor,
    update_slots: bool,
) -> None:
    """:func:`adagrad_update` compiled (see :mod:`msoptim.kernels._fused`; bit-identical); on
    CUDA one multi-tensor launch (:mod:`msoptim.kernels._triton`)."""
    lists = (params, grads, accums)
    if _triton.available(params) and _triton.adagrad(lists, lr, update_slots=update_slots):
        return
    fused_apply(adagrad_update, (params, grads, accums), (lr,), update_slots=update_slots)


def adagrad_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    *,
    lr: Tensor,
    update_slots: bool,
) -> None:
    """:func:`adagrad_reference` with ``torch._foreach_*`` ops (bit-identical)."""
    if update_slots:
        torch._foreach_add_(accums, torch._foreach_mul(grads, grads))
    steps = torch._foreach_mul(grads, [lr.to(grad.dtype) for grad in grads])
    torch._foreach_mul_(steps, torch._foreach_reciprocal(foreach_exact_sqrt(accums)))
    torch._foreach_sub_(params, steps)
