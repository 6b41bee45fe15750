"""Scratch memory kept between the steps of a fused optimizer."""

from __future__ import annotations

import weakref

import torch
from torch import Tensor

__all__ = ["flat_scratch", "scratch_like"]

_Store = dict[int, tuple[weakref.ref[Tensor], Tensor]]

#: One buffer per owner (a tensor that lives as long as the optimizer, held weakly).
_SCRATCH: _Store = {}
#: The same, for :func:`flat_scratch` (an owner may have both).
_FLAT: _Store = {}


def _kept(store: _Store, owner: Tensor) -> Tensor | None:
    entry = store.get(id(owner))
    return entry[1] if entry is not None and entry[0]() is owner else None


def _keep(store: _Store, owner: Tensor, buffer: Tensor) -> None:
    key = id(owner)
    store[key] = (weakref.ref(owner, lambda _: store.pop(key, None)), buffer)


def scratch_like(params: list[Tensor], owner: Tensor) -> list[Tensor]:
    """An uninitialised tensor like each of ``params``, carved out of one buffer kept for ``owner``.

    For the temporaries of a fused step (Lamb's ``g_hat``, LARS's rescaled gradients): fresh
    tensors would cost a page-faulting first touch of every large one at every step. The buffer
    is reused at the next call with the same owner, so a result lives until then. Parameters that
    are not contiguous, or of a second dtype, get fresh tensors.
    """
    dense = [p.is_contiguous() for p in params]
    needed: dict[torch.dtype, int] = {}
    for param, ok in zip(params, dense):
        if ok:
            needed[param.dtype] = needed.get(param.dtype, 0) + param.numel()
    kept = _kept(_SCRATCH, owner)
    buffers = {} if kept is None else {kept.dtype: kept}
    if len(needed) == 1:
        dtype, total = next(iter(needed.items()))
        buffer = buffers.get(dtype)
        if buffer is None or buffer.numel() < total or buffer.device != owner.device:
            buffer = torch.empty(total, dtype=dtype, device=owner.device)
            _keep(_SCRATCH, owner, buffer)
        buffers = {dtype: buffer}
    offsets = dict.fromkeys(buffers, 0)
    result = []
    for param, ok in zip(params, dense):
        buffer = buffers.get(param.dtype) if ok else None
        if buffer is None:
            result.append(torch.empty_like(param, memory_format=torch.preserve_format))
            continue
        start = offsets[param.dtype]
        offsets[param.dtype] = start + param.numel()
        result.append(buffer[start : start + param.numel()].view(param.shape))
    return result


def flat_scratch(owner: Tensor, numel: int) -> Tensor:
    """An uninitialised contiguous float32 CPU buffer of at least ``numel`` elements, kept for
    ``owner`` (reused, so valid until the next call with the same owner)."""
    kept = _kept(_FLAT, owner)
    if kept is not None and kept.numel() >= numel:
        return kept
    buffer = torch.empty(max(numel, 1), dtype=torch.float32)
    _keep(_FLAT, owner, buffer)
    return buffer
