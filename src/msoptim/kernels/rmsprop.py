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

Precision (matched against MindSpore 2.10 CPU recordings, parameters and state bit for bit): the
non-centered kernel is MindSpore's vectorized one, compiled with fused multiply-adds: ``g*g - ms``,
``ms + (..)*c`` and ``mom*momentum + step`` are each rounded once: an exact emulation eagerly
(:func:`~msoptim.kernels.adam.fused_multiply_add`), a hardware FMA in a compiled kernel. Where
``eps`` goes depends on the element, as in that kernel: its vector loop (the first
``numel - numel % 8`` elements of a tensor, in row-major order) divides by ``sqrt(ms) + eps``, its
scalar loop (the last ``numel % 8``) by ``sqrt(ms + eps)``, the documented form. At launches 6-10
the kernel runs each tensor in two pieces, each with its own scalar loop
(:func:`~msoptim.kernels._launch.launch_chunks`): recorded runs show it, and msoptim follows. With
the default ``1e-10`` the two agree unless ``ms`` is tiny; with ``eps=1e-6`` they differ by up to
16 ulp, and by orders of magnitude where ``ms`` underflows to 0. The centered kernel is plain
float32 arithmetic, one rounding per operation, ``eps`` inside the root, a correctly rounded
square root.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from msoptim.kernels import _triton, concatenated_by_scalar_loop, fused_by_scalar_loop
from msoptim.kernels._exact import exact_sqrt, float32_constant, foreach_exact_sqrt
from msoptim.kernels._fused import fused_apply
from msoptim.kernels._launch import VECTOR_WIDTH, in_scalar_tail, launch_chunks, pieces_or_one
from msoptim.kernels.adam import fused_multiply_add, local_tensors

__all__ = [
    "in_scalar_tail",
    "launch_chunks",
    "rmsprop_centered_update",
    "rmsprop_foreach",
    "rmsprop_fused",
    "rmsprop_reference",
    "rmsprop_update",
]


def _fma(a: Tensor, b: Tensor | float, c: Tensor) -> Tensor:
    """``a * b + c`` rounded once to ``a``'s dtype (an IEEE fused multiply-add)."""
    return fused_multiply_add(a, b, c)


def _one_minus(decay: float) -> float:
    # MindSpore evaluates ``1.0 - decay`` in double from the float32 decay, then rounds to float32.
    return float32_constant(1.0 - float32_constant(decay))


def rmsprop_update(
    param: Tensor,
    grad: Tensor,
    mean_square: Tensor,
    moment: Tensor,
    lr: Tensor,
    chunks: Tensor,
    *,
    rate: float,
    rate64: float,
    momentum: float,
    epsilon: float,
    scalar_tail: bool = True,
) -> None:
    """One tensor's non-centered update (``rate = 1 - decay`` in float32, ``rate64`` the same in
    double, the other constants as float32 values).

    ``chunks`` (a 0-d float32 tensor, :func:`launch_chunks`) is how many pieces MindSpore's kernel
    cuts the tensor into at this step; each piece has its own scalar tail. ``scalar_tail=False``
    treats every element as the vector loop does: right for a tensor (or a concatenation of
    tensors) whose pieces' lengths are all multiples of :data:`VECTOR_WIDTH`.
    """
    new_ms = _fma(_fma(grad, grad, -mean_square), rate, mean_square)
    step = (grad * lr.to(grad.dtype)) / (exact_sqrt(new_ms) + epsilon)
    new_moment = _fma(moment, momentum, step)
    if scalar_tail:
        tail = in_scalar_tail(mean_square, chunks)
        tail_ms, tail_moment = _scalar_loop(
            grad, mean_square, moment, lr, rate64, momentum, epsilon
        )
        new_ms = torch.where(tail, tail_ms, new_ms)
        new_moment = torch.where(tail, tail_moment, new_moment)
    mean_square.copy_(new_ms)
    moment.copy_(new_moment)
    param.sub_(new_moment)


def _scalar_loop(
    grad: Tensor,
    mean_square: Tensor,
    moment: Tensor,
    lr: Tensor,
    rate64: float,
    momentum: float,
    epsilon: float,
) -> tuple[Tensor, Tensor]:
    """The kernel's scalar loop: C++ promotes to double after ``1.0 - decay`` and ``std::sqrt``.

    ``ms + (g*g - ms)·(1 - decay)`` and ``mom·momentum + (g·lr) / sqrt(ms + eps)`` are each
    evaluated in double and rounded once; ``g*g - ms`` is one float32 FMA, and ``ms + eps``,
    ``g·lr`` and ``mom·momentum`` are float32 (rounded before the double arithmetic). Fitted to
    6,000 elements of MindSpore 2.10's ``ApplyRMSProp`` run on its scalar loop alone: bit for bit.
    """
    dtype = mean_square.dtype
    difference = _fma(grad, grad, -mean_square).double()
    new_ms = (mean_square.double() + difference * rate64).to(dtype)
    root = torch.sqrt((new_ms + epsilon).double())
    step = (grad * lr.to(grad.dtype)).double() / root
    return new_ms, ((moment * momentum).double() + step).to(dtype)


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


@functools.lru_cache(maxsize=64)
def _rate64(decay: float) -> float:
    """``1.0 - decay`` in double from the float32 decay (the scalar loop's, not rounded)."""
    return 1.0 - float32_constant(decay)


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
    chunks: Tensor | None = None,
) -> None:
    """Per-tensor loop in MindSpore's CPU op order (the ground truth); ``chunks``:
    :func:`launch_chunks` of the step (one piece when omitted).

    Element-wise, so a DTensor's local shard is updated directly (the exact FMA emulation repairs
    elements through a flat view, which a DTensor has no rule for).
    """
    constants = _constants(decay, momentum, epsilon)
    if not centered:
        params, grads, mean_squares, moments = (
            local_tensors(t) for t in (params, grads, mean_squares, moments)
        )
        chunks = pieces_or_one(chunks, lr)
        constants["rate64"] = _rate64(decay)
        for param, grad, mean_square, moment in zip(params, grads, mean_squares, moments):
            rmsprop_update(param, grad, mean_square, moment, lr, chunks, **constants)
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
    chunks: Tensor | None = None,
) -> None:
    """The reference updates compiled (see :mod:`msoptim.kernels._fused`; bit-identical); on CUDA
    one multi-tensor launch (:mod:`msoptim.kernels._triton`)."""
    constants = _constants(decay, momentum, epsilon)
    if centered and mean_grads is None:
        raise ValueError("rmsprop_fused: centered=True needs the mean_grads buffers.")
    lists = (params, grads, mean_squares, moments, *([mean_grads] if centered else []))
    chunks = pieces_or_one(chunks, lr)
    rate64 = _rate64(decay)
    if _triton.available(params) and _triton.rmsprop(
        lists, lr, chunks, **constants, decay=float32_constant(decay)
    ):
        return
    if not centered:
        fused_by_scalar_loop(
            rmsprop_update, lists, (lr, chunks), width=VECTOR_WIDTH, **constants, rate64=rate64
        )
        return
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
    chunks: Tensor | None = None,
) -> None:
    """:func:`rmsprop_reference` with ``torch._foreach_*`` ops (bit-identical)."""
    rate = _one_minus(decay)
    momentum, epsilon = float32_constant(momentum), float32_constant(epsilon)
    if not centered:
        params, grads, mean_squares, moments = (
            local_tensors(t) for t in (params, grads, mean_squares, moments)
        )
        lists = (params, grads, mean_squares, moments)
        constants = {**_constants(decay, momentum, epsilon), "rate64": _rate64(decay)}
        chunks = pieces_or_one(chunks, lr)
        concatenated_by_scalar_loop(
            rmsprop_update, lists, (0, 2, 3), lr, chunks, width=VECTOR_WIDTH, **constants
        )
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
