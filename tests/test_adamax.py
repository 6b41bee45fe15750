"""AdaMax (``msoptim.optimizers.adamax``) and its kernels.

Contracts checked here:

1. The golden MindSpore 2.10 CPU trajectories are reproduced bit for bit, with both kernels.
2. The documented formula (float64 NumPy reference): ε added after the max, the bias correction
   of the first moment only, with weight decay and loss scale, with groups.
3. Validation, reference == foreach bit for bit, checkpoints, MindSpore's state names
   (``beta1_power`` of shape ``(1,)``), no host sync.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from msoptim.optimizers.adamax import AdaMax
from msoptim.schedules import ExponentialDecayLR

# Shared helpers of the Adam family's tests (plain functions, no tests are imported).
from test_adam import (
    NoSync,
    assert_bit_identical,
    assert_close,
    golden_cases,
    gradients,
    mixed_params,
    replay_ulps,
    snapshot,
)


@pytest.mark.parametrize("foreach", [False, True], ids=["reference", "foreach"])
@pytest.mark.parametrize("case", golden_cases({"AdaMax"}))
def test_golden_trajectories_bit_for_bit(case, foreach):
    assert replay_ulps(case, AdaMax, foreach=foreach) == {"params": 0, "state": 0, "lr": 0}


@pytest.mark.parametrize(
    ("kwargs", "raises", "match"),
    [
        ({"beta1": 0}, TypeError, r"AdaMax: 'beta1' must be a float.*\(int\)"),
        ({"beta2": 1.0}, ValueError, r"'beta2' must be in the range \(0\.0, 1\.0\)"),
        ({"beta1": 0.0}, ValueError, r"'beta1'"),
        ({"eps": 0.0}, ValueError, r"'eps'"),
        ({"eps": -1e-8}, ValueError, r"'eps'"),
        ({"eps": True}, TypeError, r"'eps'"),
        ({"weight_decay": -1.0}, ValueError, r"'weight_decay'"),
        ({"loss_scale": -1.0}, ValueError, r"'loss_scale'"),
        ({"learning_rate": 1}, None, None),  # MindSpore converts an int static lr
    ],
)
def test_validation(kwargs, raises, match):
    params = [("fc.weight", nn.Parameter(torch.ones(3)))]
    if raises is None:
        AdaMax(params, **kwargs)
        return
    with pytest.raises(raises, match=match):
        AdaMax(params, **kwargs)
    assert torch.equal(params[0][1], torch.ones(3))


def f32(value: float) -> float:
    return float(np.float32(value))


def float64_reference(params, steps, *, lr, wd, ls, beta1=0.9, beta2=0.999, eps=1e-8):
    """Spec §2.14 in float64 from the float32 constants, with the §1.9 pipeline (no groups)."""
    b1, b2, eps = f32(beta1), f32(beta2), f32(eps)
    w = {n: p.detach().double().numpy().copy() for n, p in params}
    m = {n: np.zeros_like(x) for n, x in w.items()}
    u = {n: np.zeros_like(x) for n, x in w.items()}
    gmax = dict.fromkeys(w, 0.0)
    for step in range(steps):
        for (name, _), grad in zip(params, gradients(params, step, ls)):
            g = grad.double().numpy()
            if "beta" not in name and "gamma" not in name:
                g = g + f32(wd * ls) * w[name]
            g = g * f32(1 / ls)
            gmax[name] = max(gmax[name], float(np.max(np.abs(g))))
            m[name] = b1 * m[name] + (1 - b1) * g
            u[name] = np.maximum(b2 * u[name], np.abs(g))
            w[name] = w[name] - f32(lr) / (1 - b1 ** (step + 1)) * m[name] / (u[name] + eps)
    return w, m, u, gmax


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"weight_decay": 0.01, "loss_scale": 32.0}, {"beta1": 0.5, "beta2": 0.9, "eps": 1e-3}],
    ids=["plain", "wd-ls", "betas-eps"],
)
def test_follows_the_documented_formula(kwargs):
    params = mixed_params()
    opt = AdaMax(params, learning_rate=0.01, **kwargs)
    ls = kwargs.get("loss_scale", 1.0)
    for step in range(10):
        opt(gradients(params, step, ls))
    hyper = {k: kwargs[k] for k in ("beta1", "beta2", "eps") if k in kwargs}
    w, m, u, gmax = float64_reference(
        mixed_params(), 10, lr=0.01, wd=kwargs.get("weight_decay", 0.0), ls=ls, **hyper
    )
    for name, param in params:
        state = opt.state[param]
        assert_close(param, w[name], scale=0.0, what=f"{name} w")
        assert_close(state["moment1"], m[name], scale=gmax[name], what=f"{name} m")
        assert_close(state["moment2"], u[name], scale=gmax[name], what=f"{name} u")


def test_eps_is_added_after_the_max_not_inside_it():
    w = nn.Parameter(torch.zeros(1))
    opt = AdaMax([("w", w)], learning_rate=1.0, beta1=0.5, beta2=0.5, eps=0.25)
    opt((torch.tensor([1.0]),))  # m = 0.5, u = 1, β1ᵗ = 0.5: step 1 = (1 / 0.5)·0.5 / 1.25
    opt((torch.tensor([0.0]),))  # m = 0.25, u = max(0.5, 0) = 0.5, β1ᵗ = 0.25
    mindspore = -(1 / 0.5) * 0.5 / 1.25 - (1 / 0.75) * 0.25 / (0.5 + 0.25)
    torch_style = -(1 / 0.5) * 0.5 / 1.25 - (1 / 0.75) * 0.25 / max(0.5 * 1.25, 0.25)
    assert w.item() == pytest.approx(mindspore, rel=1e-6)
    assert w.item() != pytest.approx(torch_style, rel=1e-3)


def grouped(params):
    return [
        {"params": params[:3], "lr": 0.05, "weight_decay": 0.01},
        {"params": params[3:5], "lr": [0.02, 0.01, 0.02, 0.01, 0.02, 0.01]},
        {"params": params[5:], "weight_decay": ExponentialDecayLR(0.01, 0.5, 2)},
    ]


@pytest.mark.parametrize("layout", ["flat", "groups"])
def test_foreach_equals_reference_bit_for_bit(layout):
    runs = []
    for foreach in (False, True):
        params = mixed_params()
        spec = grouped(params) if layout == "groups" else params
        runs.append(
            (params, AdaMax(spec, 0.01, weight_decay=0.02, loss_scale=4.0, foreach=foreach))
        )
    for step in range(4):
        for params, opt in runs:
            opt(gradients(params, step, 4.0))
        assert_bit_identical(snapshot(*runs[0]), snapshot(*runs[1]), f"step {step + 1}")


def test_checkpoint_round_trip_continues_bit_identically():
    def build(params):
        return AdaMax(grouped(params), 0.01, weight_decay=0.02)

    straight_params = mixed_params()
    straight = build(straight_params)
    for step in range(6):
        straight(gradients(straight_params, step))
    first_params = mixed_params()
    first = build(first_params)
    for step in range(3):
        first(gradients(first_params, step))
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed_params = mixed_params(seed=4)
    with torch.no_grad():
        for (_, new), (_, old) in zip(resumed_params, first_params):
            new.copy_(old)
    resumed = build(resumed_params)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for step in range(3, 6):
        resumed(gradients(resumed_params, step))
    assert_bit_identical(
        snapshot(straight_params, straight), snapshot(resumed_params, resumed), "resumed"
    )


def test_ms_state_dict_names_shapes_and_round_trip():
    params = mixed_params()
    opt = AdaMax(params, 0.01)
    state = opt.ms_state_dict()
    expected = {f"{p}.{n}" for p in ("moment1", "moment2") for n, _ in params}
    assert set(state) == expected | {"beta1_power", "global_step", "learning_rate"}
    assert state["beta1_power"].shape == (1,)
    assert state["beta1_power"].item() == 1.0
    for step in range(2):
        opt(gradients(params, step))
    assert state["beta1_power"].item() == f32(f32(0.9) * f32(0.9))
    saved = {k: v.detach().clone() for k, v in opt.ms_state_dict().items()}
    other_params = mixed_params()
    with torch.no_grad():
        for (_, new), (_, old) in zip(other_params, params):
            new.copy_(old)
    other = AdaMax(other_params, 0.01)
    other.load_ms_state_dict(saved)
    opt(gradients(params, 2))
    other(gradients(other_params, 2))
    assert_bit_identical(snapshot(params, opt), snapshot(other_params, other), "ms round trip")


def test_bfloat16_resume_keeps_beta1_power_float32():
    def bf16_params():
        return [(n, nn.Parameter(p.detach().bfloat16())) for n, p in mixed_params()]

    def grads(params, step):
        return tuple(g.bfloat16() for g in gradients(params, step))

    straight_params = bf16_params()
    straight = AdaMax(straight_params, 0.01)
    for step in range(4):
        straight(grads(straight_params, step))
    first_params = bf16_params()
    first = AdaMax(first_params, 0.01)
    for step in range(2):
        first(grads(first_params, step))
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = AdaMax(first_params, 0.01)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert all(resumed.state[p]["beta1_power"].dtype == torch.float32 for _, p in first_params)
    for step in range(2, 4):
        resumed(grads(first_params, step))
    assert_bit_identical(
        snapshot(straight_params, straight), snapshot(first_params, resumed), "bf16"
    )


@pytest.mark.parametrize("foreach", [False, True])
def test_a_step_reads_no_device_value(foreach):
    params = mixed_params()
    opt = AdaMax(grouped(params), 0.01, foreach=foreach)
    grads = gradients(params, 0)
    with NoSync():
        opt(grads)
