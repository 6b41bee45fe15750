"""MindSpore ``ApplyProximalAdagrad``: Adagrad with an l1/l2 proximal step at the adaptive lr::

    acc  += g*g
    lr_t  = lr / sqrt(acc)
    prox  = w - lr_t * g
    w     = sign(prox) * max(|prox| - lr_t * l1, 0) / (1 + lr_t * l2)     (w = prox / (1 + lr_t * l2) if l1 == 0)

Precision: the arithmetic of MindSpore's vectorized CPU kernel, which is compiled with fused
multiply-adds: ``acc + g*g``, ``w - g*lr_t``, ``1 + l2*lr_t`` and ``|prox| - lr_t*l1`` are each one
IEEE fused multiply-add (rounded once: :func:`~msoptim.kernels.adam.fused_multiply_add` eagerly, a
hardware FMA in a compiled kernel), the rest is float32 with a correctly rounded square root.
The kernel's vector loops (AVX then SSE blocks) leave the last ``length % 4`` elements of each
piece to a scalar loop (:mod:`msoptim.kernels._launch`: two pieces at launches 6-10), which
divides ``lr / sqrt(acc)`` in double and shrinks by l1 in double (:func:`_scalar_loop`). Both
forms fitted to 4,500 elements of MindSpore 2.10's ``ApplyProximalAdagrad`` run on its scalar
loop alone and to the recorded optimizer runs: bit for bit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels import concatenated_by_scalar_loop, fused_by_scalar_loop
from msoptim.kernels._exact import exact_sqrt, float32_constant
from msoptim.kernels._launch import in_scalar_tail, pieces_or_one
from msoptim.kernels.adam import fused_multiply_add, local_tensors

__all__ = [
    "proximal_adagrad_foreach",
    "proximal_adagrad_fused",
    "proximal_adagrad_reference",
    "proximal_adagrad_update",
]


def _fma(a: Tensor, b: Tensor | float, c: Tensor | float) -> Tensor:
    """``a * b + c`` rounded once to ``a``'s dtype (an IEEE fused multiply-add)."""
    if not isinstance(c, Tensor):
        c = torch.full((), c, dtype=a.dtype, device=a.device)
    return fused_multiply_add(a, b, c)


def _prox(param: Tensor, grad: Tensor, lr_t: Tensor, l1: float, l2: float) -> Tensor:
    proximal = _fma(-grad, lr_t, param)
    denominator = _fma(lr_t, l2, 1.0)
    if l1 > 0:
        # The kernel's max(x, 0) and sign(x) give 0 for NaN (a zero gradient with accum 0
        # makes ``0 * inf``): that element becomes 0, where torch's clamp and sign keep the NaN.
        shrunk = _fma(-lr_t, l1, torch.abs(proximal))
        shrunk = torch.where(shrunk > 0, shrunk, 0.0)
        sign = (proximal > 0).to(proximal.dtype) - (proximal < 0).to(proximal.dtype)
        return (shrunk / denominator) * sign
    return proximal / denominator


#: The scalar loop takes what the AVX (8) and SSE (4) blocks leave: the last ``length % 4``.
SCALAR_WIDTH = 4


def proximal_adagrad_update(
    param: Tensor,
    grad: Tensor,
    accum: Tensor,
    lr: Tensor,
    chunks: Tensor,
    *,
    l1: float,
    l2: float,
    scalar_tail: bool = True,
) -> None:
    """One tensor's update in MindSpore's op order (``l1``, ``l2`` as float32 values).

    ``chunks``: the pieces of MindSpore's kernel at this step
    (:func:`~msoptim.kernels._launch.launch_chunks`), each with its own scalar loop;
    ``scalar_tail=False`` treats every element as the vector loop does (right for tensors whose
    pieces are whole blocks of 4 in any piece count).
    """
    new_accum = _fma(grad, grad, accum)
    lr_t = lr.to(accum.dtype) / exact_sqrt(new_accum)
    new_param = _prox(param, grad, lr_t, l1, l2)
    if scalar_tail:
        tail = in_scalar_tail(param, chunks, SCALAR_WIDTH)
        new_param = torch.where(tail, _scalar_loop(param, grad, new_accum, lr, l1, l2), new_param)
    accum.copy_(new_accum)
    param.copy_(new_param)


def _scalar_loop(
    param: Tensor, grad: Tensor, accum: Tensor, lr: Tensor, l1: float, l2: float
) -> Tensor:
    """The kernel's scalar loop (C: ``lr / sqrt(acc)`` and ``fabs``/``fmax`` are double): the
    adaptive lr is a double division rounded to float32, the proximal point and ``1 + l2*lr_t``
    float32 FMAs, the l1 shrinkage and the final division double, rounded once."""
    lr_t = (lr.double() / torch.sqrt(accum.double())).to(accum.dtype)
    proximal = _fma(-grad, lr_t, param)
    denominator = _fma(lr_t, l2, 1.0)
    if l1 > 0:
        shrunk = torch.abs(proximal).double() - (lr_t * l1).double()
        shrunk = torch.where(shrunk > 0, shrunk, 0.0)  # fmax(x, 0.0): NaN gives 0
        sign = (proximal > 0).double() - (proximal < 0).double()
        return (sign * shrunk / denominator.double()).to(param.dtype)
    return proximal / denominator


def proximal_adagrad_reference(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    *,
    lr: Tensor,
    l1: float,
    l2: float,
    chunks: Tensor | None = None,
) -> None:
    """Per-tensor loop of :func:`proximal_adagrad_update` (the ground truth); ``chunks``: the
    step's :func:`~msoptim.kernels._launch.launch_chunks` (one piece when omitted).

    Element-wise, so a DTensor's local shard is updated directly (the exact FMA emulation repairs
    elements through a flat view, which a DTensor has no rule for).
    """
    params, grads, accums = (local_tensors(t) for t in (params, grads, accums))
    l1, l2 = float32_constant(l1), float32_constant(l2)
    chunks = pieces_or_one(chunks, lr)
    for param, grad, accum in zip(params, grads, accums):
        proximal_adagrad_update(param, grad, accum, lr, chunks, l1=l1, l2=l2)


def proximal_adagrad_fused(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    *,
    lr: Tensor,
    l1: float,
    l2: float,
    chunks: Tensor | None = None,
) -> None:
    """:func:`proximal_adagrad_update` compiled (see :mod:`msoptim.kernels._fused`)."""
    l1, l2 = float32_constant(l1), float32_constant(l2)
    chunks = pieces_or_one(chunks, lr)
    fused_by_scalar_loop(
        proximal_adagrad_update,
        (params, grads, accums),
        (lr, chunks),
        width=SCALAR_WIDTH,
        l1=l1,
        l2=l2,
    )


def proximal_adagrad_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    accums: list[Tensor],
    *,
    lr: Tensor,
    l1: float,
    l2: float,
    chunks: Tensor | None = None,
) -> None:
    """:func:`proximal_adagrad_reference` once over the concatenated tensors of each dtype
    (element-wise arithmetic: bit-identical); tensors with a scalar loop one by one."""
    params, grads, accums = (local_tensors(t) for t in (params, grads, accums))
    l1, l2 = float32_constant(l1), float32_constant(l2)
    chunks = pieces_or_one(chunks, lr)
    concatenated_by_scalar_loop(
        proximal_adagrad_update,
        (params, grads, accums),
        (0, 2),
        lr,
        chunks,
        width=SCALAR_WIDTH,
        l1=l1,
        l2=l2,
    )
