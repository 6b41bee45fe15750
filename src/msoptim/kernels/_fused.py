"""Compiled (``fused=True``) kernels: each optimizer's per-tensor math, compiled once by Inductor.

Every kernel module writes its update for ONE tensor once (``<optimizer>_update``): the reference
loop calls it eagerly, and :func:`fused_apply` calls the same function compiled. There is one
source of truth for the arithmetic; the tests compare the two bit for bit, state included.

How it runs (numbers in ``bench/RESULTS.md``):

* The update is compiled with ``torch.compile(dynamic=True, fullgraph=True)`` for 1-D float32
  tensors of any length, so a whole model needs one compiled kernel per optimizer configuration
  (two on CPU, see below), not one per shape. A multi-tensor graph over all the parameters runs at
  the same speed but compiles 10-15x longer (about a minute for ResNet-50).
* After the first call, the compiled code is called per tensor without the dynamo frame and its
  guards. The first call goes through ``torch.compile`` normally, and a small backend (Inductor's
  ``compile_fx`` with a hook on its inner compile) captures what it compiled. On CPU the Inductor
  C++ kernel itself is then called with each parameter's tensors (no view, no wrapper): about
  1.5 us per tensor, against about 75 us through ``torch.compile``'s front door. Each step
  down is verified when the kernel is first compiled and otherwise skipped: Inductor's Python
  wrapper (``call``, about 3 us), the AOT-autograd callable (about 15 us), the dynamo callable.
* A step of a call site that saw the same tensors before (the parameters and state buffers; the
  gradients may be new tensors of the same layout) runs from a kept plan: C-level passes over
  the lists check identities, dtypes, contiguity and lengths, then one loop calls each
  parameter's kernel. The Python work left per parameter is what slowed msoptim down next to
  ``torch.optim``'s C++ loops: run right after a large update has evicted the caches it costs
  several microseconds per parameter (about 1 ms a step on ResNet-50, 2 cores). A plan holds
  weak references only; anything it cannot vouch for goes down the general path.
* On CPU a small tensor (below :data:`PARALLEL_MIN_NUMEL` elements, like
  ``at::internal::GRAIN_SIZE`` in eager torch) runs a single-threaded build of the kernel: an
  OpenMP fork per small tensor costs more than its work, and on a loaded machine it costs
  milliseconds.
* Bit-exactness: Inductor's CPU C++ is built with ``-ffp-contract=off`` (no fused multiply-adds
  the source did not ask for) and without ``-funsafe-math-optimizations``, and on CPU it does not
  rewrite ``x / c`` as ``x * (1/c)``. Two forms differ from the eager reference, to the same bits:
  a correctly rounded float32 square root is one IEEE ``sqrt`` in a compiled kernel (torch's eager
  CPU ``sqrt`` is not correctly rounded, about 1 float32 result in 6 and 1 float64 result in 80
  are an ulp off, so the reference takes it in float64 and rounds once; see
  :func:`in_fused_kernel`), and MindSpore's fused multiply-adds (emulated exactly in float64
  eagerly) are one hardware FMA (:func:`fma`). Only float32 tensors are compiled (float64 would
  meet the eager float64 ``sqrt``). On CUDA the kernels are built with eager CUDA's rounding
  (:func:`exact_compile_options`: no FMA contraction, IEEE division), and Momentum, SGD, Adam,
  AdamWeightDecay, Adagrad and RMSProp run multi-tensor Triton kernels instead
  (:mod:`msoptim.kernels._triton`).
  Tested, not assumed (``tests/test_fast_path.py``, ``tests/gpu``).
* What the compiled kernel does not cover runs the same per-tensor update eagerly (the reference
  arithmetic): tensors of 0 or 1 element, dtypes other than float32, a tensor whose layout differs
  from its parameter's, devices other than CPU/CUDA, and calls made while dynamo traces
  (``torch.compile(opt.step)``: the caller's compiler then sees the plain math).

The first step pays the compile: 10-16 s with an empty Inductor cache on 2 CPU cores (most of it
Inductor's one-time set-up in a process), about 3 s with its on-disk cache warm, plus 0.2-2 s per
further optimizer configuration. That is why ``fused`` is opt-in (``fused=True``), as in
``torch.optim``: it pays back after a few hundred steps, but a script that runs ten steps, a test
suite and a doctest should not pay it unasked.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import sys
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "PARALLEL_MIN_NUMEL",
    "CompiledUpdate",
    "clear_cache",
    "compile_log",
    "cpu_inductor_options",
    "exact_compile_options",
    "fma",
    "fused_apply",
    "in_fused_kernel",
    "plain_float32",
]

#: On CPU, tensors with fewer elements run the single-threaded build of a compiled kernel.
PARALLEL_MIN_NUMEL = 32768
#: Longest tensor a compiled kernel takes (Inductor's CUDA kernels index with 32-bit integers);
#: a longer one runs the eager update.
INDEX_LIMIT = 2**31 - 1

_DEVICES = ("cpu", "cuda")
_PLAIN = (Tensor, torch.nn.Parameter)


def plain_float32(tensor: Tensor) -> bool:
    """A plain (not a subclass: no DTensor) float32 tensor, what a compiled kernel takes."""
    return type(tensor) in _PLAIN and tensor.dtype == torch.float32


_SERIAL = itertools.count()
_KERNELS: dict[tuple[Any, ...], CompiledUpdate] = {}
#: (update name, device, single-threaded, seconds) for every compile in this process.
_COMPILE_LOG: list[tuple[str, str, bool, float]] = []


@torch.library.custom_op("msoptim::fma", mutates_args=())
def fma(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """``a * b + c`` rounded once (IEEE fused multiply-add), float32; broadcasts.

    Eagerly it is :func:`msoptim.kernels.adam.fused_multiply_add` (an exact emulation); in a
    kernel compiled here it lowers to Inductor's ``fma`` op: one hardware FMA per element on CPU
    (``std::fma`` / ``at::vec::fmadd``) and CUDA (``tl.fma``), 2.5x faster than the
    emulation compiled (``tests/test_fast_path.py`` checks the two agree, ties and subnormals
    included). MindSpore's CPU kernels are compiled with FMA contraction, which this reproduces.
    """
    from msoptim.kernels.adam import fused_multiply_add

    a, b, c = torch.broadcast_tensors(a, b, c)
    return fused_multiply_add(a.contiguous(), b.contiguous(), c.contiguous())


@fma.register_fake
def _(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    return a.new_empty(torch.broadcast_shapes(a.shape, b.shape, c.shape))


_LOWERED: list[bool] = []


def _register_lowerings() -> None:
    """Inductor lowers ``msoptim::fma`` to its own ``fma`` op (registered once, before compiling;
    without it Inductor would call the eager emulation: correct, slower)."""
    if _LOWERED:
        return
    from torch._inductor import lowering
    from torch._inductor.virtualized import ops

    @lowering.register_lowering(torch.ops.msoptim.fma.default, broadcast=True)
    def _lower_fma(a: Any, b: Any, c: Any) -> Any:
        return lowering.make_pointwise(lambda x, y, z: ops.fma(x, y, z))(a, b, c)

    _LOWERED.append(True)


#: True while dynamo traces one of the kernels compiled here (always for Inductor).
_IN_FUSED_KERNEL = [False]


def in_fused_kernel() -> bool:
    """True while a kernel of this module is being traced for Inductor.

    Kernel modules use it to pick forms that are exact in Inductor's code but not eagerly: its
    float32 ``sqrt`` is IEEE (``vsqrtps`` on CPU, ``sqrt.rn`` on CUDA) where torch's eager CPU one
    is up to an ulp off, so a compiled kernel needs no float64 detour for a correctly rounded root.
    (Not ``torch.compiler.is_compiling()``: another backend, ``aot_eager`` say, would run the
    eager ``sqrt``.)
    """
    return _IN_FUSED_KERNEL[0]


def compile_log() -> list[tuple[str, str, bool, float]]:
    """``(update name, device type, single-threaded, seconds)`` of each compile so far."""
    return list(_COMPILE_LOG)


def clear_cache() -> None:
    """Forget the compiled kernels of this process (Inductor's on-disk cache stays)."""
    _KERNELS.clear()
    _COMPILE_LOG.clear()


#: Attribute of an update function: extra Inductor options for its CPU kernels.
_CPU_OPTIONS = "_msoptim_cpu_inductor_options"


def cpu_inductor_options(**options: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate an update function with Inductor options for its CPU kernels (e.g. a loop
    structure); the arithmetic must not depend on them (the tests compare with the reference)."""

    def mark(update: Callable[..., None]) -> Callable[..., None]:
        setattr(update, _CPU_OPTIONS, options)
        return update

    return mark


def _options(device: torch.device, serial: bool) -> dict[str, Any]:
    if device.type == "cuda":
        return exact_compile_options()
    if serial:
        return {"cpp.threads": 1}
    # Follow torch.get_num_threads() at run time instead of baking the compile-time count in.
    return {"cpp.dynamic_threads": True}


def exact_compile_options() -> dict[str, Any]:
    """Inductor options under which compiled CUDA code rounds as eager CUDA does, so a step or
    schedule compiled by ``torch.compile`` keeps MindSpore's bits: no ``a*b + c`` contracted into
    an FMA (``emulate_precision_casts``), IEEE division instead of Triton's ``div.full`` (an
    approximation; the option is ``eager_numerics.division_rounding``, spelled
    ``emulate_divison_rounding`` in torch 2.11), no flushing of subnormals where the option
    exists. msoptim compiles its own CUDA kernels with them; Inductor's CPU code needs none.

    With Inductor's defaults, a step compiled on CUDA is an ulp off MindSpore's at some values
    (measured on an H200: eight of ten schedule kinds at some of 1,504 steps).

    Example:
        >>> import torch, msoptim
        >>> schedule = msoptim.WarmUpLR(0.1, 500)
        >>> lr_at = torch.compile(schedule, options=msoptim.exact_compile_options())
        >>> round(float(lr_at(torch.tensor([250]))), 6)
        0.05
    """
    from torch._inductor import config

    options: dict[str, Any] = {"emulate_precision_casts": True}
    if hasattr(config, "eager_numerics"):
        options["eager_numerics.division_rounding"] = True
        if hasattr(config.eager_numerics, "disable_ftz"):
            options["eager_numerics.disable_ftz"] = True
    elif hasattr(config, "emulate_divison_rounding"):
        options["emulate_divison_rounding"] = True
    return options


@contextlib.contextmanager
def _tracing() -> Iterator[None]:
    _IN_FUSED_KERNEL[0] = True
    try:
        yield
    finally:
        _IN_FUSED_KERNEL[0] = False


def _picker(positions: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    getter = operator.itemgetter(*positions)
    if len(positions) == 1:
        return lambda values: (getter(values),)
    return getter


class CompiledUpdate:
    """One per-tensor update compiled for 1-D float32 tensors of any length.

    One instance per (update, constants, device, single-threaded, input kinds). Call it with the
    flattened tensors, then the per-parameter 0-d tensors, then the shared 0-d tensors, in the
    update's argument order. The first call compiles (and runs); later calls skip dynamo.
    """

    def __init__(
        self,
        update: Callable[..., None],
        constants: dict[str, Any],
        device: torch.device,
        serial: bool,
    ) -> None:
        self.name = getattr(update, "__name__", "update")
        self.device = device
        self.serial = serial
        self.compile_seconds: float | None = None
        self.compiled = False
        #: The Inductor C++ kernel (CPU) and the positions of its arguments in
        #: ``(numel, *args, *constants)``; args may then be the parameter's own (N-D) tensors.
        self.direct: Callable[..., Any] | None = None
        self.direct_pick: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None
        self.direct_positions: tuple[int, ...] = ()
        #: Dynamo-made constants (unspecialized float constants wrapped as 0-d tensors).
        self.constants: tuple[Any, ...] = ()
        #: Positions in ``args`` of the tensors the update writes (their versions are bumped).
        self.mutated: tuple[int, ...] = ()
        self._options = _options(device, serial)
        if device.type == "cpu":
            self._options.update(getattr(update, _CPU_OPTIONS, {}))
        self._raw: Callable[[list[Any]], Any] | None = None
        self._aot: Callable[..., Any] | None = None
        self._example: list[Any] | None = None
        self._pick: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None
        self._shape_guards: list[str] = []
        self._update, self._update_constants = update, constants

        def kernel(*tensors: Tensor) -> None:
            update(*tensors, **constants)

        # A code object of its own per kernel: dynamo keeps its cache (and its recompile limit,
        # 8) per code object, and every kernel here is a new compile, never a recompile.
        name = f"{self.name}_kernel_{next(_SERIAL)}"
        kernel.__code__ = kernel.__code__.replace(co_name=name, co_qualname=name)
        kernel.__name__ = kernel.__qualname__ = name
        self._compiled = torch.compile(kernel, backend=self._backend, dynamic=True, fullgraph=True)

    def _backend(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        from torch._inductor.compile_fx import compile_fx, compile_fx_inner

        _register_lowerings()
        captured: list[Any] = []

        def inner(*args: Any, **kwargs: Any) -> Any:
            output = compile_fx_inner(*args, **kwargs)
            captured.append(output)
            return output

        # AOT-autograd's cache would skip the inner compile (and so the capture); Inductor's FX
        # graph cache below it still makes a warm compile cheap.
        with torch._functorch.config.patch(enable_autograd_cache=False):
            aot = compile_fx(gm, example_inputs, inner_compile=inner, config_patches=self._options)
        # Skipping dynamo skips its guards: only safe when the graph holds for every length >= 2.
        # A guard on a length (a branch on numel % 8, say) keeps every call going through
        # dynamo, which checks it (and recompiles if needed).
        context = torch._guards.TracingContext.try_get()
        shape_env = getattr(getattr(context, "fake_mode", None), "shape_env", None)
        guards = getattr(shape_env, "guards", None)
        self._shape_guards = [
            str(guard.expr)
            for guard in guards or []
            # Guards on the float constants (``zf`` symbols: fixed per kernel) are harmless, and
            # the 32-bit indexing bound of a Triton kernel is checked by ``__call__``.
            if any(not symbol.name.startswith("zf") for symbol in guard.expr.free_symbols)
            and not _is_index_bound(guard.expr)
        ]
        if guards is None or self._shape_guards:
            return aot
        self._example = list(example_inputs)
        self._aot = aot
        raw = getattr(captured[0], "current_callable", None) if len(captured) == 1 else None
        self._raw = raw if callable(raw) else None
        return aot

    def __call__(self, *args: Tensor) -> None:
        """Run on 1-D tensors (and 0-d ones); the first call compiles."""
        if not self.compiled:
            self._first_call(args)
        elif args[0].numel() > INDEX_LIMIT:
            self._update(*args, **self._update_constants)  # past the graph's 32-bit indexing
        elif self.direct is not None and self.direct_pick is not None:
            self.direct(*self.direct_pick((args[0].numel(), *args, *self.constants)))
            torch._C._increment_version([args[index] for index in self.mutated])
        elif self._raw is not None and self._pick is not None:
            self._raw(list(self._pick((args[0].numel(), *args, *self.constants))))
            torch._C._increment_version([args[index] for index in self.mutated])
        elif self._aot is not None and self._pick is not None:
            self._aot(*self._pick((args[0].numel(), *args, *self.constants)))
        else:
            # The graph is only valid under guards (on a length, say): the eager update (the
            # reference arithmetic) is right for every call, with no recompile to run into.
            self._update(*args, **self._update_constants)

    def _first_call(self, args: Sequence[Tensor]) -> None:
        """Compile on fresh copies of ``args`` (at most 2**20 elements long), then run on ``args``.

        Fresh tensors (no view, no ``Parameter``) keep dynamo from guarding on what the
        arguments happen to be (a view's base and its sizes, say): the graph then holds for
        every 1-D float32 tensor of two or more elements, which is what lets later calls skip it.
        """
        numel = args[0].numel()
        length = min(numel, 1 << 20)
        sample = [
            t.detach()[:length].clone() if t.dim() == 1 and t.numel() == numel else t.clone()
            for t in args
        ]
        versions = [t._version for t in sample]
        start = time.perf_counter()
        try:
            with _tracing():
                self._compiled(*sample)
        except Exception as error:
            raise RuntimeError(
                f"msoptim: compiling the fused kernel {self.name!r} for {self.device.type} failed "
                f"({type(error).__name__}: {error}). fused=True needs torch.compile's Inductor "
                "backend (on CPU: a C++ compiler). Use fused=False (the reference kernels)."
            ) from error
        self.compile_seconds = time.perf_counter() - start
        self.compiled = True
        _COMPILE_LOG.append((self.name, self.device.type, self.serial, self.compile_seconds))
        self.mutated = tuple(i for i, (t, v) in enumerate(zip(sample, versions)) if t._version != v)
        example, self._example = self._example, None
        positions = self._positions(example, sample)
        if positions is None:
            self._raw = self._aot = None  # keep calling through dynamo: correct, just slower
        else:
            self._pick = _picker(positions)
            if self._raw is not None and self.device.type == "cpu":
                self._find_direct_kernel(sample)
        self(*args)

    def _positions(self, example: list[Any] | None, args: Sequence[Tensor]) -> list[int] | None:
        """The compiled graph's inputs as positions in ``(numel, *args, *constants)``."""
        if not example:
            return None
        positions: list[int] = []
        constants: list[Any] = []
        numel = args[0].numel()
        for value in example:
            if isinstance(value, torch.SymInt):
                # Only the common length of the flat tensors is passed (as their numel); any
                # other size (a table's length, say) keeps the call going through dynamo.
                if getattr(value.node, "hint", None) != numel:
                    return None
                positions.append(0)
                continue
            if not isinstance(value, Tensor):
                return None
            index = next((i for i, t in enumerate(args) if t is value), None)
            if index is None:
                # Anything else dynamo passes is a constant it made (an unspecialized float
                # constant wrapped as a 0-d tensor): the same value at every call of this kernel.
                index = len(args) + len(constants)
                constants.append(value)
            positions.append(1 + index)
        self.constants = tuple(constants)
        return positions

    def _find_direct_kernel(self, args: Sequence[Tensor]) -> None:
        """Find the one C++ kernel Inductor's ``call`` runs, and how ``call`` feeds it.

        ``call`` is run once with the kernel replaced by a recorder (nothing is computed); its
        arguments are matched to ours by identity. A 1-element buffer that ``call`` allocates for
        the kernel (where a reduction lands before it is copied into its output: Lamb's norms) is
        kept and passed to every later call, which is safe while the GIL serializes the calls:
        the kernel writes such a buffer before it reads it. Anything else unexpected (another
        kernel, a larger buffer, a scalar that is not the length) leaves ``call`` in place.
        """
        raw, pick = self._raw, self._pick
        function = getattr(raw, "__func__", raw)
        namespace = getattr(function, "__globals__", {})
        used = getattr(getattr(function, "__code__", None), "co_names", ("empty_strided",))
        names = [name for name in used if name.startswith("cpp_fused_")]
        allocates = any("empty_strided" in name or "alloc" in name for name in used)
        if allocates and not getattr(sys, "_is_gil_enabled", lambda: True)():
            return
        if pick is None or len(names) != 1 or names[0] not in namespace:
            return
        name, kernel = names[0], namespace[names[0]]
        calls: list[tuple[Any, ...]] = []
        namespace[name] = lambda *values: calls.append(values)
        numel = args[0].numel()
        packed = (numel, *args, *self.constants)
        try:
            result = raw(list(pick(packed)))
        finally:
            namespace[name] = kernel
        if len(calls) != 1 or result not in ((), None):
            return
        positions = []
        scratch: list[Tensor] = []
        for value in calls[0]:
            if isinstance(value, Tensor):
                index = next((i for i, item in enumerate(packed) if item is value), None)
                if index is None and allocates and _fresh_scalar(value, packed):
                    index = len(packed) + len(scratch)
                    scratch.append(value)
            elif isinstance(value, int) and value == numel:
                index = 0
            else:
                index = None
            if index is None or (index == 0 and not isinstance(value, int)):
                return
            positions.append(index)
        self.constants += tuple(scratch)
        self.direct = kernel
        self.direct_positions = tuple(positions)
        self.direct_pick = _picker(positions)


def _fresh_scalar(value: Tensor, packed: Sequence[Any]) -> bool:
    """A 1-element tensor sharing no memory with the arguments: a buffer ``call`` allocated."""
    if value.numel() != 1:
        return False
    address = value.untyped_storage().data_ptr()
    return all(
        item.untyped_storage().data_ptr() != address for item in packed if isinstance(item, Tensor)
    )


def _is_index_bound(expr: Any) -> bool:
    """``s <= 2**31 - 1`` for a length ``s``: Inductor's guard for 32-bit indexing on CUDA."""
    return (
        getattr(expr, "rel_op", None) == "<="
        and getattr(expr.lhs, "is_Symbol", False)
        and expr.rhs == INDEX_LIMIT
    )


def _dense(tensor: Tensor) -> bool:
    """Its elements fill one block of memory, each once (a permutation of a contiguous layout)."""
    expected = 1
    for size, stride in sorted(zip(tensor.shape, tensor.stride()), key=lambda pair: pair[1]):
        if size != 1:
            if stride != expected:
                return False
            expected *= size
    return True


def _same_layout(items: Sequence[Tensor], numel: int) -> int:
    """2: all contiguous float32 of ``numel`` elements; 1: dense with one shared (permuted)
    layout; 0: anything else (the update then runs eagerly). Runs per parameter per step."""
    for tensor in items:
        if (
            tensor.dtype != torch.float32
            or tensor.numel() != numel
            or not tensor.is_contiguous()
            or type(tensor) not in _PLAIN
        ):
            break
    else:
        return 2
    if any(type(tensor) not in _PLAIN for tensor in items):
        return 0  # a tensor subclass (a DTensor, say) has no plain memory to hand to a kernel
    first = items[0]
    shape, strides = first.shape, first.stride()
    for tensor in items:
        if tensor.dtype != torch.float32 or tensor.shape != shape or tensor.stride() != strides:
            return 0
    return 1 if _dense(first) else 0


def _flat(items: Sequence[Tensor], numel: int, contiguous: bool) -> list[Tensor]:
    if contiguous:
        return [t if t.dim() == 1 else t.view(-1) for t in items]
    return [t.as_strided((numel,), (1,), t.storage_offset()) for t in items]


def _kernel(
    update: Callable[..., None],
    constants: dict[str, Any],
    args: Sequence[Tensor],
    serial: bool,
) -> CompiledUpdate:
    device = args[0].device
    key = (
        update,
        tuple(sorted(constants.items())),
        device,
        serial,
        tuple((t.dtype, t.dim() == 0) for t in args),
    )
    kernel = _KERNELS.get(key)
    if kernel is None:
        kernel = _KERNELS[key] = CompiledUpdate(update, constants, device, serial)
    return kernel


#: The dtypes of per-parameter tensors a compiled kernel takes (float64: Lamb's sums of squares).
_EXTRA_DTYPES = (torch.float32, torch.float64)
_IS = operator.is_
_CALL = operator.call
_DTYPE = operator.attrgetter("dtype")
_PLAIN_TYPES = frozenset(_PLAIN)
#: Plans kept per process (least recently used dropped first; one per group and kernel variant of
#: each fused optimizer). A plan holds weak references only.
_PLAN_LIMIT = 1024
_PLANS: OrderedDict[tuple[Any, ...], _Plan] = OrderedDict()


class _Plan:
    """One call site's prepared kernel calls, reused while its tensors stay the same.

    Between two steps only the gradients are usually new objects; the parameters and the state
    buffers are the same tensors. A plan remembers them (weakly), the compiled kernel of each
    parameter and where each argument goes, so that a step is a few C-level passes over the lists
    (identity, dtype, contiguity and length checks) and a loop of kernel calls, instead of a
    Python loop of checks per parameter. Anything it cannot vouch for sends the call down the
    general path, which checks every tensor (and builds a new plan).
    """

    __slots__ = ("compiled", "constants", "dtypes", "eager", "functions", "mutated", "numels")
    __slots__ += ("pick", "positions", "refs", "shared")

    def __init__(
        self,
        lists: Sequence[Sequence[Tensor]],
        shared: Sequence[Tensor],
        kernels: list[CompiledUpdate | None],
        positions: tuple[int, ...],
        mutated: tuple[int, ...],
        constants: tuple[Any, ...],
    ) -> None:
        self.refs = [[weakref.ref(t) for t in items] for items in lists]
        self.numels = [t.numel() for t in lists[0]]
        self.dtypes = [items[0].dtype for items in lists]
        self.shared = [(t.dtype, t.dim()) for t in shared]
        self.compiled = [i for i, kernel in enumerate(kernels) if kernel is not None]
        self.eager = [i for i, kernel in enumerate(kernels) if kernel is None]
        compiled = self.compiled
        if not self.eager:
            self.pick = None
        elif len(compiled) == 1:
            self.pick = lambda values: (values[compiled[0]],)
        else:
            self.pick = operator.itemgetter(*compiled)
        self.functions = [kernels[i].direct for i in compiled]  # type: ignore[union-attr]
        self.positions = positions
        self.mutated = mutated
        self.constants = constants

    def matches(
        self, lists: Sequence[Sequence[Tensor]], plain_count: int, shared: Sequence[Tensor]
    ) -> bool:
        """The same tensors (or new ones of the same layout) in every list, parameters unchanged."""
        if len(lists) != len(self.refs) or len(lists[0]) != len(self.numels):
            return False
        if [(t.dtype, t.dim()) for t in shared] != self.shared:
            return False
        for index, (items, refs) in enumerate(zip(lists, self.refs)):
            same = all(map(_IS, items, map(_CALL, refs)))
            # The parameters are re-checked at every step: ``p.data = ...`` changes a layout
            # without changing the tensor object.
            if same and index > 0:
                continue
            if index >= plain_count:  # per-parameter 1-element tensors
                if not all(map(_IS, map(_DTYPE, items), itertools.repeat(self.dtypes[index]))):
                    return False
                if any(map(operator.ne, map(Tensor.numel, items), itertools.repeat(1))):
                    return False
                continue
            if not set(map(type, items)) <= _PLAIN_TYPES:
                return False
            if not all(map(_IS, map(_DTYPE, items), itertools.repeat(torch.float32))):
                return False
            if not all(map(Tensor.is_contiguous, items)):
                return False
            if list(map(Tensor.numel, items)) != self.numels:
                return False
        return True

    def run(
        self,
        update: Callable[..., None],
        lists: Sequence[Sequence[Tensor]],
        shared: Sequence[Tensor],
        constants: dict[str, Any],
    ) -> None:
        """The compiled kernel of every parameter, then the eager update of the others."""
        pick, count = self.pick, len(self.functions)
        scalars = (*shared, *self.constants)
        columns: list[Any] = []
        for position in self.positions:
            if position > len(lists):
                columns.append(itertools.repeat(scalars[position - 1 - len(lists)], count))
                continue
            values: Any = self.numels if position == 0 else lists[position - 1]
            columns.append(values if pick is None else pick(values))
        for function, arguments in zip(self.functions, zip(*columns)):
            function(*arguments)
        for index in self.eager:
            update(*(items[index] for items in lists), *shared, **constants)
        torch._C._increment_version([t for i in self.mutated for t in lists[i]])


@torch.no_grad()
def fused_apply(
    update: Callable[..., None],
    tensors: Sequence[Sequence[Tensor]],
    shared: Sequence[Tensor] = (),
    *,
    per_parameter: Sequence[Sequence[Tensor]] = (),
    **constants: Any,
) -> None:
    """``update(*tensors[:][i], *per_parameter[:][i], *shared, **constants)`` for every ``i``.

    Args:
        update: the per-tensor update of a kernel module (mutates its tensors in place).
        tensors: aligned lists with one tensor per parameter, each of the parameter's shape: the
            parameters, their gradients, their state buffers.
        shared: 0-d tensors used by every parameter (the lr, a step count, ...).
        per_parameter: aligned lists of one-element per-parameter tensors (ASGD's ``eta``,
            Adam's ``beta1_power``, Lamb's float64 sums of squares), float32 or float64.
        constants: the optimizer's Python hyper-parameters (floats, bools); a kernel is compiled
            per distinct set of values (one per optimizer configuration).

    Example:
        >>> import torch
        >>> from msoptim.kernels.momentum import momentum_update
        >>> p, g, m = torch.ones(3), torch.ones(3), torch.zeros(3)
        >>> fused_apply(momentum_update, ([p[:1]], [g[:1]], [m[:1]]), (torch.tensor(0.5),),
        ...             momentum=0.9, nesterov=False)  # 1 element: runs eagerly, no compile
        >>> p.tolist()
        [0.5, 1.0, 1.0]
    """
    if not tensors or not tensors[0]:
        return
    device = tensors[0][0].device
    compiled = device.type in _DEVICES and not torch.compiler.is_compiling()
    cpu = device.type == "cpu"
    threads = torch.get_num_threads() > 1
    shared = tuple(shared)
    lists = (*tensors, *per_parameter)
    key = None
    if compiled and cpu:
        first, last = tensors[0][0], tensors[0][-1]
        # Two optimizers (or groups) over overlapping parameters keep a plan each.
        key = (update, tuple(sorted(constants.items())), threads, len(lists), len(tensors[0]))
        key += (id(first), id(last))
        plan = _PLANS.get(key)
        if plan is not None and plan.matches(lists, len(tensors), shared):
            _PLANS.move_to_end(key)
            plan.run(update, lists, shared, constants)
            return
    kernels: dict[bool, CompiledUpdate] = {}
    used: list[CompiledUpdate | None] = []  # each parameter's kernel (None: updated eagerly)
    plannable = key is not None
    direct_calls = 0
    extras = list(zip(*per_parameter)) if per_parameter else None
    for index, items in enumerate(zip(*tensors)):
        extra = extras[index] if extras is not None else ()
        numel = items[0].numel()
        layout = _same_layout(items, numel) if compiled and numel > 1 else 0
        if layout and not cpu and any(t.data_ptr() % 16 for t in items):
            layout = 0  # Triton kernels are built for 16-byte aligned pointers
        if extra and any(t.dtype not in _EXTRA_DTYPES or t.numel() != 1 for t in extra):
            layout = 0
        if layout != 2:
            plannable = plannable and layout == 0 and numel <= 1
        if not layout:
            used.append(None)
            update(*items, *extra, *shared, **constants)
            continue
        serial = cpu and (not threads or numel < PARALLEL_MIN_NUMEL)
        kernel = kernels.get(serial)
        used.append(kernel)
        if kernel is not None and kernel.direct is not None:
            kernel.direct(*kernel.direct_pick((numel, *items, *extra, *shared, *kernel.constants)))
            direct_calls += 1
            continue
        args = (*_flat(items, numel, layout == 2), *extra, *shared)
        if kernel is None:
            kernel = kernels[serial] = _kernel(update, constants, args, serial)
            used[-1] = kernel
        kernel(*args)
    if direct_calls:
        # What the AOT runtime does after a compiled in-place update: bump the version counters
        # (autograd's check that a tensor saved for backward was not modified since). Every
        # kernel of one update writes the same arguments; an eagerly updated tensor bumped
        # twice is harmless.
        mutated = next(iter(kernels.values())).mutated
        torch._C._increment_version([t for i in mutated if i < len(lists) for t in lists[i]])
    if plannable and kernels:
        _remember_plan(key, lists, shared, used, kernels)


def _remember_plan(
    key: Any,
    lists: Sequence[Sequence[Tensor]],
    shared: Sequence[Tensor],
    used: list[CompiledUpdate | None],
    kernels: dict[bool, CompiledUpdate],
) -> None:
    """Keep a plan for this call site when every compiled call can be made directly, alike."""
    first = next(iter(kernels.values()))
    for kernel in kernels.values():
        if (
            kernel.direct is None
            or kernel.direct_positions != first.direct_positions
            or len(kernel.constants) != len(first.constants)
            or kernel.mutated != first.mutated
        ):
            return
    mutated = tuple(i for i in first.mutated if i < len(lists))
    _PLANS[key] = _Plan(lists, shared, used, first.direct_positions, mutated, first.constants)
    _PLANS.move_to_end(key)
    while len(_PLANS) > _PLAN_LIMIT:
        _PLANS.popitem(last=False)
