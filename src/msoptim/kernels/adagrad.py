"""MindSpore ``ApplyAdagrad``: ``acc += g*g`` (if ``update_slots``); ``w -= lr * g / sqrt(acc)``.

There is no epsilon. Op order of MindSpore's float32 CPU kernel: ``w - (lr * g) * (1 / sqrt(acc))``,
one rounding per operation (matched bit for bit against the MindSpore 2.10 recordings, apart from a
rare last-bit difference in MindSpore's own ``1/sqrt``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["adagrad_foreach", "adagrad_reference"]


def _sqrt(x: Tensor) -> Tensor:
    """Correctly rounded square root: torch's CPU ``sqrt`` is not (up to 1 ulp off); a float64
    square root rounded to ``x``'s dtype is (CPU and CUDA alike)."""
    return torch.sqrt(x.double()).to(x.dtype)


def _foreach_sqrt(xs: list[Tensor]) -> list[Tensor]:
    return [_sqrt(x) for x in xs]


def adagrad_reference(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    *,
    lr: Tensor,
    update_slots: bool,
) -> None:
    """Per-tensor loop in MindSpore's float32 op order (the ground truth)."""
    for param, grad, accum in zip(params, grads, accums):
        if update_slots:
            accum.add_(grad * grad)
        param.sub_((grad * lr.to(grad.dtype)) * torch.reciprocal(_sqrt(accum)))


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
    torch._foreach_mul_(steps, torch._foreach_reciprocal(_foreach_sqrt(accums)))
    torch._foreach_sub_(params, steps)
