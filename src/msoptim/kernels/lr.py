"""Group learning rates of a ``fused=True`` optimizer, evaluated by compiled kernels.

A schedule evaluated eagerly is a chain of 0-d tensor ops: 10-140 us a step on a CPU
(``ExponentialDecayLR``'s exact power is the longest), several times that with the caches a large
update just evicted, which made MindSpore's grouped recipe cost a few percent of a ResNet-50 step.
Compiled (:class:`msoptim.kernels._fused.CompiledUpdate`), each lr is one call of about a
microsecond, with the same bits: the schedules are float32 arithmetic in a fixed order, which
Inductor's C++ keeps (``tests/test_lr_kernels.py`` compares every built-in schedule over
thousands of steps).

Only the lr sources whose arithmetic msoptim owns are compiled: the ``(lr + 1) - 1`` static form
and the six built-in schedule classes (exactly those classes: a subclass may override
``forward``); a table is one gather written straight into the lr. On CPU the table's gather and
the static form are done by the C++ step module where it is built
(:func:`msoptim.kernels._native.step_extension`: a few microseconds instead of a cold trip
through torch's dispatcher, 0.07 ms a step in MindSpore's 4-group recipe on ResNet-50). A
user's own schedule runs eagerly, as does everything under ``torch.compile(opt.step)`` (where
the user's compile takes them in).

On CUDA they are compiled too (:data:`COMPILED_ON_CUDA`). Two GPU runs (H200,
``bench/results/h200-2026-11-26/`` and ``-c/``) found CUDA lrs an ulp off MindSpore's (the
CPU's) values at 5-20% of the steps: eager CUDA multiplied by a float32 reciprocal where MindSpore
divides, and Inductor's lowering of a division by a constant does the same on every device but
the CPU (``ExponentialDecayLR(..., 41, is_stair=True)`` decayed a step late at 41, 82, ...:
``41 * (1/41) = 0.99999994``). The schedules divide through :mod:`msoptim._division`, whose
compiled form is a plain division; ``tests/gpu`` compares every kind with the CPU's bits. Compiled,
the lrs cut the 4-group recipe's CUDA-graph cost on ResNet-50 from +23-30% to +12-13% over one
static group (each eager op is its own launch in a graph's replay).

The tensors a source reads (a table, a static lr) are arguments of the kernel, never constants
baked into it, so replacing them is always seen.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import Tensor, nn

from msoptim.kernels import _native
from msoptim.kernels._fused import CompiledUpdate, _kernel
from msoptim.lr_sources import ConstantLR, TableLR
from msoptim.schedules import (
    CosineDecayLR,
    ExponentialDecayLR,
    InverseDecayLR,
    NaturalExpDecayLR,
    PolynomialDecayLR,
    WarmUpLR,
)

__all__ = ["evaluate_lr"]

_SCHEDULES = (
    CosineDecayLR,
    ExponentialDecayLR,
    InverseDecayLR,
    NaturalExpDecayLR,
    PolynomialDecayLR,
    WarmUpLR,
)


class _SameSchedule:
    """A kernel constant that equals any schedule of the same class and arguments.

    Schedules hold Python floats only (frozen at construction), so equal ones compute the same
    lr: one compiled kernel serves every optimizer built with, say, ``CosineDecayLR(0.01, 0.1, 1000)``.
    """

    __slots__ = ("key", "schedule")

    def __init__(self, schedule: nn.Module) -> None:
        self.schedule = schedule
        frozen = schedule.__dict__.get("_frozen_names", ())
        self.key = (type(schedule), tuple((name, getattr(schedule, name)) for name in frozen))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SameSchedule) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __call__(self, global_step: Tensor) -> Tensor:
        return self.schedule(global_step)


def _schedule_lr(out: Tensor, global_step: Tensor, *, schedule: _SameSchedule) -> None:
    out.copy_(schedule(global_step).reshape(()).to(out.dtype))


def _static_lr(out: Tensor, lr: Tensor) -> None:
    out.copy_(ConstantLR.round_trip(lr).to(out.dtype))


#: Compile the lrs of CUDA groups too (tests switch it off to compare with the eager lrs).
COMPILED_ON_CUDA = True


def evaluate_lr(source: nn.Module, global_step: Tensor, out: Tensor) -> bool:
    """Write ``source(global_step)`` into ``out`` (0-d float32) with a compiled kernel.

    Returns False, writing nothing, where the source is not compiled (see the module docstring);
    the caller then evaluates it eagerly.
    """
    _DEVICES = ("cpu", "cuda") if COMPILED_ON_CUDA else ("cpu",)
    if out.device.type not in _DEVICES or torch.compiler.is_compiling():
        return False
    kind = type(source)
    constants: dict[str, Any] = {}
    if kind is TableLR:
        # One gather, no compile: a compiled kernel would specialise on the table's length.
        table = source.learning_rate
        if table.dtype != out.dtype or table.device != out.device or global_step.dim() != 1:
            return False
        extension = _native.step_extension()  # its C++ twin: no trip through the dispatcher
        if extension is None or not extension.gather(table, global_step, out):
            torch.index_select(table, 0, global_step.to(table.device), out=out.view(1))
        return True
    if kind is ConstantLR:
        extension = _native.step_extension()
        if extension is not None and extension.round_trip(source.lr, out):
            return True
        update, args = _static_lr, (out, source.lr)
    elif kind in _SCHEDULES:
        update, args = _schedule_lr, (out, global_step)
    else:
        return False
    if any(t.device != out.device or t.dim() > 1 for t in args):
        return False
    signature = tuple((t.dtype, t.dim()) for t in args)
    kept = _PREPARED.get(source)
    if kept is None or kept[0] != signature:
        if update is _schedule_lr:
            constants["schedule"] = _SameSchedule(source)
        kept = _PREPARED[source] = (signature, _kernel(update, constants, args, serial=True))
    kept[1](*args)
    return True


#: Each source's kernel, found once (the lookup builds keys that cost more than the call).
_PREPARED: weakref.WeakKeyDictionary[nn.Module, tuple[Any, CompiledUpdate]] = (
    weakref.WeakKeyDictionary()
)
