"""``tensor / number`` as one correctly rounded division on every device.

Eager CUDA divides a tensor by a Python number (or a CPU scalar) as ``tensor * (1 / number)``,
with the reciprocal rounded to the tensor's dtype first: two roundings. The quotient is then an
ulp away from MindSpore's (CPU) one for some values (a ``WarmUpLR(0.1, 500)`` lr at step 9:
0.0018000001 on CUDA, 0.0017999999 on CPU; measured on an H200 for 15-20% of the steps of five
schedule kinds), and ``41 * (1/41)`` is ``0.99999994`` in float32, so a stair schedule's
``floor(step / decay_steps)`` would step a decay late. Dividing by a tensor on the same device is
one IEEE division on CUDA too.

Compiled by Inductor (msoptim's compiled lrs on CUDA, or a user's ``torch.compile``), that tensor
is a constant again, and Inductor's lowering of a division by a constant (``div_prim`` in
``torch/_inductor/lowering.py``, torch 2.11-2.13) multiplies by its reciprocal on every device
but the CPU. Under compilation the division is therefore :func:`divide`, an op of msoptim's own
that Inductor lowers to an IEEE division: ``ops.div_rn`` where the installed torch has it (2.13,
not 2.11), else ``ops.truediv`` when the compile divides exactly in Triton (msoptim's own
kernels do: :func:`msoptim.exact_compile_options`), else a launch of the eager division.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["divide", "divide_by_number", "divide_tensors"]


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
    return divide_tensors(tensor, torch.full_like(tensor, number))


def divide_tensors(dividend: Tensor, divisor: Tensor) -> Tensor:
    """``dividend / divisor``, one IEEE division on every device, compiled or not (a compiled
    CUDA ``/`` is ``div.full``, an approximation, unless Inductor is told otherwise)."""
    if dividend.device.type != "cpu" and torch.compiler.is_compiling():
        return divide(dividend, divisor)
    return dividend / divisor


@torch.library.custom_op("msoptim::divide", mutates_args=())
def divide(dividend: Tensor, divisor: Tensor) -> Tensor:
    """``dividend / divisor`` (same dtype, broadcast), one IEEE division that Inductor does not
    turn into a multiplication by a reciprocal when ``divisor`` is a constant."""
    return dividend / divisor


@divide.register_fake
def _(dividend: Tensor, divisor: Tensor) -> Tensor:
    # Runs whenever a graph holding the op is traced, before Inductor lowers it: the one place
    # that sees every compile (msoptim's and a user's) in time to register the lowering.
    _register_lowering()
    return torch.empty_like(dividend + divisor)


_LOWERED: list[bool] = []


def _register_lowering() -> None:
    if _LOWERED:
        return
    from torch._inductor import lowering
    from torch._inductor.ops_handler import OpsHandler
    from torch._inductor.virtualized import ops

    @lowering.register_lowering(torch.ops.msoptim.divide.default, broadcast=True)
    def _lower_divide(dividend: Any, divisor: Any) -> Any:
        if hasattr(OpsHandler, "div_rn"):  # torch 2.13 (not 2.11): IEEE division everywhere
            return lowering.make_pointwise(ops.div_rn)(dividend, divisor)
        if _division_rounding():  # Triton's "/" is then IEEE division too
            return lowering.make_pointwise(ops.truediv)(dividend, divisor)
        # Else a separate launch of the eager op: exact, not fused.
        fallback = lowering.fallback_handler(
            torch.ops.msoptim.divide.default, add_to_fallback_set=False
        )
        return fallback(dividend, divisor)

    _LOWERED.append(True)


def _division_rounding() -> bool:
    """Whether the compile under way divides as IEEE in Triton (see ``exact_compile_options``)."""
    from torch._inductor import config

    numerics = getattr(config, "eager_numerics", None)
    if numerics is not None:
        return bool(numerics.division_rounding)
    return bool(getattr(config, "emulate_divison_rounding", False))
