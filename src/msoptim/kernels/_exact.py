"""Correctly rounded building blocks shared by the kernels.

torch's CPU ``sqrt`` (MKL's vector math) is accurate to about an ulp but not correctly rounded: about
one float32 result in six is one ulp off, where MindSpore's kernels use C's exact ``sqrtf``. The
float64 square root of a float32 number rounded once to float32 is the correctly rounded result.
Inside a ``fused=True`` kernel Inductor's float32 ``sqrt`` is already IEEE, so it is used directly:
the same bits, a third of the work.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from msoptim.kernels._fused import in_fused_kernel

__all__ = ["exact_reciprocal", "exact_sqrt", "float32_constant", "foreach_exact_sqrt"]


def exact_sqrt(x: Tensor) -> Tensor:
    """Correctly rounded square root of ``x``, in ``x``'s dtype."""
    if x.dtype == torch.float32 and in_fused_kernel():
        return torch.sqrt(x)
    return torch.sqrt(x.double()).to(x.dtype)


def exact_reciprocal(x: Tensor) -> Tensor:
    """``1 / x`` correctly rounded. Inside a ``fused=True`` kernel it is written as a division of
    a float32 one: Inductor's CUDA code divides exactly (``div_rn``) only where both operands
    are float32, and some torch versions build ``reciprocal`` from an integer one."""
    if in_fused_kernel():
        return torch.full_like(x, 1.0) / x
    return torch.reciprocal(x)


def foreach_exact_sqrt(xs: list[Tensor]) -> list[Tensor]:
    """:func:`exact_sqrt` of every tensor of a list."""
    return [exact_sqrt(x) for x in xs]


def float32_constant(value: float) -> float:
    """``value`` rounded to float32, as MindSpore stores a scalar hyper-parameter."""
    return float(np.float32(value))
