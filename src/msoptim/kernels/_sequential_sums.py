"""Sums in MindSpore's CPU order: element after element, rounded to float32 each time.

MindSpore's CPU kernels (FusedAdaFactor's row and column means, ReduceMean's vector lanes) add
in sequence; ``torch.sum`` and NumPy's innermost-axis reductions add pairwise or in vector lanes,
which moves a total by an ulp now and then. These helpers give the sequential totals for plain
CPU tensors, fast (NumPy adds whole slices in order), and ``torch.sum`` elsewhere.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["BLOCK_ELEMENTS", "SLICE_LOOP_MAX", "sequential", "sum_along"]


def sequential(x: Tensor) -> bool:
    """A plain CPU float tensor: the kernel's sequential sums can be reproduced exactly."""
    return (
        type(x) is Tensor
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and x.numel() > 0
    )


#: Up to this many terms, a sum adds whole slices in place (strided reads); above it, the terms
#: are added row by row by ``np.add.reduce`` (over blocks transposed in cache for the last axis).
SLICE_LOOP_MAX = 16
#: Elements per transposed block (256 KB of float32: stays in a core's cache).
BLOCK_ELEMENTS = 1 << 16


def sum_along(x: Tensor, dim: int, *, keepdim: bool = False) -> Tensor:
    """Sum over ``dim`` (-1 or -2), in sequence on the CPU (the kernel's loop), else ``torch.sum``.

    Every element's total is ``((x0 + x1) + x2) + ...`` in float32, computed for all of them at
    once: ``np.add.reduce`` over an axis that is not the innermost in memory adds whole slices in
    order (it sums pairwise only along the innermost axis, or when only one slice is left), so the
    reduced axis is never left innermost; ``test_sequential_sums`` pins every branch.
    """
    if not sequential(x):
        return torch.sum(x, dim=dim, keepdim=keepdim)
    array = x.detach().numpy()
    terms = array.shape[dim]
    if array.ndim == 1:
        total = np.cumsum(array, dtype=array.dtype)[-1]  # NumPy's cumsum accumulates in order
    elif terms <= SLICE_LOOP_MAX:
        moved = np.moveaxis(array, dim, 0)
        total = moved[0].copy()
        for term in moved[1:]:
            np.add(total, term, out=total)
    elif dim != -1 and array.shape[-1] > 1 and array.flags.c_contiguous:
        total = np.add.reduce(array, axis=dim)
    else:
        last = np.moveaxis(array, dim, -1)
        total = _row_totals(last.reshape(-1, terms)).reshape(last.shape[:-1])
    result = torch.from_numpy(np.asarray(total, dtype=array.dtype))
    return result.unsqueeze(dim) if keepdim else result


def _row_totals(matrix: np.ndarray) -> np.ndarray:
    """Each row's sequential sum: blocks of rows are transposed (in cache) and reduced row-wise."""
    rows, terms = matrix.shape
    totals = np.empty(rows, dtype=matrix.dtype)
    step = max(2, BLOCK_ELEMENTS // terms)
    for start in range(0, rows, step):
        block = matrix[start : start + step]
        if len(block) == 1:  # a single column would be summed pairwise
            totals[start] = np.cumsum(block[0], dtype=matrix.dtype)[-1]
        else:
            totals[start : start + len(block)] = np.add.reduce(np.ascontiguousarray(block.T), 0)
    return totals
