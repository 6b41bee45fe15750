"""``tensor / number`` as one correctly rounded division on every device.

Eager CUDA divides a tensor by a Python number (or a CPU scalar) as ``tensor * (1 / number)``,
with the reciprocal rounded to the tensor's dtype first: two roundings. The quotient is then an
ulp away from MindSpore's (CPU) one for some values (a ``WarmUpLR(0.1, 500)`` lr at step 9:
0.0018000001 on CUDA, 0.0017999999 on CPU; measured on an H200 for 15-20% of the steps of five
schedule kinds), and ``41 * (1/41)`` is ``0.99999994`` in float32, so a stair schedule's
``floor(step / decay_steps)`` would step a decay late. Dividing by a tensor on the same device is
one IEEE division on CUDA too.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["divide_by_number"]


def divide_by_number(tensor: Tensor, number: float) -> Tensor:
    """``tensor / number``, correctly rounded in ``tensor``'s dtype on every device.

    Example:
        >>> import torch
        >>> from msoptim._division import divide_by_number
        >>> divide_by_number(torch.tensor([41.0]), 41.0).item()
        1.0
    """
    if tensor.device.type == "cpu":
        return tensor / number
    return tensor / torch.full_like(tensor, number)
