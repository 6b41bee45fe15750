"""MindSpore's CPU kernel launches: the pieces a tensor is cut into, and each piece's scalar loop.

MindSpore's vectorized CPU kernels (AVX, 8 float32 lanes) update a piece of a tensor in a vector
loop over whole blocks of :data:`VECTOR_WIDTH` elements (some then over blocks of 4, SSE), then
a scalar loop over the rest (the last ``length % 8``, or ``length % 4``), where some kernels
round differently (RMSProp's ``eps``, AdamNoUpdateParam's moments, ProximalAdagrad's double
division). ``ParallelLaunchAutoSearch`` decides how many pieces a launch uses: it times the kernel
five launches at a time with 1, 2, 4, ... pieces and then keeps the fastest, so launches 6-10 of a
kernel run on two pieces (recordings show both pieces' scalar loops there) and launches 1-5 on
one; after the tenth the choice depends on the machine's timings, and msoptim takes one piece.
In a step a kernel is launched once per parameter shape, so launch ``k`` is step ``k``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "MAX_PIECES",
    "VECTOR_WIDTH",
    "ScalarLoop",
    "in_scalar_tail",
    "launch_chunks",
    "pieces_or_one",
    "scalar_loop",
    "split_by_scalar_loop",
]

#: Elements per vector block of MindSpore's CPU kernels (AVX, float32).
VECTOR_WIDTH = 8
#: The most pieces :func:`launch_chunks` gives.
MAX_PIECES = 2


def launch_chunks(global_step: Tensor) -> Tensor:
    """How many pieces MindSpore's CPU kernel cuts each tensor into, at the step after
    ``global_step`` steps: a 0-d float32 tensor (no host sync)."""
    step = global_step.reshape(())
    return ((step >= 5) & (step < 10)).to(torch.float32) + 1.0


def pieces_or_one(chunks: Tensor | None, lr: Tensor) -> Tensor:
    """``chunks`` (:func:`launch_chunks` of the step), or one piece on ``lr``'s device when a
    kernel is called without it."""
    return torch.ones((), device=lr.device) if chunks is None else chunks


def _in_tail(index: Tensor, numel: Tensor | int, chunks: Tensor, width: int) -> Tensor:
    pieces = chunks.to(torch.int64)
    size = (numel + pieces - 1) // pieces
    start = index - index % size
    length = torch.clamp(numel - start, max=size)
    return index - start >= length - length % width


def in_scalar_tail(tensor: Tensor, chunks: Tensor, width: int = VECTOR_WIDTH) -> Tensor:
    """True on the elements of MindSpore's scalar loop (row-major): the last ``length % width`` of
    each of the ``chunks`` pieces, which are ``ceil(numel / chunks)`` long (the last one shorter)."""
    index = torch.arange(tensor.numel(), device=tensor.device).view(tensor.shape)
    return _in_tail(index, tensor.numel(), chunks, width)


def split_by_scalar_loop(
    numels: tuple[int, ...], width: int = VECTOR_WIDTH
) -> tuple[list[int], list[int]]:
    """Positions of the tensors that have no scalar loop in any piece count (their pieces are
    whole blocks of ``width``), and of the others."""
    whole = [i for i, numel in enumerate(numels) if numel % (MAX_PIECES * width) == 0]
    rest = [i for i, numel in enumerate(numels) if numel % (MAX_PIECES * width) != 0]
    return whole, rest


class ScalarLoop(NamedTuple):
    """Where a launch's scalar loops can fall in a concatenation of tensors, and where they do."""

    positions: Tensor  #: int64 positions in the concatenation (any piece count's scalar loops)
    mask: Tensor  #: bool, per position: in a scalar loop at this launch


@functools.lru_cache(maxsize=256)
def _candidates(
    numels: tuple[int, ...], device: torch.device, width: int
) -> tuple[Tensor, Tensor, Tensor]:
    positions, local, lengths = [], [], []
    offset = 0
    for numel in numels:
        found: set[int] = set()
        for pieces in range(1, MAX_PIECES + 1) if numel else ():
            size = -(-numel // pieces)
            for start in range(0, numel, size):
                end = min(start + size, numel)
                found.update(range(end - (end - start) % width, end))
        for index in sorted(found):
            positions.append(offset + index)
            local.append(index)
            lengths.append(numel)
        offset += numel
    as_tensor = functools.partial(torch.tensor, dtype=torch.int64, device=device)
    return as_tensor(positions), as_tensor(local), as_tensor(lengths)


def scalar_loop(
    numels: tuple[int, ...], chunks: Tensor, width: int = VECTOR_WIDTH
) -> ScalarLoop | None:
    """The scalar-loop elements of tensors of these lengths, concatenated, at a launch of
    ``chunks`` pieces (:func:`launch_chunks`); None where no piece count leaves one. No host
    sync: the candidate positions depend on the lengths alone, the mask on ``chunks``."""
    positions, local, lengths = _candidates(numels, chunks.device, width)
    if not len(positions):
        return None
    return ScalarLoop(positions, _in_tail(local, lengths, chunks, width))
