"""MindSpore ``ApplyFtrl`` (the documented formula; ``p = lr_power``, ``n`` the accumulator)::

    n_new = n + g*g
    sigma = (n_new^(-p) - n^(-p)) / lr
    z    += g - sigma * w
    w     = (sign(z) * l1 - z) / (n_new^(-p) / lr + 2 * l2)   if |z| > l1,  else 0
    n     = n_new

Precision: float32, one rounding per operation in the kernel's order, except the powers
``x^(-p)``, which are correctly rounded float32 values (computed in float64 and rounded once):
bit for bit against the MindSpore 2.10 CPU recordings (``l1 == 0``).

MindSpore 2.10's CPU kernel uses ``l1 - z`` as the numerator for both signs of ``z`` (a defect:
``(|z| + l1) / denominator`` instead of ``(|z| - l1) / denominator`` for ``z < -l1``); msoptim follows
the documented ``sign(z) * l1 - z`` (MindSpore's docstring, its Python map-tensor path, TF's
``ApplyFtrl``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels._exact import float32_constant
from msoptim.kernels._fused import fused_apply, in_fused_kernel

__all__ = ["ftrl_foreach", "ftrl_fused", "ftrl_reference", "ftrl_update"]


def _power(base: Tensor, exponent: float) -> Tensor:
    """``base ** exponent`` correctly rounded to ``base``'s dtype (computed in float64).

    In a compiled kernel, ``exponent == 0.5`` (MindSpore's default ``lr_power = -0.5``) is one
    IEEE float32 square root, the same bits: the square root of a float32 number is never
    closer than 2**-51 (relative) to a float32 rounding boundary, and a float64 power or square
    root within one float64 ulp (2**-52) of it therefore rounds to the same float32 value.
    """
    if exponent == 0.5 and base.dtype == torch.float32 and in_fused_kernel():
        return torch.sqrt(base)
    return torch.pow(base.double(), exponent).to(base.dtype)


def ftrl_update(
    param: Tensor,
    grad: Tensor,
    accum: Tensor,
    linear: Tensor,
    lr: Tensor,
    *,
    exponent: float,
    l1: float,
    twice_l2: float,
) -> None:
    """One tensor's update in MindSpore's float32 op order (``exponent = -lr_power``)."""
    rate = lr.to(param.dtype)
    new_accum = accum + grad * grad
    power, new_power = _power(accum, exponent), _power(new_accum, exponent)
    sigma = (new_power - power) / rate
    linear.add_(grad - sigma * param)
    denominator = new_power / rate + twice_l2
    shrunk = (torch.sign(linear) * l1 - linear) / denominator
    param.copy_(torch.where(torch.abs(linear) > l1, shrunk, torch.zeros_like(shrunk)))
    accum.copy_(new_accum)


def _constants(lr_power: float, l1: float, l2: float) -> dict[str, float]:
    return {
        "exponent": -float32_constant(lr_power),
        "l1": float32_constant(l1),
        "twice_l2": 2.0 * float32_constant(l2),
    }


def ftrl_reference(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    linears: list[Tensor],
    *,
    lr: Tensor,
    lr_power: float,
    l1: float,
    l2: float,
) -> None:
    """Per-tensor loop of :func:`ftrl_update` (the ground truth)."""
    constants = _constants(lr_power, l1, l2)
    for param, grad, accum, linear in zip(params, grads, accums, linears):
        ftrl_update(param, grad, accum, linear, lr, **constants)


def ftrl_fused(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    linears: list[Tensor],
    *,
    lr: Tensor,
    lr_power: float,
    l1: float,
    l2: float,
) -> None:
    """:func:`ftrl_update` compiled (see :mod:`msoptim.kernels._fused`; bit-identical)."""
    constants = _constants(lr_power, l1, l2)
    fused_apply(ftrl_update, (params, grads, accums, linears), (lr,), **constants)


def ftrl_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    linears: list[Tensor],
    *,
    lr: Tensor,
    lr_power: float,
    l1: float,
    l2: float,
) -> None:
    """:func:`ftrl_reference` with ``torch._foreach_*`` ops (bit-identical)."""
    exponent, l1, twice_l2 = _constants(lr_power, l1, l2).values()
    new_accums = torch._foreach_add(accums, torch._foreach_mul(grads, grads))
    powers = [_power(accum, exponent) for accum in accums]
    new_powers = [_power(accum, exponent) for accum in new_accums]
    rates = [lr.to(param.dtype) for param in params]
    sigmas = torch._foreach_sub(new_powers, powers)
    torch._foreach_div_(sigmas, rates)
    torch._foreach_mul_(sigmas, params)
    torch._foreach_add_(linears, torch._foreach_sub(grads, sigmas))
    denominators = torch._foreach_add(torch._foreach_div(new_powers, rates), twice_l2)
    shrunk = torch._foreach_mul(torch._foreach_sign(linears), l1)
    torch._foreach_sub_(shrunk, linears)
    torch._foreach_div_(shrunk, denominators)
    for param, linear, value in zip(params, linears, shrunk):
        param.copy_(torch.where(torch.abs(linear) > l1, value, torch.zeros_like(value)))
    for accum, value in zip(accums, new_accums):
        accum.copy_(value)
