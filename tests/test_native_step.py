"""The C++ table module (``msoptim/kernels/native_step.cpp``): the C kernels' walkability checks
and address tables, each step, in one C++ pass. Its checks must refuse whatever the Python
checks refuse, its tables must be the Python ones, and an optimizer whose tensors moved or
changed must still land its updates where they now are."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import msoptim
from msoptim.kernels import _native
from test_fast_path import same_values
from test_kept_tables import _assert_same, _pair, _step_both, assert_a_copy_steps_its_own_tensors

extension = _native.step_extension(wait=True)
needs_extension = pytest.mark.skipif(
    extension is None, reason=f"no C++ table module: {_native.step_extension_unavailable_reason()}"
)


def test_the_module_builds_wherever_there_is_a_cpp_compiler_and_headers():
    """The tests below skip without one; with a C++ compiler, Python's and torch's headers, a
    failing build must not hide."""
    reason = _native.step_extension_unavailable_reason()
    if reason is not None and (reason.startswith("no C++ compiler") or "headers" in reason):
        pytest.skip(reason)
    assert extension is not None, reason


def _python_walkable(lists, walked, scalars):
    """What the Python checks say of every position together (step_where_possible's fallback)."""
    if len(_native.plain_contiguous_indices(tuple(lists[:walked]))) != len(lists[0]):
        return False
    read = [v for items in lists[scalars:] for v in items if isinstance(v, torch.Tensor)]
    return _native._readable_scalars(read)


class Subclass(torch.Tensor):
    pass


def _plain():
    return torch.randn(6, 5)


BAD_WALKED = {
    "float64": lambda: torch.randn(6, 5, dtype=torch.float64),
    "transposed": lambda: torch.randn(5, 6).t(),
    "other-length": lambda: torch.randn(31),
    "subclass": lambda: torch.randn(6, 5).as_subclass(Subclass),
    "meta": lambda: torch.empty(6, 5, device="meta"),
    "sparse": lambda: torch.randn(6, 5).to_sparse(),
    "negative-view": lambda: torch._neg_view(torch.randn(6, 5)),
    "not-a-tensor": lambda: 3.0,
}


@needs_extension
@pytest.mark.parametrize("column", [0, 1])
@pytest.mark.parametrize("bad", BAD_WALKED)
def test_a_tensor_the_kernel_cannot_walk_is_refused(bad, column):
    lists = ([_plain(), _plain()], [_plain(), _plain()], [torch.tensor(0.1)] * 2)
    assert extension.walkable(lists, 2, 2)
    lists[column][1] = BAD_WALKED[bad]()
    assert not extension.walkable(lists, 2, 2)
    if bad not in ("negative-view", "sparse", "not-a-tensor"):  # the Python checks' own gaps
        assert not _python_walkable(lists, 2, 2)


@needs_extension
def test_empty_tensors_and_parameters():
    empty = ([torch.empty(0)], [torch.empty(0)])
    assert not extension.walkable(empty, 2, 2)
    params = ([torch.nn.Parameter(torch.randn(4))], [torch.randn(4)])
    assert extension.walkable(params, 2, 2)


@needs_extension
@pytest.mark.parametrize(
    "scalar",
    [torch.tensor([0.1, 0.2]), torch.tensor(0.1, dtype=torch.float64),
     torch.tensor(0.1).as_subclass(Subclass), torch.empty((), device="meta")],
    ids=["two-elements", "float64", "subclass", "meta"],
)  # fmt: skip
def test_a_scalar_the_kernel_cannot_read_is_refused(scalar):
    lists = ([_plain()], [_plain()], [torch.tensor(0.1)], [0.5])  # a float there is the caller's
    assert extension.walkable(lists, 2, 2)
    lists[2][0] = scalar
    assert not extension.walkable(lists, 2, 2)
    assert not _python_walkable(lists, 2, 2)


@needs_extension
def test_lists_of_other_lengths_are_refused():
    assert not extension.walkable(([_plain(), _plain()], [_plain()]), 2, 2)
    assert not extension.walkable(([_plain()], [_plain()], [torch.tensor(0.1)] * 2), 2, 2)
    with pytest.raises(ValueError, match="walked"):
        extension.walkable(([_plain()],), 2, 1)


@needs_extension
def test_its_tables_are_the_python_ones(monkeypatch):
    gen = torch.Generator().manual_seed(3)
    sizes = [7, 300, 1, 300, 64, 5, 64, 1000]  # ties keep the lists' order
    params = [torch.randn(n, generator=gen) for n in sizes]
    grads = [torch.randn(n, generator=gen) for n in sizes]
    lrs = [torch.tensor(0.1)] * len(sizes)
    columns = [params, grads, lrs, None, list(range(10, 10 + len(sizes)))]
    got = _native.address_table(columns)
    monkeypatch.setattr(_native, "USE_STEP_EXTENSION", False)
    expected = _native.address_table(columns)
    assert np.array_equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]


@needs_extension
def test_fill_refuses_what_it_cannot_read():
    table, lengths, order = (np.empty(8, dtype=np.int64) for _ in range(3))
    args = (table.ctypes.data, lengths.ctypes.data, order.ctypes.data)
    with pytest.raises(TypeError):
        extension.fill([[1.0]], *args)
    with pytest.raises(ValueError):
        extension.fill([[_plain()], [_plain(), _plain()]], *args)


@needs_extension
@pytest.mark.parametrize("cls", [msoptim.Adam, msoptim.AdamWeightDecay, msoptim.Momentum])
@pytest.mark.parametrize(
    "change", ["state-data", "state-share-memory", "param-data", "param-float64", "state-replaced"]
)
def test_tensors_that_moved_or_changed_get_their_updates_where_they_are(cls, change, native_calls):
    """A state tensor whose storage was swapped (``.data = ...``, ``share_memory_()``) or which
    was replaced, a parameter given new data (another layout or dtype): the reference's bits."""
    extra = {"momentum": 0.9} if cls is msoptim.Momentum else {}
    pair = _pair(cls, learning_rate=0.01, **extra)
    _step_both(pair, 0)
    for params, opt in pair:
        first = opt.state[params[0]]
        key = next(iter(first))
        if change == "state-data":
            first[key].data = first[key].clone()
        elif change == "state-share-memory":
            first[key].share_memory_()
        elif change == "param-data":
            params[2].data = params[2].data.t().contiguous().t()  # same values, transposed
        elif change == "param-float64":
            params[1].data = params[1].data.double()
            state = opt.state[params[1]]
            for name in [n for n, value in state.items() if value.shape == params[1].shape]:
                state[name] = state[name].double()  # its moments (not Adam's float32 powers)
        else:
            first[key] = first[key].clone()
    for seed in (1, 2):
        _step_both(pair, seed)
        _assert_same(pair)
    moved = change in ("param-data", "param-float64")
    assert native_calls == [4] + [3 if moved else 4] * 2


@needs_extension
def test_a_deep_copy_never_writes_into_the_original():
    (params, opt), _ = _pair(learning_rate=0.01)
    for param in params:
        param.grad = torch.ones_like(param)
    opt.step()
    assert_a_copy_steps_its_own_tensors(params, opt)


@pytest.fixture
def native_calls(monkeypatch, request):
    """How many parameters each call of the optimizer's C kernel took."""
    from msoptim.kernels import adam, adam_weight_decay, momentum
    from native_kernels import spy_native_steps

    module = {msoptim.Adam: adam, msoptim.AdamWeightDecay: adam_weight_decay,
              msoptim.Momentum: momentum}[request.node.callspec.params["cls"]]  # fmt: skip
    return spy_native_steps(monkeypatch, module, lambda lists, *rest: len(lists[0]))


@needs_extension
def test_advance_adds_one_and_bumps_the_version_like_add():
    counter, twin = torch.tensor([41], dtype=torch.int32), torch.tensor([41], dtype=torch.int32)
    before = counter._version
    assert extension.advance(counter)
    twin.add_(1)
    assert torch.equal(counter, twin)
    assert counter._version > before
    top, twin = (torch.tensor([2**31 - 1], dtype=torch.int32) for _ in range(2))
    assert extension.advance(top)
    assert torch.equal(top, twin.add_(1))  # wraps as add_ does


@needs_extension
@pytest.mark.parametrize(
    "make",
    [lambda: torch.tensor([3], dtype=torch.int64), lambda: torch.tensor([3.0]),
     lambda: torch.tensor([3, 4], dtype=torch.int32),
     lambda: torch.empty(1, dtype=torch.int32, device="meta"),
     lambda: torch.tensor([3], dtype=torch.int32).as_subclass(Subclass), lambda: 3],
    ids=["int64", "float", "two-elements", "meta", "subclass", "int"],
)  # fmt: skip
def test_advance_leaves_other_counters_to_torch(make):
    counter = make()
    before = counter.clone() if isinstance(counter, torch.Tensor) else counter
    assert not extension.advance(counter)
    if isinstance(counter, torch.Tensor) and counter.device.type == "cpu":
        assert torch.equal(counter, before)


@needs_extension
def test_an_inference_counter_is_left_to_torch():
    with torch.inference_mode():
        counter = torch.tensor([3], dtype=torch.int32)
    assert not extension.advance(counter)


@needs_extension
def test_a_step_advances_global_step_in_cpp(monkeypatch):
    advanced = []
    monkeypatch.setattr(
        _native, "step_extension", lambda wait=False: _Spy(extension, advanced.append)
    )
    opt = msoptim.Momentum([torch.nn.Parameter(torch.ones(3))], 0.1, 0.9)
    for _ in range(3):
        opt((torch.ones(3),))
    assert int(opt.global_step) == 3
    assert len(advanced) == 3
    assert all(c is opt.global_step for c in advanced)


class _Spy:
    """The C++ module with some of its functions recorded: by argument (``advance``'s counter), or
    by name (``names``)."""

    def __init__(self, module, record, names=()):
        self._module, self._record, self._names = module, record, names

    def advance(self, counter):
        if not self._names:
            self._record(counter)
        return self._module.advance(counter)

    def __getattr__(self, name):
        function = getattr(self._module, name)
        if name not in self._names:
            return function

        def recorded(*args):
            self._record(name)
            return function(*args)

        return recorded


def _scalar_bits(t):
    return t.reshape(1).view(torch.int32).item()


@needs_extension
def test_gather_writes_the_tables_value_at_the_step():
    table = msoptim.cosine_decay_lr(0.01, 0.1, 100, 10, 10)
    table = torch.tensor(table, dtype=torch.float32)
    out = torch.zeros(())
    for step in (0, 1, 57, len(table) - 1):
        before = out._version
        assert extension.gather(table, torch.tensor([step], dtype=torch.int32), out)
        assert _scalar_bits(out) == _scalar_bits(table[step])
        assert out._version > before


@needs_extension
@pytest.mark.parametrize(
    "case", ["past-the-end", "negative", "int64-step", "float64-table", "2-d-table",
             "strided-table", "float64-out", "inference-out"],
)  # fmt: skip
def test_gather_leaves_what_it_cannot_do_to_torch(case):
    table, step = torch.arange(8, dtype=torch.float32), torch.tensor([3], dtype=torch.int32)
    out = torch.full((), -1.0)
    if case == "past-the-end":
        step = torch.tensor([8], dtype=torch.int32)
    elif case == "negative":
        step = torch.tensor([-1], dtype=torch.int32)
    elif case == "int64-step":
        step = step.long()
    elif case == "float64-table":
        table = table.double()
    elif case == "2-d-table":
        table = table.reshape(2, 4)
    elif case == "strided-table":
        table = torch.arange(16, dtype=torch.float32)[::2]
    elif case == "float64-out":
        out = out.double()
    else:
        with torch.inference_mode():
            out = torch.full((), -1.0)
    assert not extension.gather(table, step, out)
    assert out.item() == -1.0


@needs_extension
def test_round_trip_is_the_float32_tensor_arithmetic():
    gen = torch.Generator().manual_seed(11)
    values = torch.cat([
        torch.randn(2000, generator=gen) * 10.0 ** torch.randint(-12, 12, (2000,), generator=gen),
        torch.tensor([0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38, float("inf"), float("-inf"), 0.05]),
    ])  # fmt: skip
    out = torch.zeros(())
    for value in values:
        lr = value.reshape(())
        assert extension.round_trip(lr, out)
        expected = (lr + 1.0) - 1.0
        assert _scalar_bits(out) == _scalar_bits(expected), float(lr)
    nan = torch.tensor(float("nan"))
    assert extension.round_trip(nan, out)
    assert torch.isnan(out)
    assert not extension.round_trip(torch.tensor(0.5, dtype=torch.float64), out)
    assert not extension.round_trip(torch.tensor(0.5), torch.zeros((), dtype=torch.float64))


@needs_extension
def test_grouped_lrs_from_cpp_equal_the_eager_ones(monkeypatch):
    """A fused optimizer's table and static lrs (beside dynamic ones) come from the C++ module:
    the same bits as the eager lrs over a run, ``get_lr`` included."""
    calls = []

    def grouped(**kwargs):
        gen = torch.Generator().manual_seed(2)
        params = [torch.nn.Parameter(torch.randn(5, generator=gen)) for _ in range(3)]
        groups = [
            {"params": params[:1], "lr": msoptim.cosine_decay_lr(0.01, 0.1, 50, 5, 10)},
            {"params": params[1:2], "lr": 0.0123},
            {"params": params[2:]},
        ]
        return params, msoptim.Momentum(groups, 0.05, 0.9, **kwargs)

    (params_a, eager), (params_b, fused) = grouped(fused=False), grouped(fused=True)
    real = extension
    monkeypatch.setattr(
        _native,
        "step_extension",
        lambda wait=False: _Spy(real, calls.append, ("gather", "round_trip")),
    )
    for step in range(12):
        grads = tuple(torch.full((5,), 0.1 * step) for _ in range(3))
        eager(grads)
        fused(grads)
        for a, b in zip(params_a, params_b):
            assert same_values(a.detach(), b.detach())
        for lr_a, lr_b in zip(eager.get_lr(), fused.get_lr()):
            assert _scalar_bits(lr_a) == _scalar_bits(lr_b)
    assert {"gather", "round_trip"} <= set(calls)


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """A process that has not loaded the C++ module, with an empty cache directory."""
    monkeypatch.setenv("MSOPTIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(
        _native, "_STEP_EXTENSION", {"module": None, "thread": None, "reason": None}
    )
    return tmp_path


def test_a_failed_build_leaves_the_python_checks_and_torch_ops(fresh_build, monkeypatch):
    target, _ = _native._step_extension_build()
    if target is None:
        pytest.skip(_native.step_extension_unavailable_reason())
    monkeypatch.setattr(
        _native, "_step_extension_build", lambda: (target, lambda out: ["false", out])
    )
    assert _native.step_extension(wait=True) is None
    assert "failed" in _native.step_extension_unavailable_reason()
    opt = msoptim.Momentum([torch.nn.Parameter(torch.ones(3))], 0.1, 0.9)
    reference = msoptim.Momentum([torch.nn.Parameter(torch.ones(3))], 0.1, 0.9, fused=False)
    for _ in range(2):
        opt((torch.full((3,), 0.5),))
        reference((torch.full((3,), 0.5),))
    assert same_values(opt.parameters[0].detach(), reference.parameters[0].detach())
    assert int(opt.global_step) == 2


@needs_extension
def test_the_build_runs_in_the_background(fresh_build, monkeypatch):
    """No step waits for a build: until it is done, ``step_extension()`` is None."""
    target, _ = _native._step_extension_build()
    built = extension.__file__  # stands in for the 12-second compile
    monkeypatch.setattr(
        _native,
        "_step_extension_build",
        lambda: (target, lambda out: ["sh", "-c", f"sleep 1 && cp '{built}' '{out}'"]),
    )
    assert _native.step_extension() is None  # building
    module = _native.step_extension(wait=True)
    assert module is not None
    assert _native.step_extension() is module
    assert target.exists()


@needs_extension
def test_a_build_outlives_an_interpreter_that_exits_first(tmp_path):
    """A short script starts the background build and exits before it is done: the module still
    lands in the cache, for the next process. (A script that exits before the thread has even
    started the compiler leaves nothing; the next one builds.)"""
    import subprocess
    import sys
    import time

    target = tmp_path / "native_step-test.so"
    script = (
        "from pathlib import Path\n"
        "from msoptim.kernels import _native\n"
        f"target = Path({str(target)!r})\n"
        "_native._step_extension_build = lambda: (target, lambda out: "
        f"['sh', '-c', 'sleep 6 && cp {extension.__file__} ' + out])\n"
        "assert _native.step_extension() is None\n"  # building
        "import time; time.sleep(1)\n"  # a second of work: the compiler has started
        "print(target.exists())\n"  # and the interpreter exits before it is done
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=True, timeout=60, capture_output=True, text=True
    )
    assert done.stdout.strip() == "False"
    deadline = time.monotonic() + 30
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert target.exists()
    assert not list(tmp_path.glob("*.partial"))
