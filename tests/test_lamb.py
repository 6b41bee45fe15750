"""Lamb: a float64 reference of spec §2.7, reference == foreach, validation, state, convergence.

MindSpore 2.10 has no CPU kernel for Lamb (the golden case ``opt021`` records "Unsupported op
[Lamb] on CPU"), so the truth here is a float64 NumPy transcription of the GPU kernel's formula:
``t`` = ``global_step`` after the increment, bias-corrected moments, the update with ``eps``
outside the square root and the trust-ratio denominator with ``eps`` inside it, the trust ratio
clipped to ``[0, 10]`` (1 when a norm is 0), MindSpore's decay flags, a dynamic weight decay.
"""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch

import msoptim
from golden_replay import REF_ULPS, assert_float32_close, cases, check_optimizer_error
from msoptim.kernels.lamb import lamb_foreach, lamb_reference
from msoptim.optimizers.lamb import Lamb

SHAPES = {
    "conv.weight": (4, 16, 1, 1),
    "fc.weight": (3, 5),
    "bn.gamma": (4,),
    "bn.beta": (4,),
    "fc.bias": (3,),
    "one": (1,),
    "scalar": (),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny tensors: a second OpenMP thread only spins against the other processes on the machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _export(monkeypatch):
    monkeypatch.setattr(msoptim, "Lamb", Lamb, raising=False)


def named_params(seed: int = 0) -> list[tuple[str, torch.nn.Parameter]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (name, torch.nn.Parameter(torch.randn(shape, generator=gen)))
        for name, shape in SHAPES.items()
    ]


def grad_sets(params, steps: int, seed: int = 1) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [[0.5 * torch.randn(p.shape, generator=gen) for _, p in params] for _ in range(steps)]


# ----------------------------------------------------------------------------- float64 reference


def lamb_numpy(
    params: dict[str, np.ndarray],
    grads: list[dict[str, np.ndarray]],
    *,
    lr,
    beta1=0.9,
    beta2=0.999,
    eps=1e-6,
    weight_decay=None,
    centralize=(),
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Spec §2.7 in float64. ``lr(name, step0)`` and ``weight_decay(name, step0)`` (0 = no decay)
    give the per-parameter values at the 0-based step; ``centralize`` names centralized grads.
    beta1, beta2 and eps are MindSpore's float32 tensors: ``1 - float32(0.999)`` is 1.3e-5 away
    from 0.001 in relative terms, far more than float32 rounding of the arithmetic."""
    beta1, beta2, eps = (float(np.float32(x)) for x in (beta1, beta2, eps))
    w = {n: p.astype(np.float64) for n, p in params.items()}
    m = {n: np.zeros_like(p) for n, p in w.items()}
    v = {n: np.zeros_like(p) for n, p in w.items()}
    for step0, step_grads in enumerate(grads):
        t = step0 + 1
        for n, g in step_grads.items():
            g = g.astype(np.float64)
            if n in centralize:
                g = g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True)
            wd = weight_decay(n, step0) if weight_decay else 0.0
            m[n] = beta1 * m[n] + (1 - beta1) * g
            v[n] = beta2 * v[n] + (1 - beta2) * g * g
            m_hat = m[n] / (1 - beta1**t)
            v_hat = v[n] / (1 - beta2**t)
            update = m_hat / (np.sqrt(v_hat) + eps) + wd * w[n]
            g_hat = m_hat / np.sqrt(v_hat + eps) + wd * w[n]
            r1, r2 = np.linalg.norm(w[n]), np.linalg.norm(g_hat)
            trust = r1 / r2 if r1 > 0 and r2 > 0 else 1.0
            trust = 0.0 if math.isnan(trust) or trust < 0 else min(trust, 10.0)
            w[n] = w[n] - trust * lr(n, step0) * update
    return w, m, v


def as_numpy(params, grads):
    return (
        {n: p.detach().numpy().copy() for n, p in params},
        [{n: g.numpy() for (n, _), g in zip(params, step)} for step in grads],
    )


def check_against_reference(params, opt, want_w, want_m, want_v, what):
    for n, p in params:
        assert_float32_close(p, want_w[n], what=f"{what} {n}", ulps=REF_ULPS)
        assert_float32_close(opt.state[p]["lamb_m"], want_m[n], what=f"{what} m {n}", ulps=REF_ULPS)
        assert_float32_close(opt.state[p]["lamb_v"], want_v[n], what=f"{what} v {n}", ulps=REF_ULPS)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_matches_reference_without_groups(foreach, weight_decay):
    params = named_params()
    grads = grad_sets(params, 5)
    w0, g_np = as_numpy(params, grads)
    opt = Lamb(params, learning_rate=0.01, weight_decay=weight_decay, foreach=foreach)
    for step_grads in grads:
        opt(tuple(step_grads))
    # Without groups the decay flags come from names: gamma/beta are not decayed (bias is).
    wd = lambda n, s: 0.0 if ("gamma" in n or "beta" in n) else weight_decay  # noqa: E731
    want = lamb_numpy(w0, g_np, lr=lambda n, s: 0.01, weight_decay=wd)
    check_against_reference(params, opt, *want, what=f"wd={weight_decay}")
    assert opt.global_step.tolist() == [5]


@pytest.mark.parametrize("foreach", [False, True])
def test_matches_reference_with_groups_schedule_lr_and_dynamic_weight_decay(foreach):
    params = named_params()
    grads = grad_sets(params, 6)
    w0, g_np = as_numpy(params, grads)
    schedule = msoptim.CosineDecayLR(0.001, 0.02, 4)
    wd_schedule = msoptim.ExponentialDecayLR(0.1, 0.5, 1)
    table = [0.03, 0.02, 0.025, 0.01, 0.015, 0.005]
    groups = [
        # gamma decays here: with groups the rule is "group weight decay > 0"
        {"params": params[:3], "weight_decay": 0.02, "lr": table, "grad_centralization": True},
        {"params": params[3:5], "weight_decay": wd_schedule},
        {"params": params[5:]},
    ]
    opt = Lamb(groups, learning_rate=schedule, beta1=0.8, beta2=0.99, eps=1e-4, foreach=foreach)
    for step_grads in grads:
        opt(tuple(step_grads))
    names = [n for n, _ in params]
    group_of = {n: (0 if i < 3 else 1 if i < 5 else 2) for i, n in enumerate(names)}

    def lr(n, step):
        if group_of[n] == 0:
            return float(np.float32(table[step]))
        return float(schedule(torch.tensor(step, dtype=torch.int32)))

    def wd(n, step):
        return [0.02, 0.1 * 0.5**step, 0.0][group_of[n]]

    want = lamb_numpy(
        w0,
        g_np,
        lr=lr,
        weight_decay=wd,
        beta1=0.8,
        beta2=0.99,
        eps=1e-4,
        centralize={"conv.weight"},
    )
    check_against_reference(params, opt, *want, what="groups")


def test_golden_parameters_against_reference():
    """The recorded case MindSpore could not run on CPU (``opt021``): msoptim runs its 10 steps on
    the recorded parameters and gradients, and agrees with the float64 formula."""
    (case,) = [c for c in cases("optimizer_error") if c.get("optimizer") == "Lamb"]
    for style in ("call", "step"):
        check_optimizer_error(case, style)
    params = [
        (spec["name"], torch.nn.Parameter(torch.tensor(spec["init"]).reshape(spec["shape"])))
        for spec in case["params"]
    ]
    grads = [
        [torch.tensor(step[n], dtype=torch.float32).reshape(p.shape) for n, p in params]
        for step in case["grads"]
    ]
    w0, g_np = as_numpy(params, grads)
    opt = Lamb(params, learning_rate=0.01, weight_decay=0.01)
    assert opt.decay_flags == tuple(case["decay_flags"])
    assert set(opt.ms_state_dict()) - {"global_step", "learning_rate"} == set(case["init_state"])
    for step_grads in grads:
        opt(tuple(step_grads))
    wd = lambda n, s: 0.0 if ("gamma" in n or "beta" in n) else 0.01  # noqa: E731
    check_against_reference(
        params, opt, *lamb_numpy(w0, g_np, lr=lambda n, s: 0.01, weight_decay=wd), what="opt021"
    )


# ----------------------------------------------------------------------------- trust ratio


def _one_step(param: torch.Tensor, grad: torch.Tensor, **kwargs) -> torch.Tensor:
    p = torch.nn.Parameter(param.clone())
    Lamb([("w", p)], learning_rate=1.0, **kwargs)((grad,))
    return p.detach()


def test_trust_ratio_edge_cases():
    # ||w|| = 0: trust 1, the step is the plain update m_hat / (sqrt(v_hat) + eps) ~ sign(g).
    moved = _one_step(torch.zeros(3), torch.tensor([1.0, -2.0, 4.0]))
    assert torch.allclose(moved, -torch.tensor([1.0, -1.0, 1.0]), atol=1e-5)
    # zero gradient and no decay: g_hat = 0, trust 1, update 0: nothing moves.
    assert torch.equal(_one_step(torch.ones(3), torch.zeros(3)), torch.ones(3))
    # ||w|| / ||g_hat|| = 1000 is clipped to 10: w - 10 * lr * update.
    moved = _one_step(torch.full((4,), 500.0), torch.tensor([1.0, -1.0, 1.0, -1.0]))
    assert torch.allclose(moved, torch.tensor([490.0, 510.0, 490.0, 510.0]), atol=1e-3)


def test_eps_inside_the_trust_denominator():
    """With eps comparable to v_hat the two eps placements differ visibly: the trust ratio uses
    sqrt(v_hat + eps), the update sqrt(v_hat) + eps."""
    w, g, eps = torch.tensor([3.0, 4.0]), torch.tensor([0.01, 0.01]), 1e-4
    moved = _one_step(w, g, eps=eps)
    update = 0.01 / (0.01 + eps)
    g_hat = 0.01 / math.sqrt(1e-4 + eps)
    trust = 5.0 / (math.sqrt(2) * g_hat)
    expected = w - trust * update
    assert torch.allclose(moved, expected, rtol=1e-6)


# ----------------------------------------------------------------------------- reference == foreach


def _mixed(seed: int):
    params = named_params(seed)
    gen = torch.Generator().manual_seed(seed + 3)
    params.append(("t.weight", torch.nn.Parameter(torch.randn(6, 3, generator=gen).t())))
    params.append(("zero", torch.nn.Parameter(torch.zeros(2, 2))))
    return params


@pytest.mark.parametrize("dynamic_wd", [False, True])
def test_reference_equals_foreach_bitwise(dynamic_wd):
    snapshots = {}
    for foreach in (False, True):
        params = _mixed(2)
        wd = msoptim.ExponentialDecayLR(0.1, 0.9, 2) if dynamic_wd else 0.05
        groups = [
            {"params": params[:4], "weight_decay": wd},
            {"params": params[4:], "lr": [0.02, 0.01, 0.03, 0.01]},
        ]
        opt = Lamb(groups, learning_rate=0.01, foreach=foreach)
        history = []
        for step_grads in grad_sets(params, 4, seed=5):
            opt(tuple(step_grads))
            history.append(
                (
                    [p.detach().clone() for _, p in params],
                    {k: v.clone() for k, v in opt.ms_state_dict().items()},
                )
            )
        snapshots[foreach] = history
    for step, ((p_ref, s_ref), (p_fe, s_fe)) in enumerate(zip(snapshots[False], snapshots[True])):
        for a, b in zip(p_ref, p_fe):
            assert torch.equal(a, b), f"parameters differ at step {step}"
        for key in s_ref:
            assert torch.equal(s_ref[key], s_fe[key]), f"{key} differs at step {step}"


def test_kernels_direct_call_bitwise():
    results = []
    for kernel in (lamb_reference, lamb_foreach):
        gen = torch.Generator().manual_seed(9)
        params = [torch.randn(3, 4, generator=gen), torch.randn((), generator=gen)]
        grads = [torch.randn(p.shape, generator=gen) for p in params]
        ms, vs = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
        for t in (1.0, 2.0, 3.0):
            kernel(
                params, grads, ms, vs, lr=torch.tensor(0.1), step=torch.tensor(t),
                beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.01, decay_flags=[True, False],
            )  # fmt: skip
        results.append([*params, *ms, *vs])
    for a, b in zip(*results):
        assert torch.equal(a, b)


# ----------------------------------------------------------------------------- state, checkpoints


def test_state_names_and_no_loss_scale():
    params = named_params()
    opt = Lamb(params, learning_rate=0.1)
    expected = {"global_step", "learning_rate"}
    expected |= {f"lamb_{k}.{n}" for n, _ in params for k in "mv"}
    assert set(opt.ms_state_dict()) == expected
    assert opt.loss_scale == 1.0
    assert not opt.need_scale
    with pytest.raises(TypeError):
        Lamb(params, learning_rate=0.1, loss_scale=2.0)


def test_state_dict_round_trip_continues_bitwise():
    params = named_params()
    grads = grad_sets(params, 6)
    schedule = msoptim.WarmUpLR(0.05, 3)
    opt = Lamb(params, learning_rate=schedule, weight_decay=0.01)
    for step_grads in grads[:3]:
        opt(tuple(step_grads))
    buffer = io.BytesIO()
    torch.save(copy.deepcopy(opt.state_dict()), buffer)
    resumed_params = [(n, torch.nn.Parameter(p.detach().clone())) for n, p in params]
    resumed = Lamb(resumed_params, learning_rate=msoptim.WarmUpLR(0.05, 3), weight_decay=0.01)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for step_grads in grads[3:]:
        opt(tuple(step_grads))
        resumed(tuple(step_grads))
    for (_, a), (_, b) in zip(params, resumed_params):
        assert torch.equal(a, b)
    assert resumed.global_step.tolist() == [6]


# ----------------------------------------------------------------------------- validation


ERRORS = [
    ({"beta1": 1}, TypeError, r"'beta1' must be a float"),
    ({"beta2": 0}, TypeError, r"'beta2' must be a float"),
    ({"eps": 1}, TypeError, r"'eps' must be a float"),
    ({"beta1": 0.0}, ValueError, r"'beta1' must be in the range \(0.0, 1.0\)"),
    ({"beta1": 1.0}, ValueError, r"'beta1'"),
    ({"beta2": 1.0}, ValueError, r"'beta2'"),
    ({"eps": 0.0}, ValueError, r"'eps'"),
    ({"eps": -1e-6}, ValueError, r"'eps'"),
    ({"weight_decay": -0.1}, ValueError, r"'weight_decay'"),
    ({"weight_decay": "0.1"}, TypeError, r"'weight_decay'"),
    ({"learning_rate": -0.1}, ValueError, r"'learning_rate'"),
]


@pytest.mark.parametrize(("kwargs", "exc", "match"), ERRORS, ids=[str(e[0]) for e in ERRORS])
def test_argument_errors(kwargs, exc, match):
    kwargs = {"learning_rate": 0.01, **kwargs}
    with pytest.raises(exc, match=match):
        Lamb(named_params(), **kwargs)


def test_learning_rate_is_required_and_weight_decay_int_accepted():
    with pytest.raises(TypeError):
        Lamb(named_params())  # type: ignore[call-arg]
    opt = Lamb(named_params(), learning_rate=1, weight_decay=0)  # MindSpore converts both
    assert float(opt.get_lr()) == 1.0


# ----------------------------------------------------------------------------- convergence


def test_converges_on_least_squares():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(64, 8, generator=gen)
    x_true = torch.randn(8, 1, generator=gen)
    b = a @ x_true
    x = torch.nn.Parameter(torch.zeros(8, 1))
    bias = torch.nn.Parameter(torch.zeros(1))
    opt = Lamb([("x", x), ("bias", bias)], learning_rate=0.05)
    first = None
    for _ in range(300):
        opt.zero_grad()
        loss = torch.mean((a @ x + bias - b) ** 2)
        loss.backward()
        first = float(loss.detach()) if first is None else first
        opt.step()
    with torch.no_grad():
        final = float(torch.mean((a @ x + bias - b) ** 2))
    assert final < 1e-3 * first, (first, final)
