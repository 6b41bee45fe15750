"""MindSpore ``ApplyRMSProp`` / ``ApplyCenteredRMSProp``: RMSProp with ``mean_square`` starting at 1.

Non-centered (``c = 1 - decay``)::

    ms  += (g*g - ms) * c
    mom  = mom * momentum + (g * lr) / sqrt(ms + eps)
    w   -= mom

Centered (``mg``: the running mean of ``g``)::

    ms  += (g*g - ms) * c
    mg  += (g - mg) * c
    d    = (ms - mg*mg) + eps
    where d > 0:  mom = mom * momentum + (g * lr) / sqrt(d);  w -= mom

Precision (matched against the MindSpore 2.10 CPU recordings: parameters bit for bit, state within
1 ulp): the non-centered kernel is MindSpore's vectorized one, compiled with fused multiply-adds:
``g*g - ms``, ``ms + (..)*c`` and ``mom*momentum + step`` are each rounded once. msoptim evaluates
them in float64, where the float32 product is exact, and rounds once to the parameter dtype (a double
rounding that differs from a hardware FMA in about one case in 2**29). ``eps`` is inside the square
root, as documented (MindSpore's vector loop adds it outside, ``sqrt(ms) + eps``, its scalar tail
inside; with the default 1e-10 both give the same bits). The centered kernel is plain float32
arithmetic, one rounding per operation, with a correctly rounded square root.
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels._exact import exact_sqrt, float32_constant, foreach_exact_sqrt
from msoptim.kernels._fused import fused_apply

__all__ = [
    "rmsprop_centered_update",
    "rmsprop_foreach",
    "rmsprop_fused",
    "rmsprop_reference",
    "rmsprop_update",
]


def _fma(a: Tensor, b: Tensor | float, c: Tensor) -> Tensor:
    """``a * b + c`` rounded once to ``a``'s dtype (a float32 product is exact in float64)."""
    b64 = b.double() if isinstance(b, Tensor) else b
    return (a.double() * b64 + c.double()).to(a.dtype)


def _one_minus(decay: float) -> float:
    # MindSpore evaluates ``1.0 - decay`` in double from the float32 decay, then rounds to float32.
    return float32_constant(1.0 - float32_constant(decay))


def rmsprop_update(
    param: Tensor,
    grad: Tensor,
    mean_square: Tensor,
    moment: Tensor,
    lr: Tensor,
    *,
    rate: float,
    momentum: float,
    epsilon: float,
) -> None:
    """One tensor's non-centered update (``rate = 1 - decay`` and the constants as float32 values)."""
    mean_square.copy_(_fma(_fma(grad, grad, -mean_square), rate, mean_square))
    step = (grad * lr.to(grad.dtype)) / exact_sqrt(mean_square + epsilon)
    moment.copy_(_fma(moment, momentum, step))
    param.sub_(moment)


def rmsprop_centered_update(
    param: Tensor,
    grad: Tensor,
    mean_square: Tensor,
    moment: Tensor,
    mean_grad: Tensor,
    lr: Tensor,
    *,
    rate: float,
    momentum: float,
    epsilon: float,
) -> None:
    """One tensor's centered update (``rate = 1 - decay`` and the constants as float32 values)."""
    mean_square.add_((grad * grad - mean_square) * rate)
    mean_grad.add_((grad - mean_grad) * rate)
    denom = (mean_square - mean_grad * mean_grad) + epsilon
    positive = denom > 0
    updated = moment * momentum + (grad * lr.to(grad.dtype)) / exact_sqrt(denom)
    moment.copy_(torch.where(positive, updated, moment))
    param.copy_(torch.where(positive, param - moment, param))


def _constants(decay: float, momentum: float, epsilon: float) -> dict[str, float]:
    return {
        "rate": _one_minus(decay),
        "momentum": float32_constant(momentum),
        "epsilon": float32_constant(epsilon),
    }


def rmsprop_reference(
    params: list[Tensor],
    grads: list[Tensor],
    mean_squares: list[Tensor],
    moments: list[Tensor],
    mean_grads: list[Tensor] | None = None,
    *,
    lr: Tensor,
    decay: float,
    momentum: float,
    epsilon: float,
    centered: bool,
) -> None:
    """Per-tensor loop in MindSpore's CPU op order (the ground truth)."""
    constants = _constants(decay, momentum, epsilon)
    if not centered:
        for param, grad, mean_square, moment in zip(params, grads, mean_squares, moments):
            rmsprop_update(param, grad, mean_square, moment, lr, **constants)
        return
    if mean_grads is None:
        raise ValueError("rmsprop_reference: centered=True needs the mean_grads buffers.")
    for param, grad, mean_square, moment, mean_grad in zip(
        params, grads, mean_squares, moments, mean_grads
    ):
        rmsprop_centered_update(param, grad, mean_square, moment, mean_grad, lr, **constants)


def rmsprop_fused(
    params: list[Tensor],
    grads: list[Tensor],
    mean_squares: list[Tensor],
    moments: list[Tensor],
    mean_grads: list[Tensor] | None = None,
    *,
    lr: Tensor,
    decay: float,
    momentum: float,
    epsilon: float,
    centered: bool,
) -> None:
    """The reference updates compiled (see :mod:`msoptim.kernels._fused`; bit-identical)."""
    constants = _constants(decay, momentum, epsilon)
    if not centered:
        fused_apply(rmsprop_update, (params, grads, mean_squares, moments), (lr,), **constants)
        return
    if mean_grads is None:
        raise ValueError("rmsprop_fused: centered=True needs the mean_grads buffers.")
    fused_apply(
        rmsprop_centered_update,
        (params, grads, mean_squares, moments, mean_grads),
        (lr,),
        **constants,
    )


def rmsprop_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    mean_squares: list[Tensor],
    moments: list[Tensor],
    mean_grads: list[Tensor] | None = None,
    *,
    lr: Tensor,
    decay: float,
    momentum: float,
    epsilon: float,
    centered: bool,
) -> None:
    """:func:`rmsprop_reference` with ``torch._foreach_*`` ops (bit-identical)."""
    rate = _one_minus(decay)
    momentum, epsilon = float32_constant(momentum), float32_constant(epsilon)
    if not centered:
        grads64 = [grad.double() for grad in grads]
        squares64 = [ms.double() for ms in mean_squares]
        diffs64 = torch._foreach_mul(grads64, grads64)
        torch._foreach_sub_(diffs64, squares64)
        diffs = [d.to(ms.dtype) for d, ms in zip(diffs64, mean_squares)]
        updated64 = torch._foreach_mul([d.double() for d in diffs], rate)
        torch._foreach_add_(updated64, squares64)
        for mean_square, value in zip(mean_squares, updated64):
            mean_square.copy_(value)
        steps = torch._foreach_mul(grads, [lr.to(grad.dtype) for grad in grads])
        torch._foreach_div_(steps, foreach_exact_sqrt(torch._foreach_add(mean_squares, epsilon)))
        moments64 = torch._foreach_mul([m.double() for m in moments], momentum)
        torch._foreach_add_(moments64, [s.double() for s in steps])
        for moment, value in zip(moments, moments64):
            moment.copy_(value)
        torch._foreach_sub_(params, moments)
        return
    if mean_grads is None:
        raise ValueError("rmsprop_foreach: centered=True needs the mean_grads buffers.")
    # Out-of-place products with a Python scalar: torch's in-place ``_foreach_mul_`` rounds the
    # scalar to float16/bfloat16 first, unlike ``tensor * scalar``.
    diffs = torch._foreach_sub(torch._foreach_mul(grads, grads), mean_squares)
    torch._foreach_add_(mean_squares, torch._foreach_mul(diffs, rate))
    diffs = torch._foreach_sub(grads, mean_grads)
    torch._foreach_add_(mean_grads, torch._foreach_mul(diffs, rate))
    denoms = torch._foreach_sub(mean_squares, torch._foreach_mul(mean_grads, mean_grads))
    torch._foreach_add_(denoms, epsilon)
    updated = torch._foreach_mul(moments, momentum)
    steps = torch._foreach_mul(grads, [lr.to(grad.dtype) for grad in grads])
    torch._foreach_div_(steps, foreach_exact_sqrt(denoms))
    torch._foreach_add_(updated, steps)
    for param, moment, new, denom in zip(params, moments, updated, denoms):
        positive = denom > 0
        moment.copy_(torch.where(positive, new, moment))
        param.copy_(torch.where(positive, param - moment, param))
