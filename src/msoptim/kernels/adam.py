"""MindSpore's Adam kernels, with the arithmetic of its CPU kernels.

Three MindSpore kernels serve the Adam family:

* ``Adam`` (``nn.Adam``, ``nn.LazyAdam`` and ``Adam(use_lazy=True)`` on dense gradients):
  :func:`adam_reference` / :func:`adam_foreach`;
* ``AdamNoUpdateParam`` followed by ``AssignAdd`` (``nn.AdamOffload``, ``Adam(use_offload=True)``):
  :func:`adam_offload_reference` / :func:`adam_offload_foreach`;
* ``ApplyAdamWithAmsgradV2`` (``Adam(use_amsgrad=True)``): :func:`adam_amsgrad_reference` /
  :func:`adam_amsgrad_foreach`.

Every kernel first advances the power accumulators and folds the bias correction into the lr, in
float32 and in this order: ``β1ᵗ ← β1ᵗ·β1``, ``β2ᵗ ← β2ᵗ·β2``,
``lr_t = (lr · √(1 − β2ᵗ)) / (1 − β1ᵗ)``. Epsilon is then added to ``√v`` of the *uncorrected* ``v``.

Precision. MindSpore's CPU kernels are compiled C in which the compiler fuses ``a*b + c`` into one
fused multiply-add, and they walk each tensor in blocks of 8 elements (AVX), then handle the last
``numel % 8`` elements in a scalar loop whose ``sqrt`` is the C double-precision one. Fitted bit for
bit to MindSpore 2.10 CPU recordings (every Adam, LazyAdam, AdamOffload and amsgrad case):

* ``Adam``: ``m ← fma(g − m, 1 − β1, m)``, ``v ← fma(fma(g, g, −v), 1 − β2, v)``; in the vector
  blocks ``w ← w − (lr_t·m) / (√v + ε)`` in float32; in the scalar remainder the division and the
  subtraction are float64, rounded once. Nesterov's numerator is ``fma(1 − β1, g, m·β1)`` in
  the vector blocks and ``fma(m, β1, (1 − β1)·g)`` in the scalar remainder (each fitted to 12,800
  elements of MindSpore's ``Adam`` run on that loop alone; the other form is off by an ulp on
  about 1 element in 50).
* ``AdamNoUpdateParam``: vector blocks ``m ← fma(m, β1, (1 − β1)·g)``,
  ``v ← fma(v, β2, ((1 − β2)·g)·g)``, ``δ = (−lr_t·m) / (√v + ε)``; scalar remainder
  ``m ← fma(1 − β1, g, m·β1)``, ``v ← fma((1 − β2)·g, g, v·β2)``, ``δ`` divided in float64 and
  rounded once; then ``w ← w + δ`` in float32.
* ``ApplyAdamWithAmsgradV2``: plain float32, no fused operations:
  ``m ← m + (g − m)(1 − β1)``, ``v ← v + (g·g − v)(1 − β2)``, ``v̂ ← max(v̂, v)``,
  ``w ← w − (lr_t·m) / (√v̂ + ε)``.

``AdamNoUpdateParam`` runs launches 6-10 in two pieces, each with its own scalar remainder
(:mod:`msoptim.kernels._launch`); ``Adam``'s recordings show one piece throughout.

The ``*_foreach`` kernels run the same element-wise arithmetic once over each group's concatenated
tensors (one op per step for the whole group, like a fused multi-tensor kernel) and copy the results
back with ``torch._foreach_copy_``; since every operation is element-wise they are bit-identical to
the per-tensor ``*_reference`` loops. The fused multiply-adds are emulated exactly by
:func:`fused_multiply_add` (``torch.addcmul``/``add(alpha=)`` are not fused the same way on every
path), so do not let a compiler re-fuse these kernels (``torch.compile`` may contract ``a*b + c``).
float32 square roots go through :func:`correctly_rounded_sqrt` (torch's CPU ``sqrt`` is not
correctly rounded); the float64 ones of the scalar remainder use ``torch.sqrt``, faithful on the
CPU, which can move a final float32 rounding by an ulp about once per 10⁹ elements.
"""

from __future__ import annotations

import ctypes
import functools
import operator
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from msoptim.kernels import _native, _triton, pick_lists
from msoptim.kernels._fused import fused_apply, in_fused_kernel
from msoptim.kernels._launch import VECTOR_WIDTH, ScalarLoop, pieces_or_one, scalar_loop

__all__ = [
    "VECTOR_WIDTH",
    "adam_amsgrad_foreach",
    "adam_amsgrad_reference",
    "adam_foreach",
    "adam_fused",
    "adam_native_or_reference",
    "adam_offload_foreach",
    "adam_offload_reference",
    "adam_reference",
    "adam_steps_together",
    "adam_update",
    "bias_corrected_lr",
    "correctly_rounded_sqrt",
    "fused_multiply_add",
    "local_tensors",
]

Index = slice | Tensor | None

#: float64 bits that rounding to float32 drops (29), the tie pattern among them, the exponent
#: field, and float32's smallest normal exponent in float64's encoding.
_FLOAT32_DROPPED = (1 << 29) - 1
_FLOAT32_TIE = 1 << 28
_EXPONENT_MASK = 0x7FF << 52
_FLOAT32_TINY_EXPONENT = (1023 - 126) << 52


def _round_to_odd(product: Tensor, addend: Tensor, total: Tensor) -> Tensor:
    """``total = RN(product + addend)`` (float64) made round-to-odd.

    Knuth's TwoSum gives the exact error of the addition; where it is non-zero and the last bit of
    ``total`` is even, ``total`` moves one float64 ulp toward the exact sum (NaN/inf stay put).
    """
    virtual = total - product
    error = (product - (total - virtual)) + (addend - virtual)
    bits = total.view(torch.int64)
    odd = (error.abs() > 0) & ((bits & 1) == 0)
    toward = torch.where((error > 0) == (total > 0), 1, -1)
    return torch.where(odd, bits + toward, bits).view(torch.float64)


def fused_multiply_add(a: Tensor, b: Tensor | float, c: Tensor) -> Tensor:
    """``a * b + c`` with a single rounding to ``a.dtype`` (IEEE fma), for float32/16 and bfloat16.

    The product of two such numbers is exact in float64, so the float64 sum is the exact result
    rounded once to 53 bits; rounding that to float32 is a second rounding, which is wrong only
    where the float64 sum lands exactly on a float32 rounding boundary (a tie) while the exact sum
    does not (``a = (1 − 2⁻²³)·2⁻²⁴, b = c = 1 + 2⁻²³``), or below float32's normal range. There
    the sum is made round-to-odd, whose rounding to float32 is correct (Boldo & Melquiond, 2008).
    On the CPU only those few elements are repaired (found with ``nonzero``, whose size the host
    knows without a device read); on other devices every element goes through the round-to-odd
    step, branch-free. float64 inputs get ``a * b + c`` (two roundings).

    Args:
        a: a tensor.
        b: a tensor broadcastable with ``a``, or a Python float holding a value of ``a.dtype``.
        c: a tensor broadcastable with ``a``.

    Example:
        >>> import torch
        >>> a = torch.tensor([(1 - 2**-23) * 2**-24])
        >>> one = torch.tensor([1 + 2**-23])
        >>> fused_multiply_add(a, one, one).item() == 1 + 2**-23
        True
        >>> (a.double() * one.double() + one.double()).float().item() == 1 + 2**-23
        False
    """
    dtype = a.dtype
    if dtype == torch.float64:
        return a * b + c
    if dtype == torch.float32 and torch.compiler.is_compiling():
        # In a compiled kernel (fused=True): one hardware FMA, see msoptim.kernels._fused.fma.
        if not isinstance(b, Tensor):
            b = torch.full((), b, dtype=dtype, device=a.device)
        return torch.ops.msoptim.fma(a, b, c)
    wide = a.double()
    product = wide * (wide if b is a else b.double() if isinstance(b, Tensor) else b)
    addend = c.double()
    total = product + addend
    if total.device.type != "cpu" or dtype != torch.float32:
        product, addend = product.expand_as(total), addend.expand_as(total)
        return _narrow(_round_to_odd(product, addend, total), dtype)
    # Suspects: a float64 mantissa ending in float32's tie pattern (1 then 28 zeros), or an
    # exponent below float32's normal range (zeros included: they are exact and left alone).
    total = total.contiguous()  # repaired in place through a flat view
    bits = total.view(torch.int64)
    tie = (bits & _FLOAT32_DROPPED) == _FLOAT32_TIE
    tiny = (bits & _EXPONENT_MASK) < _FLOAT32_TINY_EXPONENT
    index = (tie | tiny).view(-1).nonzero().squeeze(1)
    if index.numel():  # a shape, known on the host: no device read
        flat = total.view(-1)
        product = product.expand_as(total).reshape(-1)[index]
        addend = addend.expand_as(total).reshape(-1)[index]
        flat[index] = _round_to_odd(product, addend, flat[index])
    return total.float()


def _narrow(wide: Tensor, dtype: torch.dtype) -> Tensor:
    """A float64 tensor rounded once to ``dtype`` (float32, float16 or bfloat16).

    torch converts float64 to float16/bfloat16 through float32, a double rounding: the float32
    step is made round-to-odd, which keeps the final rounding correct.
    """
    single = wide.float()
    if dtype == torch.float32:
        return single
    back = single.double()
    bits = single.view(torch.int32)
    odd = (back != wide) & ((bits & 1) == 0)
    toward = torch.where((wide > back) == (single > 0), 1, -1).to(torch.int32)
    return torch.where(odd, bits + toward, bits).view(torch.float32).to(dtype)


def local_tensors(tensors: Sequence[Tensor]) -> list[Tensor]:
    """Each ``DTensor`` replaced by its local shard (a view: in-place updates reach the DTensor).

    The Adam-family kernels are element-wise and a parameter, its gradient and its state share one
    sharding, so updating the shards is updating the tensors. A shard's scalar remainder (the
    ``numel % 8`` rounding above) is then that of the shard, at most an ulp from the unsharded run.
    """
    module = sys.modules.get("torch.distributed.tensor")  # loaded wherever a DTensor exists
    if module is None:
        return list(tensors)
    dtensor = module.DTensor
    if not any(issubclass(kind, dtensor) for kind in set(map(type, tensors))):
        return list(tensors)  # the usual case, found with one C-level pass
    return [t.to_local() if isinstance(t, dtensor) else t for t in tensors]


def _locals(*lists: Sequence[Tensor]) -> tuple[list[Tensor], ...]:
    return tuple(local_tensors(tensors) for tensors in lists)


def correctly_rounded_sqrt(x: Tensor) -> Tensor:
    """IEEE ``sqrt`` of a float32/16 or bfloat16 tensor (correctly rounded, like C's ``sqrtf``).

    torch's CPU ``sqrt`` goes through MKL's vector math library, which is accurate to about an
    ulp but not correctly rounded (about a fifth of float32 results are one ulp off). The float64
    square root of a float32 number is never within an ulp of float64 of a float32 rounding
    boundary, so rounding it to float32 gives the correctly rounded result. float64 inputs get
    ``torch.sqrt`` as is (faithful on the CPU, correctly rounded on CUDA).
    """
    if x.dtype == torch.float64 or (x.dtype == torch.float32 and in_fused_kernel()):
        return torch.sqrt(x)  # in a fused=True kernel Inductor's float32 sqrt is IEEE already
    return _narrow(torch.sqrt(x.double()), x.dtype)


def bias_corrected_lr(lr: Tensor, beta1_power: Tensor, beta2_power: Tensor) -> Tensor:
    """``(lr · √(1 − β2ᵗ)) / (1 − β1ᵗ)`` in float32, MindSpore's op order; a 0-d tensor."""
    return ((lr * correctly_rounded_sqrt(1.0 - beta2_power)) / (1.0 - beta1_power)).reshape(())


def _bias_corrected_lrs(
    lr: Tensor, beta1_powers: list[Tensor], beta2_powers: list[Tensor]
) -> list[Tensor]:
    """:func:`bias_corrected_lr` for lists of powers, with ``torch._foreach_*`` ops."""
    root = torch._foreach_neg(beta2_powers)
    torch._foreach_add_(root, 1.0)
    numerators = torch._foreach_mul([correctly_rounded_sqrt(r) for r in root], lr)
    denominators = torch._foreach_neg(beta1_powers)
    torch._foreach_add_(denominators, 1.0)
    return torch._foreach_div(numerators, denominators)


def _remainder(numel: int) -> slice | None:
    """The elements MindSpore's scalar loop handles: the last ``numel % 8``."""
    cut = numel - numel % VECTOR_WIDTH
    return slice(cut, numel) if cut < numel else None


@functools.lru_cache(maxsize=256)
def _remainder_index(numels: tuple[int, ...], device: torch.device) -> Tensor | None:
    """Positions of every tensor's scalar remainder in the concatenation of the tensors."""
    positions: list[int] = []
    offset = 0
    for numel in numels:
        positions.extend(range(offset + numel - numel % VECTOR_WIDTH, offset + numel))
        offset += numel
    if not positions:
        return None
    return torch.tensor(positions, dtype=torch.long, device=device)


def _at(value: Tensor, index: Index) -> Tensor:
    """``value[index]`` for a per-element tensor; a 0-d (shared) value as is."""
    return value if value.dim() == 0 else value[index]


# ------------------------------------------------------------------ element-wise arithmetic


def _adam_math(
    w: Tensor,
    g: Tensor,
    m: Tensor,
    v: Tensor,
    lr_t: Tensor,
    tail: Index,
    *,
    beta1: float,
    beta1c: float,
    beta2c: float,
    eps: float,
    nesterov: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """MindSpore ``Adam`` on flat tensors; returns the new ``(w, m, v)``."""
    lr_t = lr_t.to(w.dtype)
    m = fused_multiply_add(g - m, beta1c, m)
    v = fused_multiply_add(fused_multiply_add(g, g, -v), beta2c, v)
    numerator = fused_multiply_add(g, beta1c, m * beta1) if nesterov else m
    scaled = lr_t * numerator
    new_w = w - scaled / (correctly_rounded_sqrt(v) + eps)
    if tail is not None:
        if nesterov:  # the scalar loop's compiler fused the other product
            scaled_t = _at(lr_t, tail) * fused_multiply_add(m[tail], beta1, g[tail] * beta1c)
        else:
            scaled_t = scaled[tail]
        root = torch.sqrt(v[tail].double()) + eps
        new_w[tail] = (w[tail].double() - scaled_t.double() / root).to(w.dtype)
    return new_w, m, v


def _offload_math(
    g: Tensor,
    m: Tensor,
    v: Tensor,
    lr_t: Tensor,
    tail: ScalarLoop | None,
    *,
    beta1: float,
    beta2: float,
    beta1c: float,
    beta2c: float,
    eps: float,
    nesterov: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """MindSpore ``AdamNoUpdateParam`` on flat tensors; returns ``(delta, m, v)``. ``tail``: the
    elements of the kernel's scalar loops at this launch (other products fused, float64 step)."""
    lr_t = lr_t.to(m.dtype)
    new_m = fused_multiply_add(m, beta1, g * beta1c)
    new_v = fused_multiply_add(v, beta2, (g * beta2c) * g)
    numerator = fused_multiply_add(new_m, beta1, g * beta1c) if nesterov else new_m
    negative_lr = -lr_t
    delta = (negative_lr * numerator) / (correctly_rounded_sqrt(new_v) + eps)
    if tail is not None:
        index, mask = tail
        g_t, m_t, v_t = g[index], m[index], v[index]
        m_t = fused_multiply_add(g_t, beta1c, m_t * beta1)
        v_t = fused_multiply_add(g_t * beta2c, g_t, v_t * beta2)
        numerator_t = fused_multiply_add(m_t, beta1, g_t * beta1c) if nesterov else m_t
        scaled_t = (_at(negative_lr, index) * numerator_t).double()
        delta_t = (scaled_t / (torch.sqrt(v_t.double()) + eps)).to(delta.dtype)
        delta[index] = torch.where(mask, delta_t, delta[index])
        new_m[index] = torch.where(mask, m_t, new_m[index])
        new_v[index] = torch.where(mask, v_t, new_v[index])
    return delta, new_m, new_v


def _amsgrad_math(
    w: Tensor,
    g: Tensor,
    m: Tensor,
    v: Tensor,
    vhat: Tensor,
    lr_t: Tensor,
    *,
    beta1c: float,
    beta2c: float,
    eps: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """MindSpore ``ApplyAdamWithAmsgradV2`` (plain float32); returns the new ``(w, m, v, vhat)``."""
    lr_t = lr_t.to(w.dtype)
    m = m + (g - m) * beta1c
    v = v + (g * g - v) * beta2c
    vhat = torch.maximum(vhat, v)
    w = w - (lr_t * m) / (correctly_rounded_sqrt(vhat) + eps)
    return w, m, v, vhat


# ------------------------------------------------------------------ multi-tensor plumbing


def _flat(tensor: Tensor) -> Tensor:
    return tensor.reshape(-1)


def _concat(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _write_back(targets: Sequence[Tensor], flat: Tensor) -> None:
    chunks = flat.split([t.numel() for t in targets])
    torch._foreach_copy_(list(targets), [c.view(t.shape) for c, t in zip(chunks, targets)])


def _per_element(values: Sequence[Tensor], tensors: Sequence[Tensor]) -> Tensor:
    """One 0-d value per tensor, repeated over that tensor's elements (flat)."""
    return torch.cat([v.reshape(1).expand(t.numel()) for v, t in zip(values, tensors)])


def _buckets(tensors: Sequence[Tensor]) -> list[list[int]]:
    """Indices of ``tensors`` grouped by dtype (a concatenation needs one dtype)."""
    by_dtype: dict[torch.dtype, list[int]] = {}
    for index, tensor in enumerate(tensors):
        by_dtype.setdefault(tensor.dtype, []).append(index)
    return list(by_dtype.values())


def _pick(items: Sequence[Tensor], indices: list[int]) -> list[Tensor]:
    return [items[i] for i in indices]


def _advance_powers(
    beta1_powers: list[Tensor], beta2_powers: list[Tensor] | None, beta1: float, beta2: float
) -> None:
    torch._foreach_mul_(beta1_powers, beta1)
    if beta2_powers is not None:
        torch._foreach_mul_(beta2_powers, beta2)


def _constants(beta1: float, beta2: float) -> tuple[float, float]:
    """``1 − β`` computed in float32, as the C kernels do (the βs are float32 values)."""
    one = np.float32(1.0)
    return float(one - np.float32(beta1)), float(one - np.float32(beta2))


def _multi_tensor(
    tensor_lists: Sequence[Sequence[Tensor]],
    lr_ts: list[Tensor],
    body: Callable[[list[Tensor], Tensor, Index], tuple[Tensor, ...]],
    targets: Callable[[list[int]], Sequence[Sequence[Tensor]]],
    *,
    tail_of: Callable[[tuple[int, ...], torch.device], Any] | None,
) -> None:
    """Run ``body`` once per dtype bucket on concatenated tensors, then write the results back.

    ``tensor_lists[0]`` defines the layout (numels); ``body(flats, lr_per_element, tail)``
    returns the new flat values, written to ``targets(bucket)`` in the same order; ``tail`` is
    ``tail_of(numels, device)`` (the scalar-loop elements), or None.
    """
    layout = tensor_lists[0]
    for bucket in _buckets(layout):
        members = _pick(layout, bucket)
        flats = [_concat(_pick(items, bucket)) for items in tensor_lists]
        lr_flat = _per_element(_pick(lr_ts, bucket), members)
        tail = None
        if tail_of is not None:
            tail = tail_of(tuple(t.numel() for t in members), flats[0].device)
        results = body(flats, lr_flat, tail)
        for target, flat in zip(targets(bucket), results):
            _write_back(target, flat)


# ------------------------------------------------------------------ Adam


def adam_reference(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    beta1_powers: list[Tensor],
    beta2_powers: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    nesterov: bool,
) -> None:
    """MindSpore ``Adam`` (dense), one tensor at a time (the ground truth).

    Args:
        params, grads, moment1, moment2: aligned lists; updated in place.
        beta1_powers, beta2_powers: each parameter's float32 power accumulators (0-d or ``(1,)``),
            advanced in place before use.
        lr: the group's lr, a 0-d float32 tensor.
        beta1, beta2, eps: float32 values as Python floats.
        nesterov: MindSpore's ``use_nesterov``.
    """
    params, grads, moment1, moment2, beta1_powers, beta2_powers = _locals(
        params, grads, moment1, moment2, beta1_powers, beta2_powers
    )
    beta1c, beta2c = _constants(beta1, beta2)
    _advance_powers(beta1_powers, beta2_powers, beta1, beta2)
    for param, grad, m, v, p1, p2 in zip(
        params, grads, moment1, moment2, beta1_powers, beta2_powers
    ):
        lr_t = bias_corrected_lr(lr, p1, p2)
        new_w, new_m, new_v = _adam_math(
            _flat(param),
            _flat(grad),
            _flat(m),
            _flat(v),
            lr_t,
            _remainder(param.numel()),
            beta1=beta1,
            beta1c=beta1c,
            beta2c=beta2c,
            eps=eps,
            nesterov=nesterov,
        )
        m.copy_(new_m.view(m.shape))
        v.copy_(new_v.view(v.shape))
        param.copy_(new_w.view(param.shape))


def adam_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    beta1_powers: list[Tensor],
    beta2_powers: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    nesterov: bool,
) -> None:
    """Multi-tensor form of :func:`adam_reference` (bit-identical)."""
    params, grads, moment1, moment2, beta1_powers, beta2_powers = _locals(
        params, grads, moment1, moment2, beta1_powers, beta2_powers
    )
    beta1c, beta2c = _constants(beta1, beta2)
    _advance_powers(beta1_powers, beta2_powers, beta1, beta2)
    lr_ts = _bias_corrected_lrs(lr, beta1_powers, beta2_powers)

    def body(flats: list[Tensor], lr_t: Tensor, tail: Index) -> tuple[Tensor, ...]:
        w, g, m, v = flats
        return _adam_math(
            w,
            g,
            m,
            v,
            lr_t,
            tail,
            beta1=beta1,
            beta1c=beta1c,
            beta2c=beta2c,
            eps=eps,
            nesterov=nesterov,
        )

    _multi_tensor(
        (params, grads, moment1, moment2),
        lr_ts,
        body,
        lambda bucket: (_pick(params, bucket), _pick(moment1, bucket), _pick(moment2, bucket)),
        tail_of=_remainder_index,
    )


def adam_update(
    param: Tensor,
    grad: Tensor,
    m: Tensor,
    v: Tensor,
    beta1_power: Tensor,
    beta2_power: Tensor,
    lr: Tensor,
    *,
    beta1: float,
    beta2: float,
    beta1c: float,
    beta2c: float,
    eps: float,
    nesterov: bool,
    scalar_tail: bool,
) -> None:
    """One parameter's MindSpore ``Adam`` step, branch-free: the form :func:`adam_fused` compiles.

    The arithmetic of :func:`_adam_math` (which :func:`adam_reference` runs), with two changes of
    form only, so that one compiled graph serves every tensor length: the scalar remainder (the
    last ``numel % 8`` elements) is selected with a mask instead of a slice (both results are
    computed, the mask picks), and the powers are advanced here rather than in a separate pass.
    ``beta1c``/``beta2c`` are ``1 − β`` in float32 (:func:`_constants`). ``scalar_tail=False``
    skips the remainder's arithmetic; it is for tensors with ``numel % 8 == 0`` only (no
    remainder: the same result, without a float64 division per element). ``tests/test_fast_path``
    compares the compiled form with :func:`adam_reference`, bit for bit.
    """
    beta1_power.mul_(beta1)
    beta2_power.mul_(beta2)
    lr_t = bias_corrected_lr(lr, beta1_power, beta2_power).to(param.dtype)
    w, g, old_m, old_v = param.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1)
    new_m = fused_multiply_add(g - old_m, beta1c, old_m)
    new_v = fused_multiply_add(fused_multiply_add(g, g, -old_v), beta2c, old_v)
    numerator = fused_multiply_add(g, beta1c, new_m * beta1) if nesterov else new_m
    scaled = lr_t * numerator
    new_w = w - scaled / (correctly_rounded_sqrt(new_v) + eps)
    if scalar_tail:
        if nesterov:  # the scalar loop's compiler fused the other product
            scaled = lr_t * fused_multiply_add(new_m, beta1, g * beta1c)
        scalar = (w.double() - scaled.double() / (torch.sqrt(new_v.double()) + eps)).to(w.dtype)
        numel = w.numel()
        tail = torch.arange(numel, device=w.device) >= numel - numel % VECTOR_WIDTH
        new_w = torch.where(tail, scalar, new_w)
    m.copy_(new_m.view(m.shape))
    v.copy_(new_v.view(v.shape))
    param.copy_(new_w.view(param.shape))


@functools.lru_cache(maxsize=64)
def _tail_split(
    numels: tuple[int, ...],
) -> tuple[tuple[bool, Callable[[Sequence[Tensor]], list[Tensor]]], ...]:
    """``(scalar_tail, picker)`` for the tensors with and without a remainder of ``numel % 8``
    (computed once per list of sizes: a step then picks its lists with C-level calls)."""
    result = []
    for scalar_tail in (False, True):
        indices = [i for i, n in enumerate(numels) if (n % VECTOR_WIDTH != 0) == scalar_tail]
        if len(indices) == len(numels):
            result.append((scalar_tail, list))
        elif len(indices) == 1:
            only = indices[0]
            result.append((scalar_tail, lambda items, only=only: [items[only]]))
        elif indices:
            getter = operator.itemgetter(*indices)
            result.append((scalar_tail, lambda items, getter=getter: list(getter(items))))
    return tuple(result)


def adam_fused(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    beta1_powers: list[Tensor],
    beta2_powers: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    nesterov: bool,
) -> None:
    """:func:`adam_reference`, bit for bit: on the CPU the C kernel (``adam_native.c``) for plain
    contiguous float32 tensors, :func:`adam_update` compiled for the others (see
    :mod:`msoptim.kernels._fused`); on CUDA one multi-tensor launch
    (:mod:`msoptim.kernels._triton`)."""
    lists = _locals(params, grads, moment1, moment2, beta1_powers, beta2_powers)
    rest = _step_native(lists, lr=lr, beta1=beta1, beta2=beta2, eps=eps, nesterov=nesterov)
    if not rest:
        return
    if len(rest) < len(params):
        lists = pick_lists(lists, rest)
    params = lists[0]
    beta1c, beta2c = _constants(beta1, beta2)
    hyper = {"beta1": beta1, "beta2": beta2, "beta1c": beta1c, "beta2c": beta2c, "eps": eps}
    if _triton.available(params) and _triton.adam(lists, lr, **hyper, nesterov=nesterov):
        return
    # Tensors without a scalar remainder (numel % 8 == 0: nearly every tensor of real models)
    # get the cheaper kernel; the others the one that also computes the remainder.
    for scalar_tail, pick in _tail_split(tuple(map(Tensor.numel, params))):
        picked = [pick(items) for items in lists]
        fused_apply(
            adam_update,
            picked[:4],
            (lr,),
            per_parameter=picked[4:],
            **hyper,
            nesterov=nesterov,
            scalar_tail=scalar_tail,
        )


def adam_native_or_reference(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    beta1_powers: list[Tensor],
    beta2_powers: list[Tensor],
    **options: Any,
) -> None:
    """Adam's default on CPU (``fused`` and ``foreach`` unset): the C kernel where it runs (plain
    contiguous float32 tensors, a C compiler: nothing to compile per process), the reference
    elsewhere; the reference's bits either way. ``options``: :func:`adam_reference`'s."""
    lists = _locals(params, grads, moment1, moment2, beta1_powers, beta2_powers)
    rest = _step_native(lists, **options)
    if rest:
        adam_reference(*pick_lists(lists, rest), **options)


#: Extra compiler flags of the C kernel (tests build a variant that splits small tensors too).
NATIVE_FLAGS: tuple[str, ...] = ()
#: Run the C kernel's threads as torch's OpenMP workers where torch has one (tests also run its
#: own threads).
USE_OPENMP = True


def _load_native() -> Any:
    """The C kernel's step function, or None (no compiler, or a failed build)."""
    return _native.load_step("adam_native", "msoptim_adam_step", NATIVE_FLAGS)


def _step_native(
    lists: tuple[list[Tensor], ...],
    *,
    lr: Tensor | list[Tensor],
    beta1: float,
    beta2: float,
    eps: float,
    nesterov: bool,
    kept: dict[Any, _native.KeptTable] | None = None,
) -> list[int]:
    """Step the parameters the C kernel takes (plain contiguous float32 CPU tensors with their
    moments, plain float32 power accumulators and lrs: :mod:`msoptim.kernels._native`); return
    the positions of the others. ``lr``: the group's, or one per parameter (several groups in one
    call, :func:`adam_steps_together`). None is taken while dynamo traces or when the kernel cannot
    be built. ``kept``: where an optimizer keeps the kernel's table between steps."""
    params = lists[0]
    if not _native.can_step(params, _load_native):
        return list(range(len(params)))
    lrs = lr if isinstance(lr, list) else [lr] * len(params)
    hyper = {"beta1": beta1, "beta2": beta2, "eps": eps, "nesterov": nesterov}
    return _native.step_where_possible(
        (*lists, lrs),
        lambda picked, _, tables: _native_step(picked, tables, **hyper),
        walked=4,
        scalars=4,
        kept=kept,
        site=("adam", beta1, beta2, eps, nesterov),
    )


def adam_steps_together(
    lists: tuple[list[Tensor], ...],
    lrs: list[Tensor],
    *,
    beta1: float,
    beta2: float,
    eps: float,
    nesterov: bool,
    kept: dict[Any, _native.KeptTable] | None = None,
) -> list[int]:
    """The parameters of several groups with the same hyperparameters in one call: of the C
    kernel on the CPU, of the multi-tensor kernels on CUDA (``lrs``: each parameter's group lr;
    ``lists``: :func:`adam_reference`'s six). Returns the positions it could not take, for their
    groups' own kernels. ``kept``: the optimizer's kept tables (CPU,
    :class:`~msoptim.kernels._native.KeptTable`), or None."""
    lists = _locals(*lists)
    hyper = {"beta1": beta1, "beta2": beta2, "eps": eps, "nesterov": nesterov}
    if lists[0] and lists[0][0].is_cuda:
        beta1c, beta2c = _constants(beta1, beta2)
        return _triton.steps_together(
            lambda: _triton.adam(lists, lrs, **hyper, beta1c=beta1c, beta2c=beta2c), lists[0]
        )
    return _step_native(lists, lr=lrs, **hyper, kept=kept)


def _native_step(
    lists: tuple[list[Tensor], ...],
    tables: _native.TableBuilder,
    *,
    beta1: float,
    beta2: float,
    eps: float,
    nesterov: bool,
) -> None:
    """One vectorized pass per parameter, its powers advanced first (``adam_native.c``; the
    reference's bits). ``lists``: the six of :func:`adam_reference` and each parameter's lr;
    ``tables``: builds the address table (:data:`~msoptim.kernels._native.TableBuilder`)."""
    params, _, moment1, moment2, beta1_powers, beta2_powers, _ = lists
    table, lengths, order = tables(list(lists))
    constants = np.array([beta1, beta2, *_constants(beta1, beta2)], dtype=np.float32)
    lr_ts = np.empty(len(order), dtype=np.float32)
    # The kernel writes through raw pointers: bump the version counters as in-place ops would.
    torch._C._increment_version([*params, *moment1, *moment2, *beta1_powers, *beta2_powers])
    _load_native()(
        ctypes.c_void_p(table.ctypes.data),
        ctypes.c_void_p(lengths.ctypes.data),
        ctypes.c_int64(len(order)),
        ctypes.c_void_p(lr_ts.ctypes.data),
        ctypes.c_void_p(constants.ctypes.data),
        ctypes.c_double(eps),
        ctypes.c_int(int(nesterov)),
        *_native.team_arguments(USE_OPENMP),
    )


# ------------------------------------------------------------------ AdamOffload


def adam_offload_reference(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    beta1_powers: list[Tensor],
    beta2_powers: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    nesterov: bool,
    chunks: Tensor | None = None,
) -> None:
    """MindSpore ``AdamNoUpdateParam`` + ``AssignAdd``, one tensor at a time.

    The moments and powers may live on another device than the parameters (host memory for
    offloading): gradients and the lr are brought to the moments' device, the step ``δ`` is
    computed there and added to each parameter on its own device. ``chunks``: the pieces of
    MindSpore's kernel at this step (:func:`~msoptim.kernels._launch.launch_chunks`; one when
    omitted), each with its own scalar loop.
    """
    params, grads, moment1, moment2, beta1_powers, beta2_powers = _locals(
        params, grads, moment1, moment2, beta1_powers, beta2_powers
    )
    beta1c, beta2c = _constants(beta1, beta2)
    _advance_powers(beta1_powers, beta2_powers, beta1, beta2)
    for param, grad, m, v, p1, p2 in zip(
        params, grads, moment1, moment2, beta1_powers, beta2_powers
    ):
        lr_t = bias_corrected_lr(lr.to(p1.device), p1, p2)
        delta, new_m, new_v = _offload_math(
            _flat(grad.to(m.device)),
            _flat(m),
            _flat(v),
            lr_t,
            scalar_loop((param.numel(),), pieces_or_one(chunks, lr).to(m.device)),
            beta1=beta1,
            beta2=beta2,
            beta1c=beta1c,
            beta2c=beta2c,
            eps=eps,
            nesterov=nesterov,
        )
        m.copy_(new_m.view(m.shape))
        v.copy_(new_v.view(v.shape))
        param.add_(delta.view(param.shape).to(param.device))


def adam_offload_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    beta1_powers: list[Tensor],
    beta2_powers: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    nesterov: bool,
    chunks: Tensor | None = None,
) -> None:
    """Multi-tensor form of :func:`adam_offload_reference` (bit-identical)."""
    params, grads, moment1, moment2, beta1_powers, beta2_powers = _locals(
        params, grads, moment1, moment2, beta1_powers, beta2_powers
    )
    beta1c, beta2c = _constants(beta1, beta2)
    _advance_powers(beta1_powers, beta2_powers, beta1, beta2)
    host = moment1[0].device
    lr_ts = _bias_corrected_lrs(lr.to(host), beta1_powers, beta2_powers)
    host_grads = [grad.to(host) for grad in grads]
    deltas: list[Tensor] = [torch.empty(0)] * len(params)

    def body(flats: list[Tensor], lr_t: Tensor, tail: Index) -> tuple[Tensor, ...]:
        g, m, v = flats
        return _offload_math(
            g,
            m,
            v,
            lr_t,
            tail,
            beta1=beta1,
            beta2=beta2,
            beta1c=beta1c,
            beta2c=beta2c,
            eps=eps,
            nesterov=nesterov,
        )

    def targets(bucket: list[int]) -> tuple[list[Tensor], ...]:
        for i in bucket:
            deltas[i] = torch.empty_like(moment1[i])
        return _pick(deltas, bucket), _pick(moment1, bucket), _pick(moment2, bucket)

    def tail_of(numels: tuple[int, ...], device: torch.device) -> ScalarLoop | None:
        return scalar_loop(numels, pieces_or_one(chunks, lr).to(device))

    _multi_tensor((host_grads, moment1, moment2), lr_ts, body, targets, tail_of=tail_of)
    if host != params[0].device:
        deltas = [delta.to(params[0].device, non_blocking=True) for delta in deltas]
    torch._foreach_add_(params, deltas)


# ------------------------------------------------------------------ AMSGrad


def adam_amsgrad_reference(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    vhats: list[Tensor],
    beta1_powers: list[Tensor],
    beta2_powers: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """MindSpore ``ApplyAdamWithAmsgradV2``, one tensor at a time (``use_nesterov`` is ignored)."""
    params, grads, moment1, moment2, vhats, beta1_powers, beta2_powers = _locals(
        params, grads, moment1, moment2, vhats, beta1_powers, beta2_powers
    )
    beta1c, beta2c = _constants(beta1, beta2)
    _advance_powers(beta1_powers, beta2_powers, beta1, beta2)
    for param, grad, m, v, vhat, p1, p2 in zip(
        params, grads, moment1, moment2, vhats, beta1_powers, beta2_powers
    ):
        lr_t = bias_corrected_lr(lr, p1, p2)
        new_w, new_m, new_v, new_vhat = _amsgrad_math(
            param, grad, m, v, vhat, lr_t, beta1c=beta1c, beta2c=beta2c, eps=eps
        )
        m.copy_(new_m)
        v.copy_(new_v)
        vhat.copy_(new_vhat)
        param.copy_(new_w)


def adam_amsgrad_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    moment1: list[Tensor],
    moment2: list[Tensor],
    vhats: list[Tensor],
    beta1_powers: list[Tensor],
    beta2_powers: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """Multi-tensor form of :func:`adam_amsgrad_reference` (bit-identical)."""
    params, grads, moment1, moment2, vhats, beta1_powers, beta2_powers = _locals(
        params, grads, moment1, moment2, vhats, beta1_powers, beta2_powers
    )
    beta1c, beta2c = _constants(beta1, beta2)
    _advance_powers(beta1_powers, beta2_powers, beta1, beta2)
    lr_ts = _bias_corrected_lrs(lr, beta1_powers, beta2_powers)

    def body(flats: list[Tensor], lr_t: Tensor, tail: Index) -> tuple[Tensor, ...]:
        w, g, m, v, vhat = flats
        return _amsgrad_math(w, g, m, v, vhat, lr_t, beta1c=beta1c, beta2c=beta2c, eps=eps)

    _multi_tensor(
        (params, grads, moment1, moment2, vhats),
        lr_ts,
        body,
        lambda bucket: tuple(_pick(items, bucket) for items in (params, moment1, moment2, vhats)),
        tail_of=None,
    )
