"""Update kernels: pure functions over tensor lists, one module per optimizer.

Each module has ``<optimizer>_reference`` (a per-tensor loop in MindSpore's float32 op order: the
ground truth) and, where it pays, ``<optimizer>_foreach`` (the same arithmetic with ``torch._foreach_*``
ops; tests compare the two bit for bit, state included). Kernels mutate in place and return None.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["use_foreach"]


def use_foreach(foreach: bool | None, tensors: list[Tensor]) -> bool:
    """torch's convention: ``None`` picks foreach on CUDA, the reference loop elsewhere."""
    if foreach is not None:
        return foreach
    return bool(tensors) and all(t.is_cuda for t in tensors) and not torch.jit.is_scripting()
