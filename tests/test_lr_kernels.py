"""Fused optimizers evaluate group lrs with compiled kernels (msoptim.kernels.lr): same bits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import msoptim
from msoptim.kernels import _fused
from msoptim.kernels import lr as lr_kernels
from msoptim.kernels.lr import evaluate_lr, evaluate_lrs
from msoptim.lr_sources import ConstantLR, TableLR

STEPS = [*range(0, 1500), 9_999, 100_003, 2**24 + 1, 2**31 - 2]

SCHEDULES = {
    "cosine": lambda: msoptim.CosineDecayLR(0.001, 0.1, 1000),
    "polynomial": lambda: msoptim.PolynomialDecayLR(0.1, 0.001, 1000, 0.5),
    "polynomial-cycles": lambda: msoptim.PolynomialDecayLR(0.1, 0.001, 300, 2.0, True),
    "exponential": lambda: msoptim.ExponentialDecayLR(0.1, 0.9, 100),
    "exponential-stair": lambda: msoptim.ExponentialDecayLR(0.1, 0.9, 100, is_stair=True),
    "natural-exp": lambda: msoptim.NaturalExpDecayLR(0.1, 0.9, 100),
    "inverse": lambda: msoptim.InverseDecayLR(0.1, 0.9, 100),
    "inverse-stair": lambda: msoptim.InverseDecayLR(0.1, 0.9, 100, is_stair=True),
    "warmup": lambda: msoptim.WarmUpLR(0.1, 500),
    "static": lambda: ConstantLR(torch.tensor(0.05)),
}


def bits(value: torch.Tensor) -> int:
    return int(value.reshape(()).view(torch.int32))


@pytest.mark.parametrize("name", SCHEDULES)
def test_compiled_schedule_has_the_eager_bits(name):
    source = SCHEDULES[name]()
    step = torch.zeros(1, dtype=torch.int32)
    out = torch.zeros(())
    for value in STEPS:
        step.fill_(value)
        assert evaluate_lr(source, step, out), "this source should run compiled"
        expected = source(step).reshape(()).float()
        assert bits(out) == bits(expected), f"{name} differs at step {value}"


def test_a_table_is_gathered_into_the_lr():
    table = TableLR(
        torch.tensor(msoptim.cosine_decay_lr(0.01, 0.1, 40, 4, 10), dtype=torch.float32)
    )
    step, out = torch.zeros(1, dtype=torch.int32), torch.zeros(())
    for value in range(40):
        step.fill_(value)
        assert evaluate_lr(table, step, out)
        assert bits(out) == bits(table(step))


def test_a_users_schedule_runs_eagerly():
    class Halving(msoptim.LearningRateSchedule):
        def forward(self, global_step):
            return 0.1 * torch.pow(0.5, global_step.to(torch.float32))

    class MyCosine(msoptim.CosineDecayLR):  # a subclass may change forward: not compiled
        pass

    step, out = torch.zeros(1, dtype=torch.int32), torch.zeros(())
    assert not evaluate_lr(Halving(), step, out)
    assert not evaluate_lr(MyCosine(0.01, 0.1, 10), step, out)
    assert bits(out) == 0  # nothing written


def test_equal_schedules_share_one_kernel():
    step, out = torch.zeros(1, dtype=torch.int32), torch.zeros(())
    evaluate_lr(msoptim.CosineDecayLR(0.002, 0.2, 77), step, out)
    compiled = len(_fused.compile_log())
    evaluate_lr(msoptim.CosineDecayLR(0.002, 0.2, 77), step, out)
    assert len(_fused.compile_log()) == compiled
    evaluate_lr(msoptim.CosineDecayLR(0.002, 0.2, 78), step, out)
    assert len(_fused.compile_log()) == compiled + 1


def _groups(params, static):
    return [
        {"params": params[:2], "lr": msoptim.cosine_decay_lr(0.01, 0.1, 12, 2, 6)},
        {"params": params[2:4], "lr": msoptim.ExponentialDecayLR(0.1, 0.9, 3)},
        {"params": params[4:], "lr": static},
    ]


def test_a_fused_step_uses_reassigned_static_lrs():
    """A static lr changed mid-run (in place, as MindSpore's assign) reaches the compiled form."""
    g = torch.Generator().manual_seed(0)
    shapes = [(40, 3), (3,), (17,), (5, 5), (8, 8), (2,)]
    params_a = [nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
    params_b = [nn.Parameter(p.detach().clone()) for p in params_a]
    reference = msoptim.Momentum(_groups(params_a, 0.05), 0.1, 0.9, foreach=False)
    fused = msoptim.Momentum(_groups(params_b, 0.05), 0.1, 0.9, fused=True)
    for step in range(6):
        if step == 3:
            for opt in (reference, fused):
                msoptim.assign(opt.param_groups[2]["lr"], 0.0123)
        grads = tuple(torch.randn(s, generator=g) for s in shapes)
        reference(grads)
        fused(tuple(t.clone() for t in grads))
        for a, b in zip(params_a, params_b):
            assert torch.equal(a, b), f"step {step}"
        for lr_a, lr_b in zip(reference.get_lr(), fused.get_lr()):
            assert bits(lr_a) == bits(lr_b)
    last = fused.get_lr()[-1]  # the lr of the last parameter, in the static group
    assert bits(last) == bits(ConstantLR.round_trip(torch.tensor(0.0123)))


# ------------------------------------------------------------ every group's lr in one kernel


@pytest.fixture
def one_kernel_on_cpu(monkeypatch):
    """The one-kernel path of CUDA (evaluate_lrs) run on the CPU, where it can be tested here."""
    monkeypatch.setattr(lr_kernels, "ONE_KERNEL_DEVICES", ("cuda", "cpu"))
    monkeypatch.setattr(lr_kernels, "_GROUP_KERNELS", {})


def _sources_of_every_kind():
    table = torch.tensor(msoptim.cosine_decay_lr(0.01, 0.1, 1600, 4, 10), dtype=torch.float32)
    return [
        TableLR(table),
        *(make() for name, make in SCHEDULES.items() if name != "static"),
        ConstantLR(torch.tensor(0.05)),
        ConstantLR(torch.tensor(3e-4)),
    ]


def test_one_kernel_writes_every_groups_lr_with_the_eager_bits(one_kernel_on_cpu):
    sources = _sources_of_every_kind()
    outs = [torch.zeros(()) for _ in sources]
    step = torch.zeros(1, dtype=torch.int32)
    for value in [*range(0, 1500, 7), 1599]:
        step.fill_(value)
        assert evaluate_lrs(sources, step, outs) == [True] * len(sources)
        for source, out in zip(sources, outs):
            expected = source(step).reshape(()).float()
            assert bits(out) == bits(expected), f"{type(source).__name__} at step {value}"
    assert len(lr_kernels._GROUP_KERNELS) == 1, "one kernel for the whole plan"


def test_one_kernel_sees_a_reassigned_static_lr_and_a_new_table_without_recompiling(
    one_kernel_on_cpu,
):
    static = ConstantLR(torch.tensor(0.05))
    table = TableLR(torch.linspace(0.1, 0.01, 50))
    outs, step = [torch.zeros(()), torch.zeros(())], torch.tensor([3], dtype=torch.int32)
    evaluate_lrs([static, table], step, outs)
    msoptim.assign(static.lr, 0.0123)
    table.learning_rate.copy_(torch.linspace(0.2, 0.02, 50))
    with torch._dynamo.config.patch(error_on_recompile=True):
        evaluate_lrs([static, table], step, outs)
    assert bits(outs[0]) == bits(ConstantLR.round_trip(torch.tensor(0.0123)))
    assert bits(outs[1]) == bits(torch.linspace(0.2, 0.02, 50)[3])


def test_one_kernel_leaves_a_users_schedule_to_the_caller_and_writes_a_shared_out_once(
    one_kernel_on_cpu,
):
    class Halving(msoptim.LearningRateSchedule):
        def forward(self, global_step):
            return 0.1 * torch.pow(0.5, global_step.to(torch.float32))

    static = ConstantLR(torch.tensor(0.25))
    shared, own = torch.zeros(()), torch.zeros(())
    step = torch.zeros(1, dtype=torch.int32)
    taken = evaluate_lrs([static, Halving(), static], step, [shared, own, shared])
    assert taken == [True, False, True]
    assert bits(own) == 0  # the user's schedule: nothing written
    assert float(shared) == 0.25


def test_a_fused_step_with_one_lr_kernel_equals_the_reference(one_kernel_on_cpu):
    g = torch.Generator().manual_seed(1)
    shapes = [(40, 3), (3,), (17,), (5, 5), (8, 8), (2,)]
    params_a = [nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
    params_b = [nn.Parameter(p.detach().clone()) for p in params_a]
    reference = msoptim.Adam(_groups(params_a, 0.05), 0.1, foreach=False)
    fused = msoptim.Adam(_groups(params_b, 0.05), 0.1, fused=True)
    for step in range(8):
        grads = tuple(torch.randn(s, generator=g) for s in shapes)
        reference(grads)
        fused(tuple(t.clone() for t in grads))
        for a, b in zip(params_a, params_b):
            assert torch.equal(a, b), f"step {step}"
    assert len(lr_kernels._GROUP_KERNELS) == 1


def test_a_groups_lr_kernel_that_cannot_be_compiled_names_the_way_out(
    one_kernel_on_cpu, monkeypatch
):
    def broken(*args, **kwargs):
        raise ValueError("no C++ compiler")

    monkeypatch.setattr(lr_kernels, "_group_kernel", lambda *args: broken)
    step, out = torch.zeros(1, dtype=torch.int32), torch.zeros(())
    with pytest.raises(RuntimeError, match=r"Use fused=False") as caught:
        evaluate_lrs([ConstantLR(torch.tensor(0.1))], step, [out])
    assert "no C++ compiler" in str(caught.value)
    assert bits(out) == 0


def test_only_fused_groups_compile_their_lrs_on_cpu():
    """On the CPU a group's lr is compiled with fused=True only; the default (the C kernels)
    and foreach evaluate it eagerly (on CUDA the default of a multi-tensor optimizer compiles
    too: tests/gpu)."""
    params = [nn.Parameter(torch.randn(4, 3)) for _ in range(6)]
    for impl, expected in (({"fused": True}, {0, 1, 2}), ({}, set()), ({"foreach": True}, set())):
        opt = msoptim.Adam(_groups(params, 0.05), 0.1, **impl)
        assert set(opt._compiled_lrs()) == expected, impl


def test_a_groups_lr_is_compiled_exactly_where_its_update_is_fused(monkeypatch):
    """The lrs follow the update kernel's choice (msoptim.kernels.use_fused, asked with the
    optimizer's multi-tensor flag), so a CUDA machine without Triton, whose default step is not
    fused, does not compile them either (session 11 compiled them on CUDA whatever Triton)."""
    params = [nn.Parameter(torch.randn(4, 3)) for _ in range(6)]
    opt = msoptim.Adam(_groups(params, 0.05), 0.1)
    asked = []

    def only_the_middle_group(group, group_params, multi_tensor):
        asked.append((group_params, multi_tensor))
        return group is opt.param_groups[1]

    monkeypatch.setattr(msoptim.optimizer, "use_fused", only_the_middle_group)
    assert set(opt._compiled_lrs()) == {1}
    assert asked == [(group["params"], True) for group in opt.param_groups]
