"""MindSpore ``nn.Rprop`` update, per parameter (``t`` = ``global_step`` after the increment)::

    step   = lr (every element)   if t == 1,   else step_size
    s      = sign(g * prev)  ->  etaplus where s > 0, etaminus where s < 0, 1 where s == 0
    step   = clip(step * s, step_min, step_max)
    g'     = 0 where s == etaminus, else g
    w     -= sign(g') * step
    prev   = g';  step_size = step

float32 tensor ops in MindSpore's order (one rounding each; float16/bfloat16 parameters are computed
in float32 and cast back): bit for bit against the MindSpore 2.10 CPU recordings. The ``t == 1`` initialisation is a tensor op (``torch.where``), so a step has no host
synchronisation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels._exact import float32_constant
from msoptim.kernels._fused import fused_apply

__all__ = ["rprop_foreach", "rprop_fused", "rprop_reference", "rprop_update"]


def _compute(t: Tensor) -> Tensor:
    """MindSpore's ``cast(x, float32)`` for half types; float32 (and float64) stay as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _factors(product: Tensor, etaminus: float, etaplus: float) -> Tensor:
    """``sign(g * prev)`` mapped to the step-size factors (etaplus, etaminus or 1)."""
    signs = torch.sign(product)
    signs = torch.where(signs > 0, etaplus, signs)
    signs = torch.where(signs < 0, etaminus, signs)
    return torch.where(signs == 0, 1.0, signs)


def rprop_update(
    param: Tensor,
    grad: Tensor,
    prev: Tensor,
    step_size: Tensor,
    lr: Tensor,
    first: Tensor,
    *,
    etaminus: float,
    etaplus: float,
    low: float,
    high: float,
) -> None:
    """One tensor's update (``first``: ``step == 1``; the constants as float32 values)."""
    size = torch.where(first, lr, _compute(step_size))
    grad = _compute(grad)
    factors = _factors(grad * prev, etaminus, etaplus)
    size = torch.clamp(size * factors, low, high)
    kept = torch.where(factors == etaminus, 0.0, grad)
    param.copy_(_compute(param) - torch.sign(kept) * size)
    prev.copy_(kept)
    step_size.copy_(size)


def _constants(
    etaminus: float, etaplus: float, step_size_min: float, step_size_max: float
) -> dict[str, float]:
    return {
        "etaminus": float32_constant(etaminus),
        "etaplus": float32_constant(etaplus),
        "low": float32_constant(step_size_min),
        "high": float32_constant(step_size_max),
    }


def rprop_reference(
    params: list[Tensor],
    grads: list[Tensor],
    prevs: list[Tensor],
    step_sizes: list[Tensor],
    *,
    lr: Tensor,
    step: Tensor,
    etaminus: float,
    etaplus: float,
    step_size_min: float,
    step_size_max: float,
) -> None:
    """Per-tensor loop of :func:`rprop_update` (the ground truth).

    ``step`` is the 0-d integer ``global_step`` after this step's increment.
    """
    constants = _constants(etaminus, etaplus, step_size_min, step_size_max)
    first = step == 1
    for param, grad, prev, step_size in zip(params, grads, prevs, step_sizes):
        rprop_update(param, grad, prev, step_size, lr, first, **constants)


def rprop_fused(
    params: list[Tensor],
    grads: list[Tensor],
    prevs: list[Tensor],
    step_sizes: list[Tensor],
    *,
    lr: Tensor,
    step: Tensor,
    etaminus: float,
    etaplus: float,
    step_size_min: float,
    step_size_max: float,
) -> None:
    """:func:`rprop_update` compiled (see :mod:`msoptim.kernels._fused`; bit-identical)."""
    constants = _constants(etaminus, etaplus, step_size_min, step_size_max)
    fused_apply(rprop_update, (params, grads, prevs, step_sizes), (lr, step == 1), **constants)


def rprop_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    prevs: list[Tensor],
    step_sizes: list[Tensor],
    *,
    lr: Tensor,
    step: Tensor,
    etaminus: float,
    etaplus: float,
    step_size_min: float,
    step_size_max: float,
) -> None:
    """:func:`rprop_reference` with ``torch._foreach_*`` ops where they exist (bit-identical)."""
    etaminus, etaplus = float32_constant(etaminus), float32_constant(etaplus)
    low, high = float32_constant(step_size_min), float32_constant(step_size_max)
    first = step == 1
    grads = [_compute(grad) for grad in grads]
    products = torch._foreach_mul(grads, prevs)
    factors = [_factors(product, etaminus, etaplus) for product in products]
    sizes = [torch.where(first, lr, _compute(step_size)) for step_size in step_sizes]
    torch._foreach_mul_(sizes, factors)
    torch._foreach_clamp_min_(sizes, low)
    torch._foreach_clamp_max_(sizes, high)
    kept = [torch.where(f == etaminus, 0.0, g) for f, g in zip(factors, grads)]
    values = torch._foreach_sub(
        [_compute(param) for param in params], torch._foreach_mul(torch._foreach_sign(kept), sizes)
    )
    # Per-tensor copy_: torch._foreach_copy_ has no DTensor (FSDP2) sharding rule in torch 2.13.
    for targets, results in ((params, values), (prevs, kept), (step_sizes, sizes)):
        for target, result in zip(targets, results):
            target.copy_(result)
