"""MindSpore ``ApplyAdagrad``: ``acc += g*g`` (if ``update_slots``); ``w -= lr * g / sqrt(acc)``.

Op order of MindSpore's float32 CPU kernel: ``w - (g * lr) * (1 / sqrt(acc + 1e-8))``, one rounding
per operation. The ``1e-8`` is the kernel's own (``nn.Adagrad`` has no epsilon argument and the
stored ``acc`` does not include it): it keeps ``accum=0.0`` with a zero gradient finite, and moves
an update only where ``acc`` is small. Matched bit for bit against MindSpore 2.10 recordings,
including ``accum=0.0`` runs (``tools/record_golden_optim.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels import _triton
from msoptim.kernels._exact import (
    exact_reciprocal,
    exact_sqrt,
    float32_constant,
    foreach_exact_sqrt,
)
from msoptim.kernels._fused import fused_apply

__all__ = ["EPSILON", "adagrad_foreach", "adagrad_fused", "adagrad_reference", "adagrad_update"]

#: The CPU kernel's hidden ``1e-8`` under the square root, as a float32 value.
EPSILON = float32_constant(1e-8)


def adagrad_update(
    param: Tensor, grad: Tensor, accum: Tensor, lr: Tensor, *, update_slots: bool
) -> None:
    """One tensor's update in MindSpore's float32 op order."""
    if update_slots:
        accum.add_(grad * grad)
    param.sub_((grad * lr.to(grad.dtype)) * exact_reciprocal(exact_sqrt(accum + EPSILON)))


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
    roots = foreach_exact_sqrt(torch._foreach_add(accums, EPSILON))
    torch._foreach_mul_(steps, torch._foreach_reciprocal(roots))
    torch._foreach_sub_(params, steps)
