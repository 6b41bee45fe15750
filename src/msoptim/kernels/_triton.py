"""CUDA multi-tensor kernels (Triton): one launch updates every tensor of a call, exactly.

``fused=True`` on CUDA runs Momentum, SGD, Adam, AdamWeightDecay, Adagrad and RMSProp here, and
so does the default (``fused=None`` with ``foreach=None``, :func:`msoptim.kernels.use_fused`).
A per-tensor compiled kernel (:mod:`msoptim.kernels._fused`) costs a launch per tensor, which
``torch.optim``'s fused optimizers avoid by walking all of a group's tensors in one launch. These
kernels do the same: a call's tensors are described by a device table (each tensor's address per
list, its length, and a map from each program to its tensor and first element); a program updates
:data:`BLOCK` elements of one tensor. Per-tensor scalars (Adam's powers; the lr of Momentum, SGD,
Adam and AdamWeightDecay and AdamWeightDecay's weight decay) are lists of 1-element tensors whose
addresses the table holds too, so several groups with their own lrs share one launch (Momentum,
SGD, Adam, AdamWeightDecay).

Exactness: each float32 (and float64) operation of the reference is one IEEE round-to-nearest
operation here. Triton would otherwise contract ``a*b + c`` into fused multiply-adds and use
approximate division and square roots, so products and sums go through libdevice's ``*_rn``
functions (opaque to contraction), divisions and roots through the ``_rn`` forms, and the fused
multiply-adds of MindSpore's kernels through ``tl.fma``. ``tests/gpu`` compares every kernel with
the reference bit for bit on CUDA (parameters and state, mixed shapes with scalar remainders).

The table is kept per call site and rebuilt (one small host-to-device copy from pinned memory, no
sync) when an address changes: gradients freed and re-allocated between steps usually come back
at the same addresses. A table read while a CUDA graph was being captured is kept for the
process (and each address list it held then), so a graph's replays never read freed memory, even
after its call site's entry is replaced. Capture after warm-up steps, as
``torch.cuda.graphs`` asks.

What this module does not take runs the per-tensor path: tensors that are not float32, not
contiguous, not 16-byte aligned, or on several devices, and calls made while dynamo traces.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from msoptim.kernels._launch import MAX_PIECES

try:  # Triton ships with torch's CUDA builds; without it every call takes the per-tensor path
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = None

__all__ = [
    "BLOCK",
    "adagrad",
    "adam",
    "adam_weight_decay",
    "available",
    "clear_tables",
    "momentum",
    "rmsprop",
    "sgd",
    "steps_together",
]

#: Elements per Triton program (a multiple of MindSpore's 8-wide vector blocks).
BLOCK = 2048
#: Tensors per program of Adam's first launch (its powers and bias-corrected lrs).
POWERS_BLOCK = 1024
#: Launch options: libdevice without flushing subnormals to zero (Triton's default flushes them
#: in ``*_rn`` functions, where eager CUDA keeps them).
_OPTIONS: dict[str, Any] = {"enable_reflect_ftz": False}
#: Warps a program: 4, or as measured faster on an H100 (bench/RESULTS.md), by kernel name.
WARPS = 4
KERNEL_WARPS = {"_adam_kernel": 8, "_adam_weight_decay_kernel": 8, "_rmsprop_kernel": 8}
#: The most pieces MindSpore's RMSProp kernel is cut into (:func:`_launch.launch_chunks`), and
#: the tensors whose scalar-loop elements one program of its kernel updates.
RMSPROP_PIECES = MAX_PIECES
RMSPROP_TAIL_TENSORS = 16
#: Call sites whose tables are kept (least recently used dropped first).
_TABLE_LIMIT = 256
_STEP_EXTENSION: OrderedDict[tuple[Any, ...], _Table] = OrderedDict()
#: Tables read while a CUDA graph was captured: its replays read them for as long as it lives.
_CAPTURED: list[_Table] = []
_FLOAT32 = torch.float32
_DTYPE = operator.attrgetter("dtype")
_PLAIN_TYPES = frozenset((Tensor, torch.nn.Parameter))  # no subclass (DTensor): no plain memory
#: A per-tensor scalar: one 0-d float32 tensor for every tensor of a call, or one per tensor.
PerTensor = Tensor | Sequence[Tensor]


def available(tensors: Sequence[Tensor]) -> bool:
    """Triton is importable and ``tensors`` (non-empty) are on a CUDA GPU it compiles for (compute
    capability 7.0 or newer), outside dynamo."""
    return (
        triton is not None
        and bool(tensors)
        and tensors[0].is_cuda
        and _supported(tensors[0].device)
        and not torch.compiler.is_compiling()
    )


@functools.lru_cache(maxsize=16)
def _supported(device: torch.device) -> bool:
    return torch.cuda.get_device_capability(device) >= (7, 0)


class _Table:
    """The device-side description of one call's tensors (see the module docstring)."""

    def __init__(self, lists: Sequence[Sequence[Tensor]], addresses: list[list[int]]) -> None:
        device = lists[0][0].device
        self.numels = list(map(Tensor.numel, lists[0]))
        self.addresses_host = addresses
        self.refs = [list(map(weakref.ref, items)) for items in lists]
        self.count = len(self.numels)
        self.addresses = _upload(torch.tensor(addresses, dtype=torch.int64), device)
        numels = torch.tensor(self.numels, dtype=torch.int64)
        # Program i updates elements [start, start + BLOCK) of tensor block_tensor[i].
        per_tensor = (numels + BLOCK - 1) // BLOCK
        block_tensor = torch.repeat_interleave(torch.arange(self.count), per_tensor)
        first_block = torch.cumsum(per_tensor, 0) - per_tensor
        block_start = (torch.arange(len(block_tensor)) - first_block[block_tensor]) * BLOCK
        self.blocks = len(block_tensor)
        self.block_tensor = _upload(block_tensor.to(torch.int32), device)
        self.block_start = _upload(block_start, device)
        self.numels_device = _upload(numels, device)
        self.scratch = torch.empty(self.count, dtype=torch.float32, device=device)
        #: Address tables a captured CUDA graph may still read (kept alive with the table).
        self.captured: list[Tensor] = []

    def holds(self, index: int, items: Sequence[Tensor], addresses: list[int]) -> bool:
        """List ``index`` holds the tensors it held at the last call, at the same addresses."""
        return addresses == self.addresses_host[index] and all(
            map(operator.is_, items, map(operator.call, self.refs[index]))
        )

    def refresh(self, lists: Sequence[Sequence[Tensor]], addresses: list[list[int]]) -> None:
        self.addresses_host = addresses
        self.refs = [list(map(weakref.ref, items)) for items in lists]
        device = lists[0][0].device
        self.addresses = _upload(torch.tensor(addresses, dtype=torch.int64), device)


def _upload(host: Tensor, device: torch.device) -> Tensor:
    """``host`` on ``device`` without a sync: copied from pinned memory, asynchronously (torch's
    caching host allocator keeps the pinned block until the copy has read it)."""
    if device.type != "cuda":
        return host  # Triton's CPU interpreter (tests)
    return host.pin_memory().to(device, non_blocking=True)


def _lengths(lists: Sequence[Sequence[Tensor]], numels: list[int], scalar_lists: int):
    """The length each list must have per tensor: the parameters', 1 for the last
    ``scalar_lists`` lists (per-parameter 1-element tensors)."""
    count = len(lists)
    return [numels if i < count - scalar_lists else [1] * len(numels) for i in range(count)]


def _same_kind(items: Sequence[Tensor], numels: list[int]) -> bool:
    """Plain contiguous float32 tensors of these lengths (C-level passes: runs every step)."""
    return (
        set(map(type, items)) <= _PLAIN_TYPES
        and all(map(operator.is_, map(_DTYPE, items), itertools.repeat(_FLOAT32)))
        and all(map(Tensor.is_contiguous, items))
        and list(map(Tensor.numel, items)) == numels
    )


def _placed(lists: Sequence[Sequence[Tensor]], addresses: list[list[int]], scalar_lists: int):
    """On one device, the element-wise tensors 16-byte aligned (Triton's vector loads)."""
    device = lists[0][0].device
    if any(t.device != device for items in lists for t in items):
        return False
    return not any(a % 16 for column in addresses[: len(lists) - scalar_lists] for a in column)


def _table(name: str, lists: Sequence[Sequence[Tensor]], scalar_lists: int) -> _Table | None:
    """The kept table of this call site, checked (and refreshed) for these tensors; or None.

    Parameters and gradients are checked at every call (``p.data = ...`` can change a layout
    without a new object, and gradients are new objects); a state list that holds the same
    tensors at the same addresses as at the last call is taken as it is.
    """
    params = lists[0]
    numels = list(map(Tensor.numel, params))
    # The first state tensor tells apart two optimizers over the same parameters.
    state = lists[2][0] if len(lists) > 2 else None
    key = (name, len(lists), len(params), id(params[0]), id(params[-1]), id(state))
    table = _STEP_EXTENSION.get(key)
    if table is not None and table.numels != numels:
        table = None  # other parameters behind the same ids: a new table
    addresses = [list(map(Tensor.data_ptr, items)) for items in lists]
    lengths = _lengths(lists, numels, scalar_lists)
    for index, items in enumerate(lists):
        if index >= 2 and table is not None and table.holds(index, items, addresses[index]):
            continue
        if not _same_kind(items, lengths[index]):
            return None
    if not all(numels):
        return None
    if table is not None and addresses == table.addresses_host:
        _STEP_EXTENSION.move_to_end(key)
        return table
    if not _placed(lists, addresses, scalar_lists):
        return None
    if table is not None:  # new addresses (new gradients, say): the same table, refreshed
        table.refresh(lists, addresses)
        _STEP_EXTENSION.move_to_end(key)
        return table
    table = _STEP_EXTENSION[key] = _Table(lists, addresses)
    while len(_STEP_EXTENSION) > _TABLE_LIMIT:
        _STEP_EXTENSION.popitem(last=False)
    return table


def _bump_versions(lists: Sequence[Sequence[Tensor]], written: Sequence[int]) -> None:
    torch._C._increment_version([t for i in written for t in lists[i]])


# ------------------------------------------------------------------------------------ kernels

if triton is not None:
    _INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
    if _INTERPRET:  # Triton's CPU interpreter has no libdevice (numpy rounds each op anyway)

        @triton.jit
        def _mul(a, b):
            return a * b

        @triton.jit
        def _add(a, b):
            return a + b

        @triton.jit
        def _sub(a, b):
            return a - b

        @triton.jit
        def _div(a, b):
            return a / b

        @triton.jit
        def _sqrt(a):
            return tl.sqrt(a)

    else:
        from triton.language.extra import libdevice

        @triton.jit
        def _mul(a, b):
            return libdevice.mul_rn(a, b)

        @triton.jit
        def _add(a, b):
            return libdevice.add_rn(a, b)

        @triton.jit
        def _sub(a, b):
            return libdevice.sub_rn(a, b)

        @triton.jit
        def _div(a, b):
            return libdevice.div_rn(a, b)

        @triton.jit
        def _sqrt(a):
            return libdevice.sqrt_rn(a)

    @triton.jit
    def _pointer(addresses, column, count, t):
        address = tl.load(addresses + column * count + t)
        return tl.multiple_of(address.to(tl.pointer_type(tl.float32)), 16)

    @triton.jit
    def _scalar(addresses, column, count, t):
        """The float32 value of tensor ``t``'s entry in a per-tensor scalar column (its group's
        lr, say: any 4-byte aligned address)."""
        return tl.load(tl.load(addresses + column * count + t).to(tl.pointer_type(tl.float32)))

    @triton.jit
    def _locate(block_tensor, block_start, numels, BLOCK: tl.constexpr):
        """This program's tensor, its length, the positions of its elements and whether its block
        is whole (no mask: vector loads) or the tensor's last one."""
        return _locate_block(tl.program_id(0), block_tensor, block_start, numels, BLOCK)

    @triton.jit
    def _locate_block(block, block_tensor, block_start, numels, BLOCK: tl.constexpr):
        t = tl.load(block_tensor + block)
        start = tl.multiple_of(tl.load(block_start + block), BLOCK)
        n = tl.load(numels + t)
        return t, n, start + tl.arange(0, BLOCK), start + BLOCK <= n

    @triton.jit
    def _load(pointer, offs, n, MASKED: tl.constexpr):
        if MASKED:
            return tl.load(pointer, mask=offs < n)
        else:
            return tl.load(pointer)

    @triton.jit
    def _store(pointer, offs, n, value, MASKED: tl.constexpr):
        if MASKED:
            tl.store(pointer, value, mask=offs < n)
        else:
            tl.store(pointer, value)

    # Momentum: columns (w, g, m, lr) --------------------------------------------------------

    @triton.jit
    def _momentum_block(
        table, count, t, offs, n, lr, momentum, NESTEROV: tl.constexpr, MASKED: tl.constexpr
    ):
        p0 = _pointer(table, 0, count, t) + offs
        p1 = _pointer(table, 1, count, t) + offs
        p2 = _pointer(table, 2, count, t) + offs
        w = _load(p0, offs, n, MASKED)  # every load before any store: they may overlap freely
        g = _load(p1, offs, n, MASKED)
        new_m = _add(_mul(_load(p2, offs, n, MASKED), momentum), g)
        if NESTEROV:
            step = _mul(_add(g, _mul(new_m, momentum)), lr)
        else:
            step = _mul(new_m, lr)
        _store(p2, offs, n, new_m, MASKED)
        _store(p0, offs, n, _sub(w, step), MASKED)

    @triton.jit
    def _momentum_kernel(
        table,
        count,
        block_tensor,
        block_start,
        numels,
        momentum,
        NESTEROV: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        t, n, offs, whole = _locate(block_tensor, block_start, numels, BLOCK)
        lr = _scalar(table, 3, count, t)
        if whole:
            _momentum_block(table, count, t, offs, n, lr, momentum, NESTEROV, False)
        else:
            _momentum_block(table, count, t, offs, n, lr, momentum, NESTEROV, True)

    # SGD: columns (w, g, accum, stat, lr) ---------------------------------------------------

    @triton.jit
    def _sgd_block(
        table,
        count,
        t,
        offs,
        n,
        lr,
        momentum,
        keep,
        MOMENTUM: tl.constexpr,
        DAMPENED: tl.constexpr,
        NESTEROV: tl.constexpr,
        MASKED: tl.constexpr,
    ):
        p0 = _pointer(table, 0, count, t) + offs
        p1 = _pointer(table, 1, count, t) + offs
        p2 = _pointer(table, 2, count, t) + offs
        p3 = _pointer(table, 3, count, t) + offs
        w = _load(p0, offs, n, MASKED)
        g = _load(p1, offs, n, MASKED)
        if MOMENTUM:
            accum = _load(p2, offs, n, MASKED)
            if DAMPENED:  # float32, each product rounded: ``keep`` is ``1 - dampening``
                updated = _add(_mul(accum, momentum), _mul(keep, g))
            else:
                updated = _add(_mul(accum, momentum), g)
            first = _load(p3, offs, n, MASKED) > 0
            accum = tl.where(first, g, updated)
            _store(p2, offs, n, accum, MASKED)
            _store(p3, offs, n, tl.zeros_like(g), MASKED)
            if NESTEROV:
                direction = _add(g, _mul(accum, momentum))
            else:
                direction = accum
        else:
            direction = g
        _store(p0, offs, n, _sub(w, _mul(direction, lr)), MASKED)

    @triton.jit
    def _sgd_kernel(
        table,
        count,
        block_tensor,
        block_start,
        numels,
        keep,
        momentum,
        MOMENTUM: tl.constexpr,
        DAMPENED: tl.constexpr,
        NESTEROV: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        t, n, offs, whole = _locate(block_tensor, block_start, numels, BLOCK)
        lr = _scalar(table, 4, count, t)
        if whole:
            _sgd_block(
                table, count, t, offs, n, lr, momentum, keep, MOMENTUM, DAMPENED, NESTEROV, False
            )
        else:
            _sgd_block(
                table, count, t, offs, n, lr, momentum, keep, MOMENTUM, DAMPENED, NESTEROV, True
            )

    # Adagrad: columns (w, g, accum) ---------------------------------------------------------

    @triton.jit
    def _adagrad_block(
        table, count, t, offs, n, lr, UPDATE_SLOTS: tl.constexpr, MASKED: tl.constexpr
    ):
        p0 = _pointer(table, 0, count, t) + offs
        p1 = _pointer(table, 1, count, t) + offs
        p2 = _pointer(table, 2, count, t) + offs
        w = _load(p0, offs, n, MASKED)
        g = _load(p1, offs, n, MASKED)
        accum = _load(p2, offs, n, MASKED)
        if UPDATE_SLOTS:
            accum = _add(accum, _mul(g, g))
            _store(p2, offs, n, accum, MASKED)
        root = _sqrt(_add(accum, 1e-08))  # the CPU kernel's hidden epsilon (float32 1e-8)
        step = _mul(_mul(g, lr), _div(tl.full(g.shape, 1.0, tl.float32), root))
        _store(p0, offs, n, _sub(w, step), MASKED)

    @triton.jit
    def _adagrad_kernel(
        table,
        count,
        block_tensor,
        block_start,
        numels,
        lr_ptr,
        UPDATE_SLOTS: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        t, n, offs, whole = _locate(block_tensor, block_start, numels, BLOCK)
        lr = tl.load(lr_ptr)
        if whole:
            _adagrad_block(table, count, t, offs, n, lr, UPDATE_SLOTS, False)
        else:
            _adagrad_block(table, count, t, offs, n, lr, UPDATE_SLOTS, True)

    # RMSProp: columns (w, g, mean_square, moment[, mean_grad]) ------------------------------
    #
    # MindSpore's (uncentered) kernel rounds differently in its scalar loop, the last length % 8
    # elements of each of its ``chunks`` pieces (at most MAX_PIECES): double arithmetic, eps
    # inside the root. The first programs update those few elements (TAIL_TENSORS tensors each),
    # the block programs after them every other element in float32. Kept apart, the block
    # programs carry no float64 registers (one kernel with both forms: 61-67% of copy).

    @triton.jit
    def _rmsprop_vector_loop(g, ms, moment, lr, rate, momentum, epsilon):
        new_ms = tl.fma(tl.fma(g, g, -ms), rate, ms)
        step = _div(_mul(g, lr), _add(_sqrt(new_ms), epsilon))
        return new_ms, tl.fma(moment, momentum, step)

    @triton.jit
    def _rmsprop_scalar_loop(g, ms, moment, lr, decay, momentum, epsilon):
        rate64 = 1.0 - tl.cast(decay, tl.float64)  # C++ ``1.0 - decay``: double
        difference = tl.fma(g, g, -ms).to(tl.float64)
        new_ms = _add(ms.to(tl.float64), _mul(difference, rate64)).to(tl.float32)
        root = _sqrt(_add(new_ms, epsilon).to(tl.float64))
        step = _div(_mul(g, lr).to(tl.float64), root)
        new_moment = _add(_mul(moment, momentum).to(tl.float64), step)
        return new_ms, new_moment.to(tl.float32)

    @triton.jit
    def _rmsprop_apply(
        table, count, t, offs, mask, lr, rate, decay, momentum, epsilon, SCALAR_LOOP: tl.constexpr
    ):
        """Uncentered RMSProp on the elements ``offs`` of tensor ``t`` where ``mask`` holds
        (``mask`` None: all of them)."""
        p0 = _pointer(table, 0, count, t) + offs
        p2 = _pointer(table, 2, count, t) + offs
        p3 = _pointer(table, 3, count, t) + offs
        g = tl.load(_pointer(table, 1, count, t) + offs, mask=mask)
        ms = tl.load(p2, mask=mask)
        moment = tl.load(p3, mask=mask)
        w = tl.load(p0, mask=mask)
        if SCALAR_LOOP:
            ms, moment = _rmsprop_scalar_loop(g, ms, moment, lr, decay, momentum, epsilon)
        else:
            ms, moment = _rmsprop_vector_loop(g, ms, moment, lr, rate, momentum, epsilon)
        tl.store(p2, ms, mask=mask)
        tl.store(p3, moment, mask=mask)
        tl.store(p0, _sub(w, moment), mask=mask)

    @triton.jit
    def _in_scalar_loop(offs, n, size):
        """Which of ``offs`` fall in a piece's last ``length % 8`` (pieces of ``size``)."""
        start = offs - offs % size
        length = tl.minimum(n - start, size)
        return offs - start >= length - length % 8

    @triton.jit
    def _rmsprop_tail_program(
        table,
        count,
        program,
        n_ptr,
        lr,
        chunks,
        decay,
        momentum,
        epsilon,
        MAX_PIECES: tl.constexpr,
        TAIL_TENSORS: tl.constexpr,
    ):
        """Scalar-loop elements of tensors [program * TAIL_TENSORS, ...): 8 lanes a piece."""
        lane = tl.arange(0, TAIL_TENSORS * MAX_PIECES * 8)
        t = program * TAIL_TENSORS + lane // (MAX_PIECES * 8)
        real = t < count
        t = tl.minimum(t, count - 1)  # lanes past the last tensor read a real table entry
        piece = lane // 8 % MAX_PIECES
        n = tl.load(n_ptr + t)
        size = (n + chunks - 1) // chunks
        length = tl.minimum(n - piece * size, size)  # <= 0 for a piece past the last
        offs = piece * size + length - length % 8 + lane % 8
        mask = real & (length > 0) & (lane % 8 < length % 8)
        _rmsprop_apply(table, count, t, offs, mask, lr, 0.0, decay, momentum, epsilon, True)

    @triton.jit
    def _rmsprop_centered_block(
        table, count, t, offs, n, lr, rate, momentum, epsilon, MASKED: tl.constexpr
    ):
        p0 = _pointer(table, 0, count, t) + offs
        p1 = _pointer(table, 1, count, t) + offs
        p2 = _pointer(table, 2, count, t) + offs
        p3 = _pointer(table, 3, count, t) + offs
        p4 = _pointer(table, 4, count, t) + offs
        g = _load(p1, offs, n, MASKED)
        ms = _load(p2, offs, n, MASKED)
        moment = _load(p3, offs, n, MASKED)
        w = _load(p0, offs, n, MASKED)
        mg = _load(p4, offs, n, MASKED)
        ms = _add(ms, _mul(_sub(_mul(g, g), ms), rate))  # plain float32, one rounding an op
        mg = _add(mg, _mul(_sub(g, mg), rate))
        denom = _add(_sub(ms, _mul(mg, mg)), epsilon)
        positive = denom > 0
        updated = _add(_mul(moment, momentum), _div(_mul(g, lr), _sqrt(denom)))
        moment = tl.where(positive, updated, moment)
        _store(p4, offs, n, mg, MASKED)
        _store(p2, offs, n, ms, MASKED)
        _store(p3, offs, n, moment, MASKED)
        _store(p0, offs, n, tl.where(positive, _sub(w, moment), w), MASKED)

    @triton.jit
    def _rmsprop_kernel(
        table,
        count,
        block_tensor,
        block_start,
        numels,
        lr_ptr,
        chunks_ptr,
        rate,
        decay,
        momentum,
        epsilon,
        CENTERED: tl.constexpr,
        MAX_PIECES: tl.constexpr,
        TAIL_TENSORS: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        lr = tl.load(lr_ptr)
        if CENTERED:
            t, n, offs, whole = _locate(block_tensor, block_start, numels, BLOCK)
            if whole:
                _rmsprop_centered_block(
                    table, count, t, offs, n, lr, rate, momentum, epsilon, False
                )
            else:
                _rmsprop_centered_block(table, count, t, offs, n, lr, rate, momentum, epsilon, True)
        else:
            chunks = tl.load(chunks_ptr).to(tl.int32)
            pid = tl.program_id(0)
            tails = tl.cdiv(count, TAIL_TENSORS)
            if pid < tails:
                _rmsprop_tail_program(
                    table,
                    count,
                    pid,
                    numels,
                    lr,
                    chunks,
                    decay,
                    momentum,
                    epsilon,
                    MAX_PIECES,
                    TAIL_TENSORS,
                )
            else:
                t, n, offs, whole = _locate_block(
                    pid - tails, block_tensor, block_start, numels, BLOCK
                )
                size = (n + chunks - 1) // chunks
                first = tl.load(block_start + pid - tails)
                last = tl.minimum(first + BLOCK, n) - 1
                # A piece ends in this block, or this block ends in a piece's last length % 8
                # (a cheap, scalar over-estimate of "holds scalar-loop elements").
                piece = last // size
                piece_end = tl.minimum(piece * size + size, n)
                tail_start = piece_end - (piece_end - piece * size) % 8
                if whole and first // size == piece and last < tail_start:
                    _rmsprop_apply(
                        table, count, t, offs, None, lr, rate, decay, momentum, epsilon, False
                    )
                else:
                    mask = (offs < n) & ~_in_scalar_loop(offs, n, size)
                    _rmsprop_apply(
                        table, count, t, offs, mask, lr, rate, decay, momentum, epsilon, False
                    )

    # Adam: columns (w, g, m, v, beta1_power, beta2_power, lr) ------------------------------

    @triton.jit
    def _adam_moments(g, m, v, beta1c, beta2c):
        new_m = tl.fma(_sub(g, m), beta1c, m)
        new_v = tl.fma(tl.fma(g, g, -v), beta2c, v)
        return new_m, new_v

    @triton.jit
    def _adam_powers_kernel(table, count, lr_t_ptr, beta1, beta2, BLOCK: tl.constexpr):
        """Advance every tensor's powers and write its bias-corrected lr (before the update)."""
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < count
        p1 = tl.load(table + 4 * count + offs, mask=mask, other=0).to(tl.pointer_type(tl.float32))
        p2 = tl.load(table + 5 * count + offs, mask=mask, other=0).to(tl.pointer_type(tl.float32))
        p3 = tl.load(table + 6 * count + offs, mask=mask, other=0).to(tl.pointer_type(tl.float32))
        b1 = _mul(tl.load(p1, mask=mask), beta1)
        b2 = _mul(tl.load(p2, mask=mask), beta2)
        tl.store(p1, b1, mask=mask)
        tl.store(p2, b2, mask=mask)
        lr = tl.load(p3, mask=mask)
        lr_t = _div(_mul(lr, _sqrt(_sub(1.0, b2))), _sub(1.0, b1))
        tl.store(lr_t_ptr + offs, lr_t, mask=mask)

    @triton.jit
    def _adam_block(
        p0,
        p1,
        p2,
        p3,
        offs,
        n,
        lr_t,
        beta1,
        beta1c,
        beta2c,
        eps,
        NESTEROV: tl.constexpr,
        MASKED: tl.constexpr,
    ):
        w = _load(p0, offs, n, MASKED)
        g = _load(p1, offs, n, MASKED)
        new_m, new_v = _adam_moments(
            g,
            _load(p2, offs, n, MASKED),
            _load(p3, offs, n, MASKED),
            beta1c,
            beta2c,
        )
        if NESTEROV:
            numerator = tl.fma(g, beta1c, _mul(new_m, beta1))
        else:
            numerator = new_m
        scaled = _mul(lr_t, numerator)
        new_w = _sub(w, _div(scaled, _add(_sqrt(new_v), eps)))
        if MASKED:  # the tensor's last block holds its scalar remainder (the last n % 8 elements)
            if NESTEROV:  # the scalar loop's compiler fused the other product
                scaled = _mul(lr_t, tl.fma(new_m, beta1, _mul(g, beta1c)))
            root = _sqrt(new_v.to(tl.float64))
            wide = _sub(
                w.to(tl.float64), _div(scaled.to(tl.float64), _add(root, tl.cast(eps, tl.float64)))
            )
            new_w = tl.where(offs >= n - n % 8, wide.to(tl.float32), new_w)
        _store(p2, offs, n, new_m, MASKED)
        _store(p3, offs, n, new_v, MASKED)
        _store(p0, offs, n, new_w, MASKED)

    @triton.jit
    def _adam_kernel(
        table,
        count,
        block_tensor,
        block_start,
        numels,
        lr_t_ptr,
        beta1,
        beta1c,
        beta2c,
        eps,
        NESTEROV: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        t, n, offs, whole = _locate(block_tensor, block_start, numels, BLOCK)
        # The addresses are loaded before the branch, with the length (the layout measured on
        # the H100; the 10% once put down to it was where the buffers lie: bench/RESULTS.md).
        p0 = _pointer(table, 0, count, t) + offs
        p1 = _pointer(table, 1, count, t) + offs
        p2 = _pointer(table, 2, count, t) + offs
        p3 = _pointer(table, 3, count, t) + offs
        lr_t = tl.load(lr_t_ptr + t)
        if whole:  # n % 8 == 0 is not known here, but a whole block never holds the remainder
            _adam_block(p0, p1, p2, p3, offs, n, lr_t, beta1, beta1c, beta2c, eps, NESTEROV, False)
        else:
            _adam_block(p0, p1, p2, p3, offs, n, lr_t, beta1, beta1c, beta2c, eps, NESTEROV, True)

    # AdamWeightDecay: columns (w, g, m, v, lr, weight_decay) --------------------------------

    @triton.jit
    def _adam_weight_decay_block(
        table, count, t, offs, n, lr, decay, beta1c, beta2c, eps, MASKED: tl.constexpr
    ):
        p0 = _pointer(table, 0, count, t) + offs
        p1 = _pointer(table, 1, count, t) + offs
        p2 = _pointer(table, 2, count, t) + offs
        p3 = _pointer(table, 3, count, t) + offs
        w = _load(p0, offs, n, MASKED)
        new_m, new_v = _adam_moments(
            _load(p1, offs, n, MASKED),
            _load(p2, offs, n, MASKED),
            _load(p3, offs, n, MASKED),
            beta1c,
            beta2c,
        )
        # The update in float64, rounded once (MindSpore's CPU kernel); ``decay * w`` is float32.
        root = _sqrt(new_v.to(tl.float64))
        ratio = _div(new_m.to(tl.float64), _add(root, tl.cast(eps, tl.float64)))
        update = _add(ratio, _mul(decay, w).to(tl.float64))
        new_w = _sub(w.to(tl.float64), _mul(lr.to(tl.float64), update)).to(tl.float32)
        _store(p2, offs, n, new_m, MASKED)
        _store(p3, offs, n, new_v, MASKED)
        _store(p0, offs, n, new_w, MASKED)

    @triton.jit
    def _adam_weight_decay_kernel(
        table,
        count,
        block_tensor,
        block_start,
        numels,
        beta1c,
        beta2c,
        eps,
        BLOCK: tl.constexpr,
    ):
        t, n, offs, whole = _locate(block_tensor, block_start, numels, BLOCK)
        lr = _scalar(table, 4, count, t)
        decay = _scalar(table, 5, count, t)
        if whole:
            _adam_weight_decay_block(
                table, count, t, offs, n, lr, decay, beta1c, beta2c, eps, False
            )
        else:
            _adam_weight_decay_block(table, count, t, offs, n, lr, decay, beta1c, beta2c, eps, True)


# ------------------------------------------------------------------------------------ entry points


def _launch(
    table: _Table | None,
    kernel: Any,
    lists: Sequence[Sequence[Tensor]],
    written: tuple[int, ...],
    scalars: Sequence[Tensor],
    *args: Any,
    tail_tensors: int = 0,
    **constexprs: Any,
) -> bool:
    """One launch of ``kernel`` over the call's ``table``; False (nothing done) without one.

    ``scalars``: 0-d float32 tensors the kernel reads (the lr, ...), passed first after the table;
    ``args``: Python floats (float32 values) and scratch tensors, passed after them. The grid has
    a program per block, after a program per ``tail_tensors`` tensors (if given).
    """
    if table is None or not all(_scalar_ok(value, lists) for value in scalars):
        return False
    arguments = (table.addresses, table.count, table.block_tensor, table.block_start)
    tails = triton.cdiv(table.count, tail_tensors) if tail_tensors else 0
    grid = (tails + table.blocks,)
    _run(
        kernel,
        grid,
        *arguments,
        table.numels_device,
        *scalars,
        *args,
        BLOCK=BLOCK,
        **constexprs,
    )
    _remember_capture(table)
    _bump_versions(lists, written)
    return True


def warps(kernel: Any) -> int:
    """The warps a program of ``kernel`` (a Triton function) runs with."""
    return KERNEL_WARPS.get(_name(kernel), WARPS)


def _name(kernel: Any) -> str:
    return getattr(getattr(kernel, "fn", kernel), "__name__", "kernel")


def _run(kernel: Any, grid: tuple[int], *args: Any, **constexprs: Any) -> None:
    """Launch (compiling on first use) with a clear error if Triton cannot build the kernel."""
    try:
        kernel[grid](*args, **constexprs, num_warps=warps(kernel), **_OPTIONS)
    except Exception as error:
        name = _name(kernel)
        raise RuntimeError(
            f"msoptim: the CUDA multi-tensor kernel {name!r} failed to compile or run "
            f"({type(error).__name__}: {error}). It needs Triton and a GPU it supports; pass "
            "fused=False (or foreach=True) to the optimizer to use the uncompiled kernels."
        ) from error


def momentum(
    lists: Sequence[Sequence[Tensor]], lr: PerTensor, *, momentum: float, nesterov: bool
) -> bool:
    """MindSpore ``ApplyMomentum`` over ``(params, grads, moments)``; False if not taken here.
    ``lr``: one 0-d tensor, or one per parameter (several groups in one launch)."""
    lists = (*lists, _per_tensor(lr, lists))
    table = _table("momentum", lists, 1)
    return _launch(table, _momentum_kernel, lists, (0, 2), (), momentum, NESTEROV=nesterov)


def sgd(
    lists: Sequence[Sequence[Tensor]],
    lr: PerTensor,
    *,
    momentum: float,
    keep: float,
    nesterov: bool,
) -> bool:
    """MindSpore ``SGD`` over ``(params, grads, accums, stats)``; ``keep``: ``1 - dampening`` as
    a float32 value (:func:`msoptim.kernels.sgd.sgd_fused`); ``lr``: one 0-d tensor, or one per
    parameter (several groups in one launch)."""
    written = (0, 2, 3) if momentum > 0 else (0,)
    flags = {"MOMENTUM": momentum > 0, "DAMPENED": keep != 1.0, "NESTEROV": nesterov}
    lists = (*lists, _per_tensor(lr, lists))
    table = _table("sgd", lists, 1)
    return _launch(table, _sgd_kernel, lists, written, (), keep, momentum, **flags)


def adagrad(lists: Sequence[Sequence[Tensor]], lr: Tensor, *, update_slots: bool) -> bool:
    """MindSpore ``ApplyAdagrad`` over ``(params, grads, accums)``."""
    written = (0, 2) if update_slots else (0,)
    table = _table("adagrad", lists, 0)
    return _launch(table, _adagrad_kernel, lists, written, (lr,), UPDATE_SLOTS=update_slots)


def rmsprop(
    lists: Sequence[Sequence[Tensor]],
    lr: Tensor,
    chunks: Tensor,
    *,
    rate: float,
    decay: float,
    momentum: float,
    epsilon: float,
) -> bool:
    """MindSpore ``ApplyRMSProp`` over ``(params, grads, mean_squares, moments)``, or
    ``ApplyCenteredRMSProp`` with ``mean_grads`` as a fifth list (``chunks``: the pieces of
    MindSpore's kernel at this step, :func:`msoptim.kernels._launch.launch_chunks`; ``decay``
    as a float32 value, for the scalar loop's double ``1.0 - decay``)."""
    centered = len(lists) == 5
    written = (0, 2, 3, 4) if centered else (0, 2, 3)
    table = _table("rmsprop", lists, 0)
    scalars = (lr, chunks)
    hyper = (rate, decay, momentum, epsilon)
    return _launch(
        table,
        _rmsprop_kernel,
        lists,
        written,
        scalars,
        *hyper,
        tail_tensors=0 if centered else RMSPROP_TAIL_TENSORS,
        CENTERED=centered,
        MAX_PIECES=RMSPROP_PIECES,
        TAIL_TENSORS=RMSPROP_TAIL_TENSORS,
    )


def adam(
    lists: Sequence[Sequence[Tensor]],
    lr: PerTensor,
    *,
    beta1: float,
    beta2: float,
    beta1c: float,
    beta2c: float,
    eps: float,
    nesterov: bool,
) -> bool:
    """MindSpore ``Adam`` over ``(params, grads, m, v, beta1_powers, beta2_powers)``: one launch
    advances the powers and writes each tensor's bias-corrected lr, a second updates. ``lr``: one
    0-d tensor, or one per parameter."""
    lists = (*lists, _per_tensor(lr, lists))
    table = _table("adam", lists, 3)
    if table is None:
        return False
    grid = (triton.cdiv(table.count, POWERS_BLOCK),)
    arguments = (table.addresses, table.count, table.scratch, beta1, beta2)
    _run(_adam_powers_kernel, grid, *arguments, BLOCK=POWERS_BLOCK)
    return _launch(
        table,
        _adam_kernel,
        lists,
        (0, 2, 3, 4, 5),
        (),
        table.scratch,
        beta1,
        beta1c,
        beta2c,
        eps,
        NESTEROV=nesterov,
    )


def adam_weight_decay(
    lists: Sequence[Sequence[Tensor]],
    lr: PerTensor,
    weight_decay: PerTensor,
    *,
    beta1c: float,
    beta2c: float,
    eps: float,
) -> bool:
    """MindSpore ``AdamWeightDecay`` over ``(params, grads, m, v)``; ``lr`` and ``weight_decay``:
    a 0-d tensor each, or one per parameter."""
    lists = (*lists, _per_tensor(lr, lists), _per_tensor(weight_decay, lists))
    table = _table("adam_weight_decay", lists, 2)
    written = (0, 2, 3)
    return _launch(table, _adam_weight_decay_kernel, lists, written, (), beta1c, beta2c, eps)


def steps_together(launch: Callable[[], bool], params: Sequence[Tensor]) -> list[int]:
    """The positions a launch over several groups' ``params`` left for their groups' own kernels:
    none when ``launch()`` ran, every one when Triton cannot run here or the launch declined (a
    tensor it cannot take)."""
    taken = available(params) and launch()
    return [] if taken else list(range(len(params)))


def _per_tensor(value: PerTensor, lists: Sequence[Sequence[Tensor]]) -> Sequence[Tensor]:
    """A per-tensor scalar column: ``value`` itself, or a 0-d ``value`` repeated for every tensor."""
    return [value] * len(lists[0]) if isinstance(value, Tensor) else value


def _scalar_ok(value: Tensor, lists: Sequence[Sequence[Tensor]]) -> bool:
    return value.dtype == _FLOAT32 and value.numel() == 1 and value.device == lists[0][0].device


def _capturing() -> bool:
    """A CUDA graph is being captured on the current stream."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def _remember_capture(table: _Table) -> None:
    if not _capturing():
        return
    if not any(kept is table.addresses for kept in table.captured):
        table.captured.append(table.addresses)
    if not any(kept is table for kept in _CAPTURED):
        _CAPTURED.append(table)


def clear_tables() -> None:
    """Forget every kept table (tests)."""
    _STEP_EXTENSION.clear()
