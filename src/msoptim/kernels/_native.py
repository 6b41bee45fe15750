"""C kernels shipped as source and built on first use with the system C compiler.

A kernel whose order of operations cannot be expressed to Inductor (AdaFactor's sequential
float32 row sums) is written in C (``msoptim/kernels/*_native.c``), compiled once per machine
into a cache directory and called through :mod:`ctypes` (which releases the GIL). The build is
what keeps it exact: ``-ffp-contract=off`` (no fused multiply-add the source did not write), no
``-ffast-math`` (no reassociation), IEEE ``sqrtf`` and division; ``-fno-math-errno`` only lets
``sqrtf`` be one instruction. ``-march=native`` picks the vector width; the cache key includes
the CPU's flags, so a cache shared between machines never hands one the other's build.

When there is no compiler, or the build fails, :func:`load` returns None and says why in
:func:`unavailable_reason`; the callers then run their eager reference (same results).

A kernel's threads should be torch's own OpenMP workers (:func:`openmp_entry_points`): after a
torch op they spin for a while waiting for more work, and threads of the kernel's own would
compete with them for the cores.

What a step does around a kernel's call (check every tensor it will walk, write their addresses
into its table, advance ``global_step``) is C++ too where it can be built: the step module
(``native_step.cpp``, :func:`step_extension`), compiled against the installed torch's headers,
because in Python that bookkeeping, with caches the update has just evicted, cost more than
torch's whole C++ step around its fused kernel. Without it the same checks run in Python and
an optimizer keeps its tables between steps (:class:`KeptTable`).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import operator
import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "FLAGS",
    "KeptTable",
    "TableBuilder",
    "address_table",
    "advance_counter",
    "all_plain_float32_cpu",
    "cache_dir",
    "load",
    "load_step",
    "openmp_arguments",
    "openmp_entry_points",
    "plain_contiguous",
    "plain_contiguous_indices",
    "plain_float32_scalar",
    "step_where_possible",
    "team_arguments",
    "unavailable_reason",
]

FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")
_SOURCE_DIR = Path(__file__).resolve().parent
_LIBRARIES: dict[tuple[str, tuple[str, ...]], ctypes.CDLL | None] = {}
_REASONS: dict[tuple[str, tuple[str, ...]], str] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path:
    """``$MSOPTIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/msoptim`` (``~/.cache/msoptim``)."""
    explicit = os.environ.get("MSOPTIM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "msoptim"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next((line for line in info if line.startswith("flags")), "")
    except OSError:
        return ""


def _writable(directory: Path) -> Path:
    """``directory``, created if needed; a per-user temporary directory if it cannot be."""
    user = getattr(os, "getuid", lambda: "user")()  # no getuid on Windows
    for candidate in (directory, Path(tempfile.gettempdir()) / f"msoptim-{user}"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    raise OSError(f"no writable cache directory for the C kernels (tried {directory})")


def _build(name: str, extra: tuple[str, ...]) -> ctypes.CDLL:
    compiler = _compiler()
    if compiler is None:
        raise OSError("no C compiler found (set CC, or install cc/gcc/clang)")
    source = _SOURCE_DIR / f"{name}.c"
    headers = [path.read_bytes() for path in sorted(_SOURCE_DIR.glob("*.h"))]  # it may include
    flags = (*FLAGS, *extra)
    key = [source.read_bytes(), *headers, compiler.encode(), " ".join(flags).encode()]
    target = _cached_target(name, ".so", [*key, _cpu_flags().encode()])
    _compile(target, lambda out: [compiler, *flags, "-o", out, str(source), "-lpthread"])
    return ctypes.CDLL(str(target))


def _cached_target(name: str, suffix: str, key: list[bytes]) -> Path:
    """Where the build of ``name`` with this key lives in the cache directory."""
    digest = hashlib.sha256(b"\0".join(key)).hexdigest()[:20]
    return _writable(cache_dir()) / f"{name}-{digest}{suffix}"


def _compile(target: Path, command: Callable[[str], list[str]]) -> None:
    """Run ``command(output_path)`` unless ``target`` exists; the output then becomes ``target``.

    The rename is the shell's last step, after the compiler's: a build outlives an interpreter
    that exits meanwhile (the C++ step module builds in a daemon thread), so a short script still
    leaves the module in the cache for the next one. Concurrent builders each write their own file
    and agree on the target (the rename is atomic)."""
    if target.exists():
        return
    partial = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.partial")
    arguments = command(str(partial))
    script = (
        f"{shlex.join(arguments)} && mv -f {shlex.quote(str(partial))} {shlex.quote(str(target))}"
    )
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise OSError(f"`{' '.join(arguments)}` failed:\n{result.stderr.strip()}")


def load(name: str, extra_flags: tuple[str, ...] = ()) -> ctypes.CDLL | None:
    """The built library ``<name>.c`` (built now if needed), or None if it cannot be built."""
    key = (name, tuple(extra_flags))
    with _LOCK:
        if key not in _LIBRARIES:
            try:
                _LIBRARIES[key] = _build(name, key[1])
            except OSError as error:
                _LIBRARIES[key] = None
                _REASONS[key] = str(error)
        return _LIBRARIES[key]


def unavailable_reason(name: str, extra_flags: tuple[str, ...] = ()) -> str | None:
    """Why :func:`load` returned None for these arguments (None if it did not)."""
    return _REASONS.get((name, tuple(extra_flags)))


#: Use the C++ step module (``native_step.cpp``) where it builds; tests switch it off to run the
#: Python checks (and the kept tables) and torch ops instead.
USE_STEP_EXTENSION = True
_STEP_EXTENSION: dict[str, Any] = {"module": None, "thread": None, "reason": None}


def step_extension(wait: bool = False) -> Any:
    """The C++ step module (``native_step.cpp``: the C kernels' checks and address tables, the
    step counter's ``+= 1``, table and static group lrs), or None: switched off, cannot be built
    (:func:`step_extension_unavailable_reason`), or still building. A build (once per machine
    and torch, about 12 s with torch's headers) runs in a background thread so no step waits for
    it (``wait=True`` does); the Python checks and torch ops serve meanwhile."""
    if not USE_STEP_EXTENSION:
        return None
    if _STEP_EXTENSION["module"] is not None or _STEP_EXTENSION["reason"] is not None:
        return _STEP_EXTENSION["module"]
    with _LOCK:
        if _STEP_EXTENSION["thread"] is None:
            target, command = _step_extension_build()
            if target is None or command is None:
                return None  # the reason is noted
            if target.exists():
                _import_step_extension(target, command)  # built before: no thread
                return _STEP_EXTENSION["module"]
            thread = threading.Thread(
                target=_import_step_extension,
                args=(target, command),
                name="msoptim-step-build",
                daemon=True,
            )
            _STEP_EXTENSION["thread"] = thread
            thread.start()
        thread = _STEP_EXTENSION["thread"]
    if wait:
        thread.join()
    return _STEP_EXTENSION["module"]


def advance_counter(counter: Tensor) -> None:
    """``counter += 1``: the C++ module's (:func:`step_extension`) for a plain int32 CPU counter,
    ``add_`` otherwise and while dynamo traces. Same value, same version bump."""
    if torch.compiler.is_compiling():
        counter.add_(1)
        return
    extension = step_extension()
    if extension is None or not extension.advance(counter):
        counter.add_(1)


def step_extension_unavailable_reason() -> str | None:
    """Why :func:`step_extension` cannot be built (None if it can, or is building)."""
    return _STEP_EXTENSION["reason"]


def _step_extension_build() -> tuple[Path | None, Callable[[str], list[str]] | None]:
    """The C++ module's cached path and build command, or (None, None) with the reason noted."""
    compiler = next(
        (
            shutil.which(n)
            for n in (os.environ.get("CXX"), "c++", "g++", "clang++")
            if n and shutil.which(n)
        ),
        None,
    )
    python_include = sysconfig.get_paths()["include"]
    torch_dir = Path(torch.__file__).resolve().parent
    if compiler is None:
        _STEP_EXTENSION["reason"] = "no C++ compiler found (set CXX, or install c++/g++/clang++)"
    elif not (Path(python_include) / "Python.h").exists():
        _STEP_EXTENSION["reason"] = f"no Python headers ({python_include}/Python.h)"
    elif not (torch_dir / "include" / "ATen").is_dir():
        _STEP_EXTENSION["reason"] = f"torch's headers are not installed ({torch_dir / 'include'})"
    if _STEP_EXTENSION["reason"] is not None:
        return None, None
    assert compiler is not None
    source = _SOURCE_DIR / "native_step.cpp"
    abi = int(torch.compiled_with_cxx11_abi())
    flags = ("-O2", "-std=c++20", "-shared", "-fPIC", "-w", f"-D_GLIBCXX_USE_CXX11_ABI={abi}")
    libraries = torch_dir / "lib"
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"

    def command(out: str) -> list[str]:
        return [
            compiler, *flags, f"-I{torch_dir / 'include'}", f"-I{python_include}", "-o", out,
            str(source), f"-L{libraries}", f"-Wl,-rpath,{libraries}",
            "-ltorch_python", "-ltorch_cpu", "-lc10",
        ]  # fmt: skip

    key = [source.read_bytes(), compiler.encode(), " ".join(flags).encode()]
    key += [torch.__version__.encode(), str(torch_dir).encode(), suffix.encode()]
    return _cached_target("native_step", suffix, key), command


def _import_step_extension(target: Path, command: Callable[[str], list[str]]) -> None:
    try:
        _compile(target, command)
        spec = importlib.util.spec_from_file_location("msoptim_native_step", target)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {target}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.set_plain_types(tuple(_PLAIN_TYPES))
    except (OSError, ImportError) as error:
        _STEP_EXTENSION["reason"] = str(error)
        return
    _STEP_EXTENSION["module"] = module


_OPENMP: list[tuple[int, int, int] | None] = []
_OPENMP_NAMES = ("gomp", "iomp", "libomp")


def openmp_entry_points() -> tuple[int, int, int] | None:
    """Addresses of ``GOMP_parallel``, ``omp_get_thread_num`` and ``omp_get_num_threads`` in the
    OpenMP runtime torch loaded (found among the process's mapped libraries under torch's
    directory), or None (no such runtime, or no ``/proc/self/maps``): the kernels then start
    threads of their own."""
    if not _OPENMP:
        _OPENMP.append(_find_openmp())
    return _OPENMP[0]


def _find_openmp() -> tuple[int, int, int] | None:
    torch_dir = os.path.dirname(os.path.realpath(torch.__file__))
    try:
        with open("/proc/self/maps") as maps:
            paths = {
                line.split()[-1] for line in maps if line.rstrip().endswith(".so") or ".so." in line
            }
    except OSError:
        return None
    for path in sorted(paths):
        name = os.path.basename(path)
        if path.startswith(torch_dir) and any(key in name for key in _OPENMP_NAMES):
            try:
                runtime = ctypes.CDLL(path)
                names = ("GOMP_parallel", "omp_get_thread_num", "omp_get_num_threads")
                found = [ctypes.cast(getattr(runtime, n), ctypes.c_void_p).value for n in names]
            except (OSError, AttributeError):
                continue
            if all(found):
                return found[0], found[1], found[2]
    return None


def load_step(name: str, step: str, extra_flags: tuple[str, ...] = ()) -> Any:
    """The entry point ``step`` (returning nothing) of the kernel library ``<name>.c`` (built now
    if needed, see :func:`load`), or None if it cannot be built."""
    library = load(name, extra_flags)
    if library is None:
        return None
    function = getattr(library, step)
    function.restype = None
    return function


def team_arguments(use_openmp: bool = True) -> tuple[Any, ...]:
    """The last four arguments of a team kernel (``native_team.h``): the most threads it may use
    (``torch.get_num_threads()``) and the OpenMP entry points (:func:`openmp_arguments`)."""
    return (ctypes.c_int(max(1, torch.get_num_threads())), *openmp_arguments(use_openmp))


def openmp_arguments(use_openmp: bool = True) -> tuple[ctypes.c_void_p, ...]:
    """The three entry-point arguments of a team kernel (``native_team.h``): torch's OpenMP
    runtime's, or NULLs (the kernel starts its own threads)."""
    points = openmp_entry_points() if use_openmp else None
    return tuple(ctypes.c_void_p(address) for address in points or (0, 0, 0))


_PLAIN_TYPES = frozenset((Tensor, torch.nn.Parameter))
_DTYPE = operator.attrgetter("dtype")
_IS_CPU = operator.attrgetter("is_cpu")


def can_step(params: Sequence[Tensor], load_native: Callable[[], Any]) -> bool:
    """Whether a C kernel may take some of ``params``: there are some, on the CPU, outside dynamo
    (it cannot trace a ctypes call), and the kernel builds (``load_native()`` is not None)."""
    return (
        bool(params)
        and not torch.compiler.is_compiling()
        and params[0].device.type == "cpu"
        and load_native() is not None
    )


def plain_float32_scalar(value: Tensor) -> bool:
    """A one-element plain float32 CPU tensor, which a C kernel may read through its address."""
    return (
        type(value) in _PLAIN_TYPES
        and value.dtype is torch.float32
        and value.is_cpu
        and value.numel() == 1
    )


def all_plain_float32_cpu(tensors: list[Tensor]) -> bool:
    """Every tensor a plain (no subclass) float32 CPU tensor: C-level passes over the list."""
    return (
        set(map(type, tensors)) <= _PLAIN_TYPES
        and set(map(_DTYPE, tensors)) <= {torch.float32}
        and all(map(_IS_CPU, tensors))
    )


def plain_contiguous(tensor: Tensor) -> bool:
    """A plain (no subclass) contiguous float32 CPU tensor: what a C kernel may walk."""
    return (
        type(tensor) in _PLAIN_TYPES
        and tensor.dtype is torch.float32
        and tensor.is_cpu
        and tensor.is_contiguous()
    )


def plain_contiguous_indices(lists: tuple[list[Tensor], ...]) -> list[int]:
    """The positions at which every list holds a plain (no subclass) contiguous float32 CPU tensor
    of one length, with elements: what a C kernel walking raw pointers may take (shapes are the
    callers' to check; equal lengths keep it in bounds). One C-level pass per property over all
    the tensors first (the usual case: every position qualifies), else position by position."""
    extension = step_extension()
    if extension is not None and lists and extension.walkable(tuple(lists), len(lists), len(lists)):
        return list(range(len(lists[0])))
    numels = list(map(Tensor.numel, lists[0]))
    if all(numels) and _walkable(lists, numels):
        return list(range(len(numels)))
    return [
        i
        for i, group in enumerate(zip(*lists))
        if all(map(plain_contiguous, group))
        and len({tensor.numel() for tensor in group}) == 1
        and group[0].numel() > 0
    ]


def step_where_possible(
    lists: tuple[list[Any], ...],
    step: Callable[[tuple[list[Any], ...], list[int], TableBuilder], None],
    *,
    walked: int | None = None,
    scalars: int | None = None,
    kept: dict[Any, KeptTable] | None = None,
    site: Any = None,
) -> list[int]:
    """Run a C kernel's ``step(picked_lists, positions, tables)`` on the positions where its first
    ``walked`` lists (all by default) hold what it may walk (:func:`plain_contiguous_indices`);
    return the other positions, for another path. ``step`` is not called when there are none.

    ``scalars``: the lists from this index on hold what the kernel reads per parameter (powers,
    lrs, numbers): their tensors must be plain float32 CPU tensors of one element, or no position
    is taken. ``tables(columns)`` builds the kernel's address table (:func:`address_table`). With
    ``kept`` (its owner's dict) and ``site`` (the call's key in it), a step of the same tensors
    reuses the last table (:class:`KeptTable`) instead of checking every tensor again."""
    count = len(lists[0])
    extension = step_extension()
    if extension is not None:
        # Every tensor checked in C++ each step: nothing to keep.
        first_scalar = len(lists) if scalars is None else scalars
        if extension.walkable(tuple(lists), walked or len(lists), first_scalar):
            if count:
                step(lists, list(range(count)), address_table)
            return []
        kept = None
    record = kept.get(site) if kept is not None else None
    if record is not None and record.holds(lists):
        step(lists, list(range(count)), record.build)
        return []
    if scalars is not None:
        read = [value for items in lists[scalars:] for value in items]
        if not _readable_scalars([value for value in read if isinstance(value, Tensor)]):
            return list(range(count))
    native = plain_contiguous_indices(lists[:walked])
    if len(native) == count:
        if count:
            tables = address_table if kept is None else _keeper(lists, kept, site, scalars)
            step(lists, native, tables)
        return []
    if kept is not None:
        kept.pop(site, None)
    if native:
        step(tuple([items[i] for i in native] for items in lists), native, address_table)
        taken = set(native)
        return [i for i in range(count) if i not in taken]
    return list(range(count))


#: ``tables(columns)`` -> the table, the rows' lengths and their order (:func:`address_table`).
TableBuilder = Callable[[list[Any]], tuple[np.ndarray, np.ndarray, list[int]]]


def _keeper(
    lists: tuple[list[Any], ...], kept: dict[Any, KeptTable], site: Any, scalars: int | None
) -> TableBuilder:
    """:func:`address_table`, remembering what it built for ``site`` in ``kept``."""

    def tables(columns: list[Any]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        built = address_table(columns)
        kept[site] = KeptTable(lists, columns, *built, scalars=scalars)
        return built

    return tables


class KeptTable:
    """A C kernel's address table kept between steps by its owner (an optimizer), per call site.

    A step over the same parameters and state tensors as the last one (new gradient tensors are
    the usual case) needs no new table: its rows, their order and lengths stay. What is checked
    instead: the parameters and gradients as on the first step (``p.data = ...`` changes a
    parameter's layout and address without changing the object; gradients are new tensors), the
    other lists by identity (tensors) or value (numbers), and every tensor's address is read
    again: a state tensor whose storage was swapped in place (``.data = ...``,
    ``share_memory_()``) has moved, which sends the step down the full path. One-element tensors
    the kernel only reads (a group's lr, evaluated anew each step) need only be readable. The
    gradients are not kept (a kept table must not hold them alive).
    """

    __slots__ = ("addresses", "current", "fresh", "kept", "kinds", "lengths", "numels", "order")
    __slots__ += ("scalars", "table")

    def __init__(
        self,
        lists: tuple[list[Any], ...],
        columns: list[Any],
        table: np.ndarray,
        lengths: np.ndarray,
        order: list[int],
        scalars: int | None = None,
    ) -> None:
        # Per list: True (tensors: compared by identity), False (numbers: by value), None (both:
        # never the same, e.g. a scheduled weight decay's new tensor beside 0.0).
        self.kinds = [_kind(items) for items in lists]
        self.kept = [None if index == 1 else list(items) for index, items in enumerate(lists)]
        self.numels = list(map(Tensor.numel, lists[0]))
        self.table, self.lengths, self.order = table, lengths, order
        self.scalars = len(lists) if scalars is None else scalars
        # The table's columns that are lists of tensors, by list index: their addresses then.
        self.addresses = {
            index: table[:, column].copy()
            for column, items in enumerate(columns)
            for index, listed in enumerate(lists)
            if items is listed and self.kinds[index]
        }
        self.fresh: dict[int, np.ndarray] = {}
        self.current: tuple[int, ...] = ()  # ids of the step's lists (not the lists: no grads kept)

    def holds(self, lists: tuple[list[Any], ...]) -> bool:
        """Whether ``lists`` may step with this table (reads every tensor's address for it)."""
        if len(lists) != len(self.kept) or len(lists[0]) != len(self.numels):
            return False
        for index, (items, kept) in enumerate(zip(lists, self.kept)):
            kind = self.kinds[index]
            if index == 1:
                continue
            if kind is None or (kind is False and items != kept):
                return False
            if (
                kind
                and not all(map(operator.is_, items, kept))
                and (index < self.scalars or not _readable_scalars(items))
            ):
                return False
        if not _walkable(lists[:2], self.numels):
            return False
        count = len(self.numels)
        fresh = {}
        for index, before in self.addresses.items():
            now = np.fromiter(map(Tensor.data_ptr, lists[index]), dtype=np.int64, count=count)
            if 1 < index < self.scalars and not np.array_equal(now[self.order], before):
                return False
            fresh[index] = now
        self.fresh, self.current = fresh, tuple(map(id, lists))
        return True

    def build(self, columns: list[Any]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """The kept table with this step's columns written in (after :meth:`holds`): the
        :data:`TableBuilder` of a step that reuses it."""
        order = self.order
        for column, items in enumerate(columns):
            if items is None:
                continue
            now = next((a for i, a in self.fresh.items() if id(items) == self.current[i]), None)
            if now is None:
                if items and isinstance(items[0], Tensor):
                    now = np.fromiter(map(Tensor.data_ptr, items), dtype=np.int64, count=len(items))
                else:
                    now = np.asarray(items, dtype=np.int64)
            self.table[:, column] = now[order]
        return self.table, self.lengths, order


def _readable_scalars(tensors: list[Tensor]) -> bool:
    """Every tensor a plain float32 CPU tensor of one element (which a kernel reads by address)."""
    return all_plain_float32_cpu(tensors) and not set(map(Tensor.numel, tensors)) - {1}


def _kind(items: list[Any]) -> bool | None:
    """True if every item is a tensor, False if none is, None if both occur."""
    tensors = sum(isinstance(item, Tensor) for item in items)
    return True if tensors == len(items) else False if tensors == 0 else None


def _walkable(lists: tuple[list[Tensor], ...], numels: list[int]) -> bool:
    """Every tensor of ``lists`` a plain contiguous float32 CPU tensor, each list's lengths
    ``numels``: one C-level pass per property over all the tensors."""
    tensors = [tensor for items in lists for tensor in items]
    return (
        all_plain_float32_cpu(tensors)
        and all(map(Tensor.is_contiguous, tensors))
        and all(list(map(Tensor.numel, items)) == numels for items in lists)
    )


def address_table(
    columns: list[list[Tensor] | list[int] | None],
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """A kernel's table: one int64 row per tensor of ``columns[0]``, largest first (team kernels
    take the large ones first). A column of tensors holds their addresses, a column of ints its
    values, ``None`` zeros. Returns the table, the rows' lengths and the row order (positions in
    the lists)."""
    count = len(columns[0] or ())
    extension = step_extension()
    if extension is not None and count:
        table = np.empty((count, len(columns)), dtype=np.int64)
        lengths, order = np.empty(count, dtype=np.int64), np.empty(count, dtype=np.int64)
        # fill takes lists: the callers' columns are lists already (copied only if not).
        listed = [c if c is None or type(c) is list else list(c) for c in columns]
        extension.fill(listed, table.ctypes.data, lengths.ctypes.data, order.ctypes.data)
        return table, lengths, order.tolist()
    numels = np.fromiter(map(Tensor.numel, columns[0] or ()), dtype=np.int64, count=count)
    order = np.argsort(-numels, kind="stable")  # largest first; ties keep the lists' order
    table = np.zeros((count, len(columns)), dtype=np.int64)
    for index, column in enumerate(columns):
        if column:
            if isinstance(column[0], Tensor):
                values = np.fromiter(map(Tensor.data_ptr, column), dtype=np.int64, count=count)
            else:
                values = np.asarray(column, dtype=np.int64)
            table[:, index] = values[order]
    return table, numels[order], order.tolist()
