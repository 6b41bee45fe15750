"""MindSpore ``ApplyAdaMax`` kernel, plain float32 in this op order.

.. code-block:: text

    β1ᵗ ← β1ᵗ · β1                       (the power accumulator, float32, advanced before use)
    m   ← β1·m + (1 − β1)·g
    u   ← max(β2·u, |g|)
    w   ← w − (lr / (1 − β1ᵗ)) · (m / (u + ε))

ε is added after the max (torch's Adamax puts it inside: ``max(β2·u, |g| + ε)``). Matched bit for
bit to MindSpore 2.10 CPU recordings (no fused multiply-adds in this kernel).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from msoptim.kernels._fused import fused_apply
from msoptim.kernels.adam import local_tensors

__all__ = ["adamax_foreach", "adamax_fused", "adamax_reference", "adamax_update"]


def _one_minus(beta: float) -> float:
    """``1 − β`` in float32 (β is a float32 value)."""
    return float(np.float32(1.0) - np.float32(beta))


def adamax_update(
    param: Tensor,
    grad: Tensor,
    m: Tensor,
    u: Tensor,
    power: Tensor,
    lr: Tensor,
    *,
    beta1: float,
    beta1c: float,
    beta2: float,
    eps: float,
) -> None:
    """One parameter's step; advances its ``β1ᵗ`` accumulator first (``beta1c`` = ``1 − β1``)."""
    power.mul_(beta1)
    lr_t = (lr / (1.0 - power)).reshape(())
    m.mul_(beta1).add_(grad * beta1c)
    u.copy_(torch.maximum(u * beta2, grad.abs()))
    param.sub_(lr_t * (m / (u + eps)))


def adamax_reference(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    beta1_powers: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """Per-tensor loop of :func:`adamax_update` (the ground truth).

    Args:
        params, grads, moment1, moment2: aligned lists (``moment2`` is the infinity norm ``u``);
            updated in place.
        beta1_powers: each parameter's float32 ``β1ᵗ`` accumulator (shape ``(1,)``), advanced in
            place before use.
        lr: the group's lr, a 0-d float32 tensor.
        beta1, beta2, eps: float32 values as Python floats.
    """
    params, grads, moment1, moment2 = (local_tensors(t) for t in (params, grads, moment1, moment2))
    beta1c = _one_minus(beta1)
    for param, grad, m, u, power in zip(params, grads, moment1, moment2, beta1_powers):
        adamax_update(
            param, grad, m, u, power, lr, beta1=beta1, beta1c=beta1c, beta2=beta2, eps=eps
        )


def adamax_fused(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    beta1_powers: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """:func:`adamax_update` compiled (see :mod:`msoptim.kernels._fused`; bit-identical)."""
    params, grads, moment1, moment2 = (local_tensors(t) for t in (params, grads, moment1, moment2))
    fused_apply(
        adamax_update,
        (params, grads, moment1, moment2),
        (lr,),
        per_parameter=(beta1_powers,),
        beta1=beta1,
        beta1c=_one_minus(beta1),
        beta2=beta2,
        eps=eps,
    )


def adamax_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    beta1_powers: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """The reference arithmetic with ``torch._foreach_*`` ops (bit-identical)."""
    params, grads, moment1, moment2 = (local_tensors(t) for t in (params, grads, moment1, moment2))
    beta1c = _one_minus(beta1)
    torch._foreach_mul_(beta1_powers, beta1)
    denominators = torch._foreach_neg(beta1_powers)
    torch._foreach_add_(denominators, 1.0)
    lr_ts = torch._foreach_div([lr] * len(params), denominators)
    torch._foreach_mul_(moment1, beta1)
    torch._foreach_add_(moment1, torch._foreach_mul(grads, beta1c))
    torch._foreach_mul_(moment2, beta2)
    torch._foreach_maximum_(moment2, torch._foreach_abs(grads))
    steps = torch._foreach_div(moment1, torch._foreach_add(moment2, eps))
    torch._foreach_mul_(steps, [lr_t.reshape(()) for lr_t in lr_ts])
    torch._foreach_sub_(params, steps)
