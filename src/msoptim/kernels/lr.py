"""Group learning rates of a fused step, evaluated by compiled kernels.

Fused: ``fused=True``, or on CUDA the default of an optimizer whose step is a multi-tensor
Triton kernel there (Momentum, SGD, the Adam family, AdamWeightDecay, Adagrad, RMSProp).

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

On CUDA every group's lr of a step is one launch (:func:`evaluate_lrs`): one compiled kernel
writes them all (a graph's replay pays a launch per kernel, about 2.5 us on an H200, as much as
a third of a ResNet-50 group's update).

The tensors a source reads (a table, a static lr) are arguments of the kernel, never constants
baked into it, so replacing them is always seen.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from msoptim.kernels import _native
from msoptim.kernels._fused import CompiledUpdate, _kernel, exact_compile_options
from msoptim.lr_sources import ConstantLR, TableLR
from msoptim.schedules import (
    CosineDecayLR,
    ExponentialDecayLR,
    InverseDecayLR,
    NaturalExpDecayLR,
    PolynomialDecayLR,
    WarmUpLR,
)

__all__ = ["evaluate_lr", "evaluate_lrs"]

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


#: Inductor fuses kernels that share an input (``global_step``) and are worth it; these make it
#: fuse the unrelated 1-element writes of the groups' lrs into one kernel too.
GROUP_FUSION_OPTIONS: dict[str, Any] = {
    "aggressive_fusion": True,
    "score_fusion_memory_threshold": 0,
}
#: Devices whose groups' lrs are written by one compiled kernel a step (tests add the CPU).
ONE_KERNEL_DEVICES: tuple[str, ...] = ("cuda",)


def evaluate_lrs(
    sources: Sequence[nn.Module], global_step: Tensor, outs: Sequence[Tensor]
) -> list[bool]:
    """:func:`evaluate_lr` for several groups: which ``outs`` were written.

    On CUDA (:data:`ONE_KERNEL_DEVICES`) the compiled kinds of every group go in one kernel,
    one launch a step; elsewhere each source takes :func:`evaluate_lr`.
    """
    device = outs[0].device if outs else None
    if (
        device is None
        or device.type not in ONE_KERNEL_DEVICES
        or (device.type == "cuda" and not COMPILED_ON_CUDA)
        or torch.compiler.is_compiling()
    ):
        return [evaluate_lr(source, global_step, out) for source, out in zip(sources, outs)]
    plan, written, inputs, taken = [], [], [], []
    for source, out in zip(sources, outs):
        entry = _plan_entry(source, global_step, out)
        taken.append(entry is not None)
        if entry is None or any(out is other for other in written):
            continue  # an out two groups share (one static lr) is written once
        kind, value = entry
        plan.append(kind)
        written.append(out)
        if value is not None:
            inputs.append(value)
    if plan:
        kernel = _group_kernel(tuple(plan), written, global_step, inputs)
        try:
            kernel(*written, global_step, *inputs)
        except Exception as error:
            raise RuntimeError(
                f"msoptim: compiling the kernel of the groups' learning rates for "
                f"{global_step.device.type} failed ({type(error).__name__}: {error}). fused=True "
                "needs torch.compile's Inductor backend (on CUDA: Triton). Use fused=False (the "
                "reference kernels)."
            ) from error
    return taken


def _plan_entry(
    source: nn.Module, global_step: Tensor, out: Tensor
) -> tuple[tuple[str, Any], Tensor | None] | None:
    """How the group kernel writes ``source``'s lr into ``out`` (its kind, and the tensor it
    reads besides ``global_step``), or None (not compiled: the caller evaluates it eagerly)."""
    kind = type(source)
    device = out.device
    if out.dtype != torch.float32 or global_step.device != device:
        return None
    if kind is TableLR:
        table = source.learning_rate
        if table.dtype != out.dtype or table.device != device or global_step.dim() != 1:
            return None
        return ("table", None), table
    if kind is ConstantLR:
        lr = source.lr
        if lr.device != device or lr.dim() > 1:
            return None
        return ("static", None), lr
    if kind in _SCHEDULES and global_step.dim() <= 1:
        return ("schedule", _SameSchedule(source)), None
    return None


def _write_lrs(*tensors: Tensor, plan: tuple[tuple[str, Any], ...]) -> None:
    """Each group's lr into its out: ``tensors`` are the outs, ``global_step``, then the tensor
    each table or static entry of ``plan`` reads, in order."""
    count = len(plan)
    global_step = tensors[count]
    inputs = iter(tensors[count + 1 :])
    for out, (kind, schedule) in zip(tensors[:count], plan):
        if kind == "table":
            value = torch.index_select(next(inputs), 0, global_step)
        elif kind == "static":
            value = ConstantLR.round_trip(next(inputs))
        else:
            value = schedule(global_step)
        out.copy_(value.reshape(()).to(out.dtype))


def _group_kernel(
    plan: tuple[tuple[str, Any], ...],
    outs: list[Tensor],
    global_step: Tensor,
    inputs: list[Tensor],
) -> Any:
    """The compiled :func:`_write_lrs` for ``plan`` and these argument kinds (made once)."""
    key = (plan, *((t.device, t.dtype, t.shape) for t in (*outs, global_step, *inputs)))
    kernel = _GROUP_KERNELS.get(key)
    if kernel is None:

        def write(*tensors: Tensor) -> None:
            _write_lrs(*tensors, plan=plan)

        # A code object per kernel: dynamo's cache and recompile limit are per code object.
        name = f"group_lrs_kernel_{next(_GROUP_SERIAL)}"
        write.__code__ = write.__code__.replace(co_name=name, co_qualname=name)
        write.__name__ = write.__qualname__ = name
        options = exact_compile_options() if global_step.device.type == "cuda" else {}
        options.update(GROUP_FUSION_OPTIONS)
        kernel = _GROUP_KERNELS[key] = torch.compile(
            write, fullgraph=True, dynamic=False, options=options
        )
    return kernel


_GROUP_KERNELS: dict[tuple[Any, ...], Any] = {}
_GROUP_SERIAL = itertools.count()
