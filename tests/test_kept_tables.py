"""Where the C++ table module cannot be built (``_native.step_extension``), an optimizer keeps
its C kernels' address tables between steps (``_native.KeptTable``): a step over the same
parameters and state reuses the table, and anything that moved or changed sends the step down
the full path, so the results stay the reference's and no kernel writes through an address that
is gone. (With the C++ module every tensor is checked every step: ``test_native_step.py``.)"""

from __future__ import annotations

import copy
import gc
import weakref

import pytest
import torch

import msoptim
from msoptim.kernels import _native
from msoptim.kernels import adam as kernels
from test_fast_path import same_values

needs_compiler = pytest.mark.skipif(
    kernels._load_native() is None, reason="no C compiler: no C kernel, no table"
)

SHAPES = {"conv.weight": (16, 8, 3, 3), "bn.gamma": (16,), "fc.weight": (30, 7), "fc.bias": (30,)}


@pytest.fixture(autouse=True)
def python_checks(monkeypatch):
    """The Python checks and kept tables, as without the C++ table module."""
    monkeypatch.setattr(_native, "USE_STEP_EXTENSION", False)


@pytest.fixture
def reuses(monkeypatch):
    """Per step that had a kept table for its call site: whether it was reused."""
    seen: list[bool] = []
    real = _native.KeptTable.holds

    def holds(self, lists):
        seen.append(real(self, lists))
        return seen[-1]

    monkeypatch.setattr(_native.KeptTable, "holds", holds)
    return seen


def _pair(cls=msoptim.Adam, **kwargs):
    """The same optimizer twice on the same parameters: the default (C kernel, kept tables) and
    the reference (``fused=False``)."""
    gen = torch.Generator().manual_seed(5)
    values = {n: torch.randn(s, generator=gen) for n, s in SHAPES.items()}
    built = []
    for impl in ({}, {"fused": False}):
        named = [(n, torch.nn.Parameter(v.clone())) for n, v in values.items()]
        built.append(([p for _, p in named], cls(named, **kwargs, **impl)))
    return built


def _step_both(pair, seed):
    gen = torch.Generator().manual_seed(seed)
    grads = [torch.randn(p.shape, generator=gen) for p in pair[0][0]]
    for params, opt in pair:
        for param, grad in zip(params, grads):
            param.grad = grad.to(param.dtype, copy=True)  # new gradient tensors every step
        opt.step()


def _assert_same(pair):
    (params, opt), (ref_params, ref) = pair
    for a, b in zip(params, ref_params):
        assert same_values(a.detach(), b.detach())
    for a, b in zip(params, ref_params):
        for key, value in opt.state[a].items():
            assert same_values(value, ref.state[b][key]), key


@needs_compiler
@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (msoptim.Adam, {"learning_rate": 0.01}),
        (msoptim.Adam, {"learning_rate": msoptim.CosineDecayLR(0.001, 0.01, 10)}),
        (msoptim.AdamWeightDecay, {"learning_rate": 0.01, "weight_decay": 0.1}),
        (msoptim.Momentum, {"learning_rate": [0.1, 0.2, 0.3, 0.4, 0.5], "momentum": 0.9}),
    ],
    ids=["adam-static", "adam-schedule", "adamweightdecay", "momentum-table"],
)
def test_later_steps_reuse_the_table_with_the_references_bits(reuses, cls, kwargs):
    """New gradients and an lr evaluated anew each step (schedule, table) keep the table."""
    pair = _pair(cls, **kwargs)
    for step in range(4):
        _step_both(pair, step)
        _assert_same(pair)
    assert reuses == [True] * 3


@needs_compiler
@pytest.mark.parametrize(
    "change",
    ["state-data", "state-share-memory", "param-data", "param-float64", "state-replaced"],
)
def test_a_tensor_that_moved_or_changed_takes_the_full_path(reuses, change):
    """A state tensor whose storage was swapped in place (``.data = ...``, ``share_memory_()``),
    a parameter given new data (contiguous or not, another dtype), a state tensor replaced by a
    new one: the kept table is not used for that step, and the updates land where the tensors now
    are, as the reference's do."""
    pair = _pair(learning_rate=0.01)
    _step_both(pair, 0)
    _step_both(pair, 1)
    for params, opt in pair:
        first = opt.state[params[0]]
        if change == "state-data":
            first["moment1"].data = first["moment1"].clone()
        elif change == "state-share-memory":
            first["moment2"].share_memory_()
        elif change == "param-data":
            params[2].data = params[2].data.t().contiguous().t()  # same values, transposed layout
        elif change == "param-float64":
            params[1].data = params[1].data.double()
            for key in ("moment1", "moment2"):
                opt.state[params[1]][key] = opt.state[params[1]][key].double()
        else:
            first["moment1"] = first["moment1"].clone()
    _step_both(pair, 2)
    _assert_same(pair)
    assert reuses == [True, False]
    _step_both(pair, 3)
    _assert_same(pair)


@needs_compiler
def test_a_loaded_checkpoint_and_a_copy_build_their_own_tables(reuses):
    pair = _pair(learning_rate=0.01)
    _step_both(pair, 0)
    _step_both(pair, 1)
    for _, opt in pair:
        opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # new state tensors
        assert not opt._kept_tables  # dropped with the old state
    _step_both(pair, 2)
    _step_both(pair, 3)
    _assert_same(pair)
    assert reuses == [True, True]
    (params, opt), _ = pair
    assert_a_copy_steps_its_own_tensors(params, opt)


def assert_a_copy_steps_its_own_tensors(params, opt):
    """A deep copy's tensors are new ones: its steps must not write into the original's."""
    twin = copy.deepcopy(opt)
    before = [p.detach().clone() for p in params]
    for param in twin.parameters:
        param.grad = torch.ones_like(param)
    twin.step()
    assert all(torch.equal(a, b) for a, b in zip(before, params))
    assert not any(torch.equal(a, b) for a, b in zip(before, twin.parameters))


@needs_compiler
def test_the_table_does_not_keep_the_gradients_alive():
    (params, opt), _ = _pair(learning_rate=0.01)
    for param in params:
        param.grad = torch.ones_like(param)
    opt.step()
    opt.step()
    gone = weakref.ref(params[0].grad)
    for param in params:
        param.grad = None
    gc.collect()
    assert gone() is None
    assert opt._kept_tables  # the table is kept, its gradients are not
