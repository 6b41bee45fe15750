"""The optimizer core: lr kinds, global_step, get_lr, call styles, checkpoints, custom optimizers.

Contract (API.md): a static lr is a float32 0-d tensor shared with ``param_groups[i]["lr"]`` and
re-assignable in place; a table is read at ``global_step`` and raises past its end changing nothing;
``get_lr()`` is pure; ``state_dict()`` resumes bit-identically; no step reads a device value on the host.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import msoptim

STEPS = 20


def named(seed: int = 0):
    torch.manual_seed(seed)
    return [
        ("conv.weight", nn.Parameter(torch.randn(4, 16, 3, 3))),
        ("bn.gamma", nn.Parameter(torch.ones(4))),
        ("bn.beta", nn.Parameter(torch.zeros(4))),
        ("fc.weight", nn.Parameter(torch.randn(3, 16))),
        ("fc.bias", nn.Parameter(torch.zeros(3))),
    ]


def grads_for(step: int, params):
    generator = torch.Generator().manual_seed(1000 + step)
    return tuple(torch.randn(p.shape, generator=generator) for _, p in params)


LR_KINDS = {
    "static": lambda: 0.1,
    "tensor": lambda: torch.tensor(0.05),
    "table": lambda: msoptim.cosine_decay_lr(0.01, 0.1, STEPS, 2, 8),
    "tensor-table": lambda: torch.tensor(msoptim.cosine_decay_lr(0.01, 0.1, STEPS, 2, 8)),
    "schedule": lambda: msoptim.CosineDecayLR(0.01, 0.1, 12),
}


def grouped(params, lr_kind: str):
    p = dict(params)
    return [
        {
            "params": [("conv.weight", p["conv.weight"])],
            "lr": LR_KINDS[lr_kind](),
            "weight_decay": 1e-4,
        },
        {
            "params": [("bn.gamma", p["bn.gamma"]), ("bn.beta", p["bn.beta"])],
            "lr": 0.01,
            "weight_decay": 0.0,
        },
        {"params": [("fc.weight", p["fc.weight"])], "lr": 0.02, "weight_decay": 1e-5},
        {"params": [("fc.bias", p["fc.bias"])]},
        {"order_params": params},
    ]


def build(lr_kind: str, layout: str, seed: int = 0, cls=msoptim.Momentum):
    params = named(seed)
    spec = grouped(params, lr_kind) if layout == "groups" else params
    opt = cls(
        spec, learning_rate=LR_KINDS[lr_kind](), momentum=0.9, weight_decay=1e-4, loss_scale=4.0
    )
    return params, opt


def run(opt, params, start: int, stop: int):
    for step in range(start, stop):
        opt(tuple(g * 4.0 for g in grads_for(step, params)))


def snapshot(params, opt):
    return [p.detach().clone() for _, p in params] + [
        t.clone() for t in opt.ms_state_dict().values()
    ]


@pytest.mark.parametrize("layout", ["flat", "groups"])
@pytest.mark.parametrize("lr_kind", list(LR_KINDS))
def test_resume_is_bit_identical(lr_kind, layout):
    params_a, straight = build(lr_kind, layout)
    run(straight, params_a, 0, STEPS)

    params_b, first = build(lr_kind, layout)
    run(first, params_b, 0, STEPS // 2)
    buffer = io.BytesIO()
    torch.save({"model": [p.detach() for _, p in params_b], "opt": first.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    params_c, resumed = build(lr_kind, layout, seed=7)
    with torch.no_grad():
        for (_, p), value in zip(params_c, saved["model"]):
            p.copy_(value)
    resumed.load_state_dict(saved["opt"])
    assert int(resumed.global_step) == STEPS // 2
    run(resumed, params_c, STEPS // 2, STEPS)
    for a, c in zip(snapshot(params_a, straight), snapshot(params_c, resumed)):
        assert torch.equal(a, c)


def test_load_state_dict_from_another_layout_raises_and_changes_nothing():
    _, flat = build("static", "flat")
    params, opt = build("static", "groups")
    before = snapshot(params, opt)
    with pytest.raises(ValueError, match=r"1 parameter groups, this optimizer has 4"):
        opt.load_state_dict(flat.state_dict())
    _, other_table = build("table", "groups")
    _, schedule = build("schedule", "groups")
    with pytest.raises(ValueError, match=r"table learning rate in the checkpoint but a schedule"):
        schedule.load_state_dict(other_table.state_dict())
    renamed = opt.state_dict()
    renamed["msoptim"]["param_names"][2] = ["dense.weight"]
    with pytest.raises(ValueError, match=r"'dense.weight' in the checkpoint but 'fc.weight' here"):
        opt.load_state_dict(renamed)
    for a, b in zip(before, snapshot(params, opt)):
        assert torch.equal(a, b)


def test_static_lr_is_the_group_tensor_and_reassignable():
    params, opt = build("static", "flat")
    assert opt.learning_rate is opt.param_groups[0]["lr"]
    assert opt.learning_rate.dtype == torch.float32
    assert opt.learning_rate.ndim == 0
    opt.learning_rate.fill_(0.0)
    before = [p.detach().clone() for _, p in params]
    run(opt, params, 0, 1)
    assert all(torch.equal(b, p) for b, (_, p) in zip(before, params))
    msoptim.assign(opt.learning_rate, 0.5)
    assert float(opt.get_lr()) == 0.5


def test_torch_lr_scheduler_drives_a_static_lr():
    params, opt = build("static", "flat")
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for step in range(4):
        for (_, p), g in zip(params, grads_for(step, params)):
            p.grad = g
        opt.step()
        scheduler.step()
    assert float(opt.get_lr()) == pytest.approx(0.025)
    assert opt.learning_rate is opt.param_groups[0]["lr"]


def test_past_the_end_of_a_table_raises_and_changes_nothing():
    params = named()
    opt = msoptim.Momentum(params, learning_rate=[0.1, 0.2, 0.3], momentum=0.9)
    run(opt, params, 0, 3)
    before = snapshot(params, opt)
    with pytest.raises(
        msoptim.LearningRateTableExhaustedError, match=r"table of 3 values.*global_step is 3"
    ) as info:
        run(opt, params, 3, 4)
    assert isinstance(info.value, IndexError)
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(IndexError):
        opt.get_lr()
    assert int(opt.global_step) == 3
    for a, b in zip(before, snapshot(params, opt)):
        assert torch.equal(a, b)


def test_get_lr_is_pure_and_reads_the_current_step():
    params = named()
    table = [0.1, 0.2, 0.3, 0.4]
    opt = msoptim.Momentum(params, learning_rate=table, momentum=0.9)
    for step, expected in enumerate(table):
        assert float(opt.get_lr()) == pytest.approx(expected)
        assert float(opt.get_lr()) == pytest.approx(expected)
        assert int(opt.global_step) == step
        run(opt, params, step, step + 1)
    assert opt.global_step.dtype == torch.int32
    assert opt.global_step.shape == (1,)
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(0.4)  # mirror of the last used lr


def test_static_group_lr_mixed_with_dynamic_uses_mindspores_float32_rounding():
    params, opt = build("table", "groups")
    lrs = opt.get_lr()
    assert isinstance(lrs, tuple)
    assert len(lrs) == 5
    # fc.weight's static 0.02 goes through (lr + 1) - 1 in float32; its stored value stays exact.
    expected = (torch.tensor(0.02) + 1.0) - 1.0
    assert torch.equal(lrs[3], expected)
    assert float(lrs[3]) != pytest.approx(0.02, abs=0)
    assert torch.equal(opt.get_lr_parameter(dict(params)["fc.weight"]), torch.tensor(0.02))
    table = opt.get_lr_parameter(dict(params)["conv.weight"])
    assert table.shape == (STEPS,)


def test_get_lr_parameter_rules():
    params, opt = build("schedule", "flat")
    assert isinstance(opt.get_lr_parameter(params[0][1]), msoptim.CosineDecayLR)
    assert len(opt.get_lr_parameter([params[0][1], params[1][1]])) == 2
    with pytest.raises(TypeError):
        opt.get_lr_parameter((params[0][1],))
    with pytest.raises(ValueError, match="not in this optimizer"):
        opt.get_lr_parameter(nn.Parameter(torch.ones(1)))


def test_step_and_call_styles_agree():
    params_a, a = build("schedule", "groups")
    params_b, b = build("schedule", "groups")
    for step in range(5):
        grads = tuple(g * 4.0 for g in grads_for(step, params_a))
        a(grads)
        for (_, p), g in zip(params_b, grads):
            p.grad = g.clone()
        b.step()
    for x, y in zip(snapshot(params_a, a), snapshot(params_b, b)):
        assert torch.equal(x, y)


def test_parameters_without_grad_are_skipped():
    params = named()
    opt = msoptim.Momentum(params, learning_rate=0.1, momentum=0.9, weight_decay=0.1)
    params[0][1].grad = torch.ones_like(params[0][1])
    frozen = [p.detach().clone() for _, p in params[1:]]
    opt.step()
    assert all(torch.equal(f, p) for f, (_, p) in zip(frozen, params[1:]))
    assert int(opt.global_step) == 1


def test_weight_decay_and_loss_scale_compose_as_in_mindspore():
    """Effective gradient g/ls + wd*w: with ls a power of two, equal to ls=1 with unscaled grads."""
    params_a = named()
    a = msoptim.Momentum(
        params_a, learning_rate=0.1, momentum=0.9, weight_decay=0.01, loss_scale=8.0
    )
    params_b = named()
    b = msoptim.Momentum(params_b, learning_rate=0.1, momentum=0.9, weight_decay=0.01)
    for step in range(3):
        grads = grads_for(step, params_a)
        a(tuple(g * 8.0 for g in grads))
        b(grads)
    assert a.decay_flags == (True, False, False, True, True)
    for (_, x), (_, y) in zip(params_a, params_b):
        torch.testing.assert_close(x, y, rtol=2e-6, atol=1e-7)


class NoSync(TorchDispatchMode):
    """Fails on any op that copies a device value to the host."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.item.default):
            raise AssertionError(f"host sync: {func}")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("lr_kind", list(LR_KINDS))
def test_a_step_never_reads_a_device_value(lr_kind):
    params, opt = build(lr_kind, "groups")
    grads = grads_for(0, params)
    with NoSync():
        opt(grads)
        opt.get_lr()
    with pytest.raises(AssertionError, match="host sync"), NoSync():
        torch.ones(1).item()  # the detector itself works


class TutorialMomentum(msoptim.Optimizer):
    """MindSpore's tutorial custom optimizer, ported: only the update is written."""

    def __init__(self, params, learning_rate, momentum=0.9):
        super().__init__(learning_rate, params)
        self.momentum = momentum
        self.moments = self.clone_state("moments", init="zeros")

    def construct(self, gradients):
        gradients = self.scale_grad(self.gradients_centralization(self.decay_weight(gradients)))
        lrs = self.get_lr()
        lrs = lrs if isinstance(lrs, tuple) else (lrs,) * len(self.parameters)
        for param, moment, grad, lr in zip(self.parameters, self.moments, gradients, lrs):
            moment.mul_(self.momentum).add_(grad)
            param.sub_(moment * lr)


def test_custom_optimizer_matches_momentum_and_keeps_core_features():
    params_a, reference = build("table", "groups")
    params_b = named()
    groups = grouped(params_b, "table")
    custom = TutorialMomentum(groups, learning_rate=LR_KINDS["table"](), momentum=0.9)
    for step in range(6):
        grads = grads_for(step, params_a)
        reference(tuple(g * 4.0 for g in grads))
        # The reference divides by loss_scale 4 and decays with wd*ls; feed the custom one the same.
        custom(grads)
    assert "moments.conv.weight" in custom.ms_state_dict()
    assert int(custom.global_step) == 6
    restored = TutorialMomentum(grouped(named(3), "table"), learning_rate=LR_KINDS["table"]())
    restored.load_state_dict(custom.state_dict())
    assert int(restored.global_step) == 6


def test_ms_state_dict_round_trip():
    params, opt = build("static", "groups")
    run(opt, params, 0, 3)
    exported = {k: v.clone() for k, v in opt.ms_state_dict().items()}
    assert {"global_step", "momentum", "moments.fc.weight", "learning_rate_group_0"} <= set(
        exported
    )
    _, fresh = build("static", "groups", seed=5)
    fresh.load_ms_state_dict(exported)
    for name, value in fresh.ms_state_dict().items():
        assert torch.equal(value, exported[name]), name
    with pytest.raises(ValueError, match="unknown names"):
        fresh.load_ms_state_dict({**exported, "moments.nope": torch.zeros(1)})


def test_trainable_params_names_normalization_layers_like_mindspore():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.LazyLinear(3))
    net(torch.zeros(1, 1, 5, 5))
    net[0].bias.requires_grad_(False)
    names = [name for name, _ in msoptim.trainable_params(net)]
    assert names == ["0.weight", "1.gamma", "1.beta", "3.weight", "3.bias"]
    opt = msoptim.Momentum(net, learning_rate=0.1, momentum=0.9, weight_decay=0.1)
    assert opt.decay_flags == (True, False, False, True, True)
