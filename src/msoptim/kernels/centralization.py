"""Gradient centralization's mean, rounded as MindSpore's CPU ``ReduceMean`` rounds it.

``g - mean(g, dims 1..ndim-1)``: MindSpore's ``Centralization`` kernel is Ascend-only; on CPU the
golden cases emulate it with ``ReduceMean`` (``../shared/golden/README.md``), whose sums depend on
the reduced axes (both forms matched on 1,000+ random rows recorded from MindSpore 2.10):

* one axis (a 2-D gradient, reduced over its last axis): eight float32 lanes, lane ``i % 8``
  starting from the first block of eight, added block after block; the eight lanes then added in
  order, then the ``n % 8`` remaining elements one by one; the total divided by ``n`` in float32;
* several axes (``ndim >= 3``, size-1 axes included): the total rounded to float32 from an
  accurate (float64) sum, divided by ``n`` in float32.
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim._division import divide_by_number
from msoptim.kernels._launch import VECTOR_WIDTH
from msoptim.kernels._sequential_sums import sum_along

__all__ = ["centralization_mean"]


def centralization_mean(grad: Tensor) -> Tensor:
    """The mean of ``grad`` over every axis but the first, kept as size-1 axes."""
    terms = grad[0].numel()
    if grad.ndim == 2:
        total = _lane_total(grad)
    else:
        dims = tuple(range(1, grad.ndim))
        total = grad.double().sum(dim=dims).to(grad.dtype)
    shape = (grad.shape[0],) + (1,) * (grad.ndim - 1)
    return divide_by_number(total, terms).reshape(shape)


@torch.compiler.disable  # sequential sums on the host; a graph break under torch.compile
def _lane_total(rows: Tensor) -> Tensor:
    """Each row's total in ``ReduceMean``'s one-axis order (module docstring)."""
    terms = rows.shape[1]
    whole = terms - terms % VECTOR_WIDTH
    if whole:
        blocks = rows[:, :whole].reshape(rows.shape[0], whole // VECTOR_WIDTH, VECTOR_WIDTH)
        lanes = sum_along(blocks.contiguous(), -2)
        total = lanes[:, 0]
        for lane in range(1, VECTOR_WIDTH):
            total = total + lanes[:, lane]
        first = whole
    else:
        total, first = rows[:, 0], 1
    for column in range(first, terms):
        total = total + rows[:, column]
    return total
