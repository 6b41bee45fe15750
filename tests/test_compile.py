"""The learning rate lives on the device: a step never reads a device value on the host, and
``torch.compile(opt.step)`` compiles once, whatever the lr does afterwards.

1. Every optimizer in the API, with each lr kind it accepts (static, table, schedule), steps under a
   ``TorchDispatchMode`` that fails on ``aten._local_scalar_dense`` / ``aten.item`` (the ops behind
   ``.item()``, ``float(t)``, ``bool(t)``: a host sync on a GPU), the fused path included.
2. ``torch.compile(opt.step)`` with a backend that counts compilations: changing a static lr in
   place (``fill_``), stepping through a dynamic table or a schedule, and the 4-group seed
   configuration add no compilation after the first step; the compiled steps equal eager steps
   bit for bit; and the host-side step count (past-the-end check of a table) still works, because
   the base class keeps it out of dynamo's sight (graph breaks, not guards).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import msoptim
from msoptim.lr_sources import ConstantLR
from optim_db import OPTIMIZER_CASES

SYNC_OPS = {
    torch.ops.aten._local_scalar_dense.default,
    torch.ops.aten.item.default,
    torch.ops.aten.is_nonzero.default,
}
#: Host syncs only on an accelerator (a CPU kernel may use them: the data is on the host).
DEVICE_SYNC_OPS = {torch.ops.aten.nonzero.default, torch.ops.aten.equal.default}


class NoHostSync(TorchDispatchMode):
    """Fails on any op that copies a device value to the host."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        on_device = any(isinstance(a, torch.Tensor) and not a.is_cpu for a in args)
        if func in SYNC_OPS or (func in DEVICE_SYNC_OPS and on_device):
            raise AssertionError(f"host sync in a step: {func}")
        return func(*args, **(kwargs or {}))


class CountingBackend:
    """A torch.compile backend that counts the graphs it is given and runs them eagerly."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, gm: torch.fx.GraphModule, example_inputs) -> object:
        self.graphs += 1
        return gm.forward


def small_params(seed: int = 0) -> list[tuple[str, nn.Parameter]]:
    g = torch.Generator().manual_seed(seed)
    shapes = {"fc.weight": (5, 4), "fc.bias": (5,), "bn.gamma": (5,), "out.weight": (3, 5)}
    return [(n, nn.Parameter(torch.randn(s, generator=g))) for n, s in shapes.items()]


def grads_for(step: int, params) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(50 + step)
    return tuple(0.3 * torch.randn(p.shape, generator=g) for _, p in params)


TABLE = msoptim.cosine_decay_lr(0.01, 0.1, total_step=12, step_per_epoch=2, decay_epoch=6)


def lr_of(kind: str, base: float):
    if kind == "table":
        return [base * x / 0.1 for x in TABLE]
    if kind == "schedule":
        return msoptim.CosineDecayLR(0.1 * base, base, 8)
    return base


# ------------------------------------------------------------------ 1. no host sync


def sync_cases():
    for case in OPTIMIZER_CASES:
        config = case.configs[0]
        kinds = ["static"]
        if "dynamic_lr" in case.supports and "learning_rate" in config.kwargs:
            kinds += ["table", "schedule"]
        for kind in kinds:
            yield pytest.param(case, config, kind, id=f"{case.name}-{kind}")


@pytest.mark.parametrize(("case", "config", "kind"), list(sync_cases()))
def test_a_step_never_syncs_with_the_host(case, config, kind):
    kwargs = dict(config.kwargs)
    if "learning_rate" in kwargs:
        kwargs["learning_rate"] = lr_of(kind, kwargs["learning_rate"])
    params = small_params()
    opt = case.cls(params, **kwargs)
    for step in range(3):  # the first steps too (first-step branches, state initialisation)
        with NoHostSync():
            opt(grads_for(step, params))
    assert int(opt.global_step) == 3


def test_lars_step_never_syncs_with_the_host():
    params = small_params()
    inner = msoptim.Momentum(params, learning_rate=lr_of("table", 0.1), momentum=0.9)
    opt = msoptim.LARS(inner)
    for step in range(3):
        with NoHostSync():
            opt(grads_for(step, params))


def test_fused_step_never_syncs_with_the_host():
    params = small_params()
    opt = msoptim.Momentum(params, learning_rate=lr_of("table", 0.1), momentum=0.9, fused=True)
    opt(grads_for(0, params))  # compiles (dynamo's tracing reads shapes, not device values)
    for step in range(1, 3):
        with NoHostSync():
            opt(grads_for(step, params))


def test_the_detector_works():
    with pytest.raises(AssertionError, match="host sync"), NoHostSync():
        torch.ones(1).item()


# ------------------------------------------------------------------ 2. no recompilation


def set_grads(params, step: int) -> None:
    for (_, param), grad in zip(params, grads_for(step, params)):
        param.grad = grad


def build(kind: str, params, **impl) -> msoptim.Optimizer:
    if kind == "groups":
        groups = [
            {"params": [params[0][1]], "lr": lr_of("table", 0.1)},
            {"params": [params[1][1]], "lr": lr_of("schedule", 0.1)},
            {"params": [params[2][1]], "lr": 0.05},
            {"params": [params[3][1]], "weight_decay": 0.01},
        ]
        return msoptim.Momentum(groups, learning_rate=0.1, momentum=0.9, **impl)
    return msoptim.Momentum(
        params, learning_rate=lr_of(kind, 0.1), momentum=0.9, weight_decay=0.01, **impl
    )


def change_static_lrs(opt: msoptim.Optimizer, step: int) -> None:
    """What a user (or torch.optim.lr_scheduler) does to a static lr: an in-place write."""
    for group in opt.param_groups:
        if group["lr_schedule"] is None or isinstance(group["lr_schedule"], ConstantLR):
            group["lr"].fill_(0.1 / (step + 1))


@pytest.mark.parametrize("kind", ["static", "table", "schedule", "groups"])
@pytest.mark.parametrize("fused", [False, True], ids=["reference", "fused"])
def test_compiled_step_compiles_once_whatever_the_lr_does(kind, fused):
    torch._dynamo.reset()
    params, twin_params = small_params(), small_params()
    opt, twin = build(kind, params, fused=fused), build(kind, twin_params)
    backend = CountingBackend()
    compiled_step = torch.compile(opt.step, backend=backend)
    set_grads(params, 0)
    set_grads(twin_params, 0)
    compiled_step()
    twin.step()
    first = backend.graphs
    assert first >= 1
    for step in range(1, 6):
        change_static_lrs(opt, step)
        change_static_lrs(twin, step)
        set_grads(params, step)
        set_grads(twin_params, step)
        compiled_step()
        twin.step()
    assert backend.graphs == first, f"recompiled: {backend.graphs - first} more graph(s)"
    assert int(opt.global_step) == 6
    assert opt._host_step == 6
    for (name, a), (_, b) in zip(params, twin_params):
        assert torch.equal(a, b), name
    for a, b in zip(opt.param_groups, twin.param_groups):
        assert torch.equal(a["lr"], b["lr"])


def test_compiled_step_still_refuses_to_step_past_the_table():
    torch._dynamo.reset()
    params = small_params()
    opt = msoptim.Momentum(params, learning_rate=[0.1, 0.05, 0.01], momentum=0.9)
    compiled_step = torch.compile(opt.step, backend=CountingBackend())
    for step in range(3):
        set_grads(params, step)
        compiled_step()
    before = [p.detach().clone() for _, p in params]
    with pytest.raises(msoptim.LearningRateTableExhaustedError, match="table of 3 values"):
        compiled_step()
    assert int(opt.global_step) == 3
    assert all(torch.equal(b, p) for b, (_, p) in zip(before, params))


@pytest.mark.slow
def test_inductor_compiled_step_compiles_once_and_matches_eager():
    """The same with the real backend (Inductor): slow on 2 cores, hence ``slow``."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    params, twin_params = small_params(), small_params()
    opt, twin = build("groups", params), build("groups", twin_params)
    compiled_step = torch.compile(opt.step)
    for step in range(4):
        change_static_lrs(opt, step)
        change_static_lrs(twin, step)
        set_grads(params, step)
        set_grads(twin_params, step)
        compiled_step()
        twin.step()
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= 3
    for (name, a), (_, b) in zip(params, twin_params):
        assert torch.equal(a, b), name


def test_compiled_lars_over_a_fused_momentum_matches_eager():
    """Under ``torch.compile(opt.step)`` LARS rescales the gradients itself (the hand-over of its
    rescaling to Momentum's kernel is an eager-only shortcut)."""
    torch._dynamo.reset()
    params, twin_params = small_params(), small_params()

    def build_lars(named):
        inner = msoptim.Momentum(named, 0.1, 0.9, weight_decay=0.01, fused=True)
        return msoptim.LARS(inner, coefficient=0.01)

    opt, twin = build_lars(params), build_lars(twin_params)
    compiled_step = torch.compile(opt.step, backend="eager")
    for step in range(3):
        set_grads(params, step)
        set_grads(twin_params, step)
        compiled_step()
        twin.step()
        for (name, a), (_, b) in zip(params, twin_params):
            assert torch.equal(a, b), f"step {step}: {name}"
