"""AdamWeightDecay (``msoptim.optimizers.adam_weight_decay``) and its kernel.

Contracts checked here:

1. The golden MindSpore 2.10 CPU trajectories are reproduced bit for bit (parameters, lrs,
   ``adam_m``/``adam_v``), with both kernels.
2. The precision model is the one documented: ``m``, ``v`` as correctly rounded fused
   multiply-adds and the update in float64 rounded once; checked bit for bit against an
   independent NumPy implementation with rational-arithmetic fma.
3. Decoupled decay with MindSpore's flags (names without groups, ``wd > 0`` with groups), the
   decay read at the step's ``global_step`` when it is a schedule; no bias correction; no pipeline
   (no loss scale argument, gradient centralization ignored).
4. The validation rules, reference == foreach bit for bit, checkpoints, MindSpore's state names,
   no host sync.
"""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from msoptim.optimizers.adam_weight_decay import AdamWeightDecay
from msoptim.schedules import ExponentialDecayLR

# Shared helpers of the Adam family's tests (plain functions, no tests are imported).
from test_adam import (
    NoSync,
    assert_bit_identical,
    golden_cases,
    gradients,
    mixed_params,
    replay_ulps,
    snapshot,
)


@pytest.mark.parametrize("foreach", [False, True, None], ids=["reference", "foreach", "default"])
@pytest.mark.parametrize("case", golden_cases({"AdamWeightDecay"}))
def test_golden_trajectories_bit_for_bit(case, foreach):
    """``None``: the CPU default, the C kernel (``adam_weight_decay_native.c``) where it builds."""
    assert replay_ulps(case, AdamWeightDecay, foreach=foreach) == {"params": 0, "state": 0, "lr": 0}


# ------------------------------------------------------------------------------------------------
# Validation


def params3():
    return [
        ("fc.weight", nn.Parameter(torch.ones(3, 4))),
        ("bn.gamma", nn.Parameter(torch.ones(4))),
    ]


@pytest.mark.parametrize(
    ("kwargs", "raises", "match"),
    [
        ({"beta1": 1}, TypeError, r"AdamWeightDecay: 'beta1' must be a float.*\(int\)"),
        ({"beta2": 1.0}, ValueError, r"'beta2' must be in the range \(0\.0, 1\.0\)"),
        ({"beta1": -0.5}, ValueError, r"'beta1'"),
        ({"eps": 0.0}, ValueError, r"'eps'"),
        ({"eps": 1}, TypeError, r"'eps' must be a float"),
        ({"weight_decay": -0.01}, ValueError, r"'weight_decay'"),
        ({"weight_decay": "0.01"}, TypeError, r"'weight_decay'"),
        ({"loss_scale": 2.0}, TypeError, r"loss_scale"),  # MindSpore has no such argument
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, raises, match):
    params = params3()
    with pytest.raises(raises, match=match):
        AdamWeightDecay(params, **kwargs)
    assert all(torch.equal(p, torch.ones_like(p)) for _, p in params)


def test_int_weight_decay_and_schedules_are_accepted_like_mindspore():
    AdamWeightDecay(params3(), weight_decay=1)
    AdamWeightDecay(params3(), weight_decay=ExponentialDecayLR(0.01, 0.5, 2))


# ------------------------------------------------------------------------------------------------
# The precision model, against an independent implementation


def round32(exact: Fraction) -> np.float32:
    """``exact`` rounded to the nearest float32, ties to even."""
    near = np.float32(float(exact))
    below, above = (np.nextafter(near, np.float32(d)) for d in (-np.inf, np.inf))
    return min(
        (below, near, above),
        key=lambda y: (abs(Fraction(float(y)) - exact), int(np.array(y).view(np.int32)) & 1),
    )


def fma32(a: np.ndarray, b: np.ndarray | float, c: np.ndarray) -> np.ndarray:
    """Element-wise ``a * b + c`` rounded once to float32 (rational arithmetic)."""
    b = np.broadcast_to(np.asarray(b, dtype=np.float32), a.shape)
    return np.array(
        [
            round32(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))
            for x, y, z in zip(a.ravel(), b.ravel(), c.ravel())
        ],
        dtype=np.float32,
    ).reshape(a.shape)


def numpy_step(w, g, m, v, *, lr, beta1, beta2, eps, wd):
    """Spec §2.4 with the CPU kernel's roundings, independently of torch."""
    f32 = np.float32
    b1c, b2c = f32(1) - f32(beta1), f32(1) - f32(beta2)
    m = fma32((g - m).astype(np.float32), b1c, m)
    v = fma32(fma32(g, g, -v), b2c, v)
    update = m.astype(np.float64) / (np.sqrt(v.astype(np.float64)) + float(f32(eps)))
    update = update + float(f32(wd)) * w.astype(np.float64)
    return (w.astype(np.float64) - float(f32(lr)) * update).astype(np.float32), m, v


def test_matches_the_documented_precision_model_bit_for_bit():
    generator = torch.Generator().manual_seed(11)
    w = torch.randn(37, generator=generator)
    m0 = 0.3 * torch.randn(37, generator=generator)
    v0 = 0.2 * torch.rand(37, generator=generator)
    param = nn.Parameter(w.clone())
    opt = AdamWeightDecay([("fc.weight", param)], learning_rate=0.01, weight_decay=0.05)
    opt.state[param]["adam_m"].copy_(m0)
    opt.state[param]["adam_v"].copy_(v0)
    ref = (w.numpy(), m0.numpy(), v0.numpy())
    for step in range(3):
        g = 0.5 * torch.randn(37, generator=generator)
        opt((g,))
        ref = numpy_step(
            ref[0], g.numpy(), ref[1], ref[2], lr=0.01, beta1=0.9, beta2=0.999, eps=1e-6, wd=0.05
        )
        assert np.array_equal(param.detach().numpy(), ref[0]), f"w, step {step + 1}"
        assert np.array_equal(opt.state[param]["adam_m"].numpy(), ref[1]), f"m, step {step + 1}"
        assert np.array_equal(opt.state[param]["adam_v"].numpy(), ref[2]), f"v, step {step + 1}"


# ------------------------------------------------------------------------------------------------
# Decay flags, schedules, pipeline


def test_decay_is_decoupled_and_skips_beta_gamma_names_without_groups():
    params = [
        ("fc.weight", nn.Parameter(torch.full((3,), 2.0))),
        ("fc.bias", nn.Parameter(torch.full((3,), 2.0))),
        ("bn.gamma", nn.Parameter(torch.full((3,), 2.0))),
        ("bn.beta", nn.Parameter(torch.full((3,), 2.0))),
    ]
    opt = AdamWeightDecay(params, learning_rate=0.1, weight_decay=0.5)
    assert opt.decay_flags == (True, True, False, False)
    opt(tuple(torch.zeros(3) for _ in params))  # zero gradient: only the decay moves w
    decayed = np.float32(2.0 - np.float64(np.float32(0.1)) * np.float64(np.float32(0.5)) * 2.0)
    assert [p[0].item() for _, p in params] == [decayed, decayed, 2.0, 2.0]


def test_with_groups_decay_follows_the_group_weight_decay_and_may_be_a_schedule():
    params = [(f"bn{i}.gamma", nn.Parameter(torch.full((2,), 3.0))) for i in range(3)]
    schedule = ExponentialDecayLR(0.5, 0.5, 1)
    opt = AdamWeightDecay(
        [
            {"params": params[:1], "weight_decay": 0.5},
            {"params": params[1:2], "weight_decay": 0.0},
            {"params": params[2:], "weight_decay": schedule},
        ],
        learning_rate=0.1,
    )
    assert opt.decay_flags == (True, False, True)
    expected = np.float32(3.0)
    for step in range(3):
        opt(tuple(torch.zeros(2) for _ in params))
        wd = float(schedule(torch.tensor(step, dtype=torch.int32)))  # read before the increment
        expected = np.float32(np.float64(expected) * (1 - np.float64(np.float32(0.1)) * wd))
        assert params[2][1][0].item() == expected, step
    assert params[1][1][0].item() == 3.0


def test_no_bias_correction_and_gradient_centralization_is_ignored():
    def run(gc):
        p = nn.Parameter(torch.zeros(2, 16))
        opt = AdamWeightDecay([{"params": [("fc.weight", p)], "grad_centralization": gc}])
        g = torch.arange(32.0).reshape(2, 16) / 32 + 0.1
        opt((g,))
        return p.detach(), g

    with_gc, g = run(True)
    without, _ = run(False)
    assert torch.equal(with_gc, without)
    # t = 1 without bias correction: m = 0.1 g, v = 0.001 g², step = lr·m/(sqrt(v) + eps).
    b1c, b2c = 1 - np.float64(np.float32(0.9)), 1 - np.float64(np.float32(0.999))
    step = 1e-3 * b1c * g.double() / (np.sqrt(b2c) * g.double() + 1e-6)
    torch.testing.assert_close(without.double(), -step, rtol=1e-6, atol=0)


# ------------------------------------------------------------------------------------------------
# Reference == foreach, checkpoints, names


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
        runs.append((params, AdamWeightDecay(spec, 0.01, weight_decay=0.02, foreach=foreach)))
    for step in range(4):
        for params, opt in runs:
            opt(gradients(params, step))
        assert_bit_identical(snapshot(*runs[0]), snapshot(*runs[1]), f"step {step + 1}")


def test_checkpoint_round_trip_continues_bit_identically():
    straight_params = mixed_params()
    straight = AdamWeightDecay(grouped(straight_params), 0.01, weight_decay=0.02)
    for step in range(6):
        straight(gradients(straight_params, step))
    first_params = mixed_params()
    first = AdamWeightDecay(grouped(first_params), 0.01, weight_decay=0.02)
    for step in range(3):
        first(gradients(first_params, step))
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed_params = mixed_params(seed=4)
    with torch.no_grad():
        for (_, new), (_, old) in zip(resumed_params, first_params):
            new.copy_(old)
    resumed = AdamWeightDecay(grouped(resumed_params), 0.01, weight_decay=0.02)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for step in range(3, 6):
        resumed(gradients(resumed_params, step))
    assert_bit_identical(
        snapshot(straight_params, straight), snapshot(resumed_params, resumed), "resumed"
    )


def test_ms_state_dict_names():
    params = mixed_params()
    state = AdamWeightDecay(params).ms_state_dict()
    expected = {f"{p}.{n}" for p in ("adam_m", "adam_v") for n, _ in params}
    assert set(state) == expected | {"global_step", "learning_rate"}
    assert all(not state[k].any() for k in expected)


@pytest.mark.parametrize("foreach", [False, True])
def test_a_step_reads_no_device_value(foreach):
    params = mixed_params()
    opt = AdamWeightDecay(grouped(params), 0.01, foreach=foreach)
    grads = gradients(params, 0)
    with NoSync():
        opt(grads)
