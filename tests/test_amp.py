"""Mixed precision: ``torch.amp.GradScaler("cpu")`` and low-precision parameters, every optimizer.

Contract:
* ``scaler.step(opt)`` works with every msoptim optimizer; with a power-of-two scale the run equals
  the unscaled run bit for bit (the scaler unscales exactly before ``opt.step``).
* A step with an inf/NaN gradient is skipped by the scaler, which then never calls ``opt.step``:
  ``global_step``, parameters and state stay as they were.
* MindSpore's static ``loss_scale`` composes with the scaler: the loss is multiplied by
  ``loss_scale`` by the user and by the dynamic scale by the scaler; the scaler removes its own
  scale, the optimizer divides by ``loss_scale`` (after adding ``wd * loss_scale * w``), so the
  update is the unscaled one — bit for bit with power-of-two scales.
* bfloat16 / float16 parameters: the state lives in the parameter's dtype (as MindSpore's
  ``clone``); a bf16 run stays finite and close to the float32 run.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import msoptim
from fixtures.optimizer_registry import (
    CASES,
    available_cases,
    batch,
    build,
    find_class,
    flat_state,
    make_model,
    single_thread,  # noqa: F401 (autouse fixture)
)

STEPS = 4


def _build(case, kind="static", **extra):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build(case, kind, **extra)


def _plain_run(case, steps=STEPS, **extra):
    model, opt = _build(case, **extra)
    for step in range(steps):
        x, y = batch(step)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return model, opt


def _scaled_run(case, *, loss_scale=None, steps=STEPS, poison=()):
    extra = {} if loss_scale is None else {"loss_scale": loss_scale}
    model, opt = _build(case, **extra)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2)
    for step in range(steps):
        x, y = batch(step)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y) * (loss_scale or 1.0)
        scaler.scale(loss).backward()
        if step in poison:
            next(model.parameters()).grad[0, 0] = float("inf")
        scaler.step(opt)
        scaler.update()
    return model, opt, scaler


def _assert_same(a, b, what):
    diff = [key for key in a if not torch.equal(a[key], b[key])]
    assert not diff, f"{what}: differs in {diff[:6]}"


@pytest.mark.parametrize("case", available_cases(), ids=lambda c: c.name)
def test_grad_scaler_step_equals_unscaled_run(case):
    reference = flat_state(*_plain_run(case))
    model, opt, scaler = _scaled_run(case)
    assert int(opt.global_step) == STEPS
    assert scaler.get_scale() > 2.0**10  # grew: no step was skipped
    _assert_same(reference, flat_state(model, opt), case.name)


@pytest.mark.parametrize("case", available_cases(), ids=lambda c: c.name)
def test_inf_gradient_step_is_skipped(case):
    model, opt, scaler = _scaled_run(case, steps=2)
    before = flat_state(model, opt)
    calls = []
    opt.register_step_pre_hook(lambda *args: calls.append(1))
    x, y = batch(2)
    opt.zero_grad()
    scaler.scale(torch.nn.functional.mse_loss(model(x), y)).backward()
    next(model.parameters()).grad[0, 0] = float("nan")
    scale = scaler.get_scale()
    scaler.step(opt)
    scaler.update()
    assert not calls, "GradScaler called opt.step() despite a non-finite gradient"
    assert int(opt.global_step) == 2
    assert scaler.get_scale() == scale / 2
    _assert_same(before, flat_state(model, opt), case.name)
    opt.zero_grad()
    scaler.scale(torch.nn.functional.mse_loss(model(x), y)).backward()
    scaler.step(opt)  # finite again: the hook sees the call
    assert calls == [1]
    assert int(opt.global_step) == 3


@pytest.mark.parametrize("case", available_cases(), ids=lambda c: c.name)
def test_skipped_steps_do_not_advance_global_step(case):
    model, opt, _ = _scaled_run(case, steps=5, poison=(1, 3))
    assert int(opt.global_step) == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize(
    "case", [c for c in available_cases() if c.loss_scale], ids=lambda c: c.name
)
def test_mindspore_loss_scale_composes_with_grad_scaler(case):
    """loss * ls under GradScaler, optimizer(loss_scale=ls): the update is the unscaled one."""
    reference = flat_state(*_plain_run(case))
    model, opt, _ = _scaled_run(case, loss_scale=128.0)
    assert opt.loss_scale == 128.0
    _assert_same(reference, flat_state(model, opt), case.name)


def test_loss_scale_math_with_weight_decay():
    """By hand: Momentum(ls, wd) on grads g*ls*S, unscaled by S: v = g + wd*w; w -= lr*v."""
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    g = torch.tensor([0.25, 0.5, -1.0])
    opt = msoptim.Momentum([("w", w)], 0.5, 0.0, weight_decay=0.125, loss_scale=8.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=64.0)
    loss = (w * g).sum() * 8.0
    scaler.scale(loss).backward()
    assert torch.equal(w.grad, g * 8.0 * 64.0)
    scaler.step(opt)
    expected = torch.tensor([1.0, -2.0, 0.5]) - 0.5 * (g + 0.125 * torch.tensor([1.0, -2.0, 0.5]))
    assert torch.equal(w.detach(), expected)


def test_autocast_bf16_forward_with_fp32_params():
    """The usual CPU AMP path: bf16 autocast, fp32 params and state, GradScaler."""
    model = make_model()
    opt = find_class("Adam")(msoptim.trainable_params(model), learning_rate=0.01)
    scaler = torch.amp.GradScaler("cpu")
    for step in range(3):
        x, y = batch(step)
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
        loss = torch.nn.functional.mse_loss(out.float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    assert int(opt.global_step) == 3
    for param in model.parameters():
        assert param.dtype == torch.float32
        assert all(
            s.dtype != torch.bfloat16 for s in opt.state[param].values() if torch.is_tensor(s)
        )


def _low_precision_run(case, dtype, steps=STEPS):
    model = make_model(dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = case.make(msoptim.trainable_params(model), case.lr)
    for step in range(steps):
        x, y = batch(step, dtype)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return model, opt


@pytest.mark.parametrize("case", available_cases(), ids=lambda c: c.name)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_state_lives_in_the_parameter_dtype(case, dtype):
    model, opt = _low_precision_run(case, dtype, steps=2)
    for param in model.parameters():
        assert param.dtype == dtype
        for key, value in opt.state[param].items():
            if torch.is_tensor(value) and value.shape == param.shape and value.is_floating_point():
                assert value.dtype == dtype, f"{case.name}: state '{key}' is {value.dtype}"
        # float16 cannot hold eps=1e-8 (it rounds to 0): Adam's m / (sqrt(v) + eps) is 0/0 where a
        # gradient was 0, in MindSpore too. Only bf16 (float32's exponent range) must stay finite.
        if dtype == torch.bfloat16:
            assert torch.isfinite(param).all(), case.name


@pytest.mark.parametrize("name", ["Momentum", "Adam"])
def test_bf16_run_stays_close_to_float32(name):
    case = CASES[name]
    reference, _ = _low_precision_run(case, torch.float32, steps=8)
    model, _ = _low_precision_run(case, torch.bfloat16, steps=8)
    for (key, low), high in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.isfinite(low).all()
        # bf16 keeps 8 bits of mantissa: each op rounds at 2**-9 relative; 8 steps of drift.
        torch.testing.assert_close(low.float(), high, atol=0.03, rtol=0.03, msg=key)
