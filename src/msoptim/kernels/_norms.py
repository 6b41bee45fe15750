"""Whole-tensor norms of the optimizers that scale a step by one (Lamb's trust ratio, LARS's
local rate).

MindSpore has no CPU kernel for Lamb or LARSUpdate, so no recorded value pins a norm's summation
order; msoptim picks an order-proof one: the float64 sum of the squares (each square of a float32
exact in float64), its float64 square root, rounded once to the tensor's dtype. Summed in any
order, the float64 total of ``n`` exact squares is within about ``n * 2**-53`` (relative) of the
exact sum, so the float32 norm changes only when it lies that close to a rounding boundary: odds
of about one in a million for a tensor of millions of elements, far less for small ones. The
reference, foreach, compiled and C paths (and a DTensor's global norm) therefore agree bit for bit
in practice, where a float32 sum changes with the thread count and the vector width.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["square_sum", "tensor_norm"]


def square_sum(tensor: Tensor) -> Tensor:
    """The float64 sum of the squares of ``tensor``'s elements (each square exact for float32)."""
    value = tensor.to(torch.float64)
    return (value * value).sum()


def tensor_norm(tensor: Tensor) -> Tensor:
    """``||tensor||`` over the whole tensor, summed in float64 and rounded to the tensor's dtype
    (a DTensor's global norm)."""
    return torch.linalg.vector_norm(tensor, dtype=torch.float64).to(tensor.dtype)
