"""AdaFactor: golden parity, a float64 reference of MindSpore's kernel, reference == foreach, state.

Contract: msoptim's AdaFactor is MindSpore's ``nn.AdaFactor`` as it runs on CPU (the
``FusedAdaFactor`` kernel: its op order and its ``1e-30`` floors), with MindSpore's argument
checks, state names and shapes (``(1,)`` dummies included) and its ``step`` counter. The golden
case fixes the default (relative-step) mode; the settings it does not cover (fixed lr, weight
decay, warm-up, ``beta1=None``, compression, groups) are checked against a float64 NumPy
transcription of the same formula written here.
"""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch

import msoptim
from golden_replay import (
    REF_ULPS,
    assert_float32_close,
    cases,
    check_optimizer,
    f32,
    make_params,
    sample_cases,
    ulp_distance,
)
from msoptim.kernels.adafactor import adafactor_foreach, adafactor_reference
from msoptim.optimizers.adafactor import AdaFactor

SHAPES = {
    "w2": (3, 5),
    "w4": (2, 3, 2, 4),
    "vec": (4,),
    "one": (1,),
    "scalar": (),
    "bn.gamma": (3,),
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
    # The golden replay builds optimizers by name from the msoptim namespace.
    monkeypatch.setattr(msoptim, "AdaFactor", AdaFactor, raising=False)


def named_params(seed: int = 0, shapes=SHAPES) -> list[tuple[str, torch.nn.Parameter]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (name, torch.nn.Parameter(torch.randn(shape, generator=gen)))
        for name, shape in shapes.items()
    ]


def grad_sets(params, steps: int, seed: int = 1) -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for step in range(steps):
        grads = [0.5 * torch.randn(p.shape, generator=gen) for _, p in params]
        grads[0].view(-1)[0] = 0.0 if step % 2 == 0 else grads[0].view(-1)[0]  # exact zeros too
        out.append(grads)
    return out


# ----------------------------------------------------------------------------- float64 reference


def adafactor_numpy(
    params: dict[str, np.ndarray],
    grads: list[dict[str, np.ndarray]],
    *,
    lr: dict[str, float] | float | None = None,
    eps=(1e-30, 1e-3),
    clip_threshold=1.0,
    decay_rate=0.8,
    beta1=0.9,
    weight_decay: dict[str, float] | float = 0.0,
    scale_parameter=True,
    relative_step=True,
    warmup_init=False,
    compression=False,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """MindSpore's CPU AdaFactor in float64 (float16 rounding of ``exp_avg_sq`` under compression)."""
    floor = 1e-30
    w = {n: p.astype(np.float64) for n, p in params.items()}
    state = {}
    for n, p in w.items():
        s = p.shape
        state[n] = {
            "m": np.zeros(s),
            "row": np.zeros(s[:-1]) if p.ndim >= 2 else None,
            "col": np.zeros(s[:-2] + s[-1:]) if p.ndim >= 2 else None,
            "v": np.zeros(s) if p.ndim < 2 else None,
        }
    rms = lambda x: math.sqrt(np.mean(np.square(x)))  # noqa: E731
    b1 = 0.0 if beta1 is None else beta1
    for t, step_grads in enumerate(grads, start=1):
        rho = min(1e-6 * t if warmup_init else 1e-2, 1 / math.sqrt(t))
        beta2t = 1.0 - t ** (-decay_rate)
        for n, g in step_grads.items():
            g = g.astype(np.float64)
            st, p = state[n], w[n]
            step_lr = rho if relative_step else (lr[n] if isinstance(lr, dict) else lr)
            wd = weight_decay[n] if isinstance(weight_decay, dict) else weight_decay
            upd = g * g + eps[0]
            if p.ndim >= 2:
                st["row"] = beta2t * st["row"] + (1 - beta2t) * upd.mean(-1)
                st["col"] = np.maximum(beta2t * st["col"] + (1 - beta2t) * upd.mean(-2), floor)
                r = np.sqrt(st["row"] / np.maximum(st["row"].mean(-1, keepdims=True), floor))
                u = g / np.maximum(r[..., :, None] * np.sqrt(st["col"])[..., None, :], floor)
            else:
                st["v"] = np.maximum(beta2t * st["v"] + (1 - beta2t) * upd, floor)
                if compression:
                    st["v"] = st["v"].astype(np.float16).astype(np.float64)
                u = g / np.sqrt(np.maximum(st["v"], floor))
            alpha = step_lr * max(eps[1], rms(p)) if scale_parameter else step_lr
            u = u * alpha / max(rms(u) / clip_threshold, 1.0)
            if b1 > 0:
                st["m"] = b1 * st["m"] + (1 - b1) * u
                u = st["m"]
            w[n] = p - (u + wd * alpha * p)
    return w, state


def run_msoptim(opt_factory, params, grads):
    opt = opt_factory(params)
    for step_grads in grads:
        opt(tuple(step_grads))
    return opt


def as_numpy(params, grads):
    return (
        {n: p.detach().numpy().copy() for n, p in params},
        [{n: g.numpy() for (n, _), g in zip(params, step)} for step in grads],
    )


# ----------------------------------------------------------------------------- golden


@pytest.mark.parametrize("style", ["call", "step"])
def test_golden_cases_replay(style):
    found = [case for case in cases("optimizer") if case["optimizer"] == "AdaFactor"]
    assert found, "no AdaFactor golden case"
    for case in found:
        check_optimizer(case, style)


def _golden_ulps(foreach: bool) -> tuple[int, int]:
    """The largest distance in float32 ulps from the recording, over every step: parameters, state."""
    worst_params = worst_state = 0
    for case in [c for c in sample_cases("optimizer") if c["optimizer"] == "AdaFactor"]:
        params = make_params(case["params"])
        opt = AdaFactor(list(params.items()), **case["kwargs"], foreach=foreach)
        for t, record in enumerate(case["expect"]):
            grads = [
                torch.tensor(
                    np.asarray(case["grads"][t][n], np.float64), dtype=torch.float32
                ).reshape(params[n].shape)
                for n in opt.parameter_names
            ]
            opt(tuple(grads))
            assert float(opt.get_lr()) == 0.0
            for name, values in record["params"].items():
                distance = ulp_distance(params[name].detach().numpy().ravel(), f32(values))
                worst_params = max(worst_params, int(distance.max()))
            state = opt.ms_state_dict()
            for name, values in record.get("state", {}).items():
                distance = ulp_distance(state[name].float().numpy().ravel(), f32(values["values"]))
                worst_state = max(worst_state, int(distance.max()))
    return worst_params, worst_state


@pytest.mark.parametrize("foreach", [False, True])
def test_golden_bit_exact_on_cpu(foreach):
    """MindSpore's sequential float32 sums and exact square roots: the same bits, every step."""
    assert _golden_ulps(foreach) == (0, 0)


@pytest.mark.parametrize("foreach", [False, True])
def test_golden_with_torch_reductions_within_two_ulp(monkeypatch, foreach):
    """Where the sums are torch's (CUDA, DTensor, tracing): measured 2 ulp in the parameters."""
    import msoptim.kernels._sequential_sums as sums
    import msoptim.kernels.adafactor as kernels

    for module in (sums, kernels):
        monkeypatch.setattr(module, "sequential", lambda x: False)
    worst_params, _ = _golden_ulps(foreach)
    assert worst_params <= 2


# ----------------------------------------------------------------------------- float64 reference


CONFIGS = {
    "default": {},
    "fixed-lr": {"learning_rate": 0.01, "relative_step": False, "scale_parameter": False},
    "fixed-lr-scaled": {"learning_rate": 0.05, "relative_step": False},
    "weight-decay": {"weight_decay": 0.1},
    "warmup": {"warmup_init": True},
    "no-first-moment": {"beta1": None, "clip_threshold": 0.5, "decay_rate": 0.5},
    "compression": {"compression": True},
    "eps": {"eps": (1e-3, 0.5)},
}


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("foreach", [False, True])
def test_matches_float64_reference(name, foreach):
    kwargs = CONFIGS[name]
    params = named_params()
    grads = grad_sets(params, 6)
    w0, g_np = as_numpy(params, grads)
    opt = run_msoptim(lambda p: AdaFactor(p, **kwargs, foreach=foreach), params, grads)
    ref_kwargs = {k: v for k, v in kwargs.items() if k != "learning_rate"}
    want, state = adafactor_numpy(w0, g_np, lr=kwargs.get("learning_rate"), **ref_kwargs)
    for n, p in params:
        assert_float32_close(p, want[n], what=f"{name} {n}", ulps=REF_ULPS)
    for n, p in params:
        st = opt.state[p]
        if p.ndim >= 2:
            assert_float32_close(st["exp_avg_sq_col"], state[n]["col"], what=n, ulps=REF_ULPS)
        else:
            assert_float32_close(st["exp_avg_sq"].float(), state[n]["v"], what=n, ulps=REF_ULPS)


def test_groups_share_the_top_level_weight_decay_which_decays_every_parameter():
    """MindSpore's AdaFactor applies its ``weight_decay`` argument to every parameter, gamma/beta
    included, and ignores a group's own (msoptim warns): the run equals the float64 model with
    the top-level value everywhere."""
    params = named_params()
    grads = grad_sets(params, 4)
    w0, g_np = as_numpy(params, grads)
    groups = [{"params": params[:3], "weight_decay": 0.2}, {"params": params[3:]}]
    with pytest.warns(UserWarning, match=r"param_groups\[0\]\['weight_decay'\] = 0.2 .*ignored"):
        run_msoptim(
            lambda _: AdaFactor(
                groups, learning_rate=0.01, relative_step=False, weight_decay=0.05, foreach=False
            ),
            params,
            grads,
        )
    want, _ = adafactor_numpy(w0, g_np, lr=0.01, weight_decay=0.05, relative_step=False)
    for n, p in params:
        assert_float32_close(p, want[n], what=n, ulps=REF_ULPS)


def test_a_group_lr_is_refused_with_a_fixed_lr_and_ignored_with_relative_steps():
    """MindSpore 2.10: a group ``lr`` makes AdaFactor's first step fail (ValueError) with
    ``relative_step=False``; with ``relative_step=True`` it is ignored (msoptim warns)."""
    params = named_params()
    groups = [{"params": params[:2], "lr": 0.5}, {"params": params[2:]}]
    fixed = {"learning_rate": 0.01, "relative_step": False}
    with pytest.raises(ValueError, match="one learning rate for all parameters"):
        AdaFactor(groups, **fixed)
    with pytest.raises(ValueError, match="one learning rate for all parameters"):
        AdaFactor([{"params": params[:2], "lr": 0.01}, {"params": params[2:]}], **fixed)
    twin = named_params()
    grads = grad_sets(params, 3)
    with pytest.warns(UserWarning, match="sets 'lr'; it is ignored"):
        run_msoptim(lambda _: AdaFactor(groups), params, grads)
    run_msoptim(lambda p: AdaFactor(p), twin, grads)
    for (_, a), (_, b) in zip(params, twin):
        assert torch.equal(a, b)


# ----------------------------------------------------------------------------- reference == foreach


def _mixed_params(seed: int) -> list[tuple[str, torch.nn.Parameter]]:
    params = named_params(seed)
    gen = torch.Generator().manual_seed(seed + 7)
    base = torch.randn(5, 4, generator=gen)
    # A non-contiguous parameter (a transposed view's storage) and a 1-element matrix.
    params.append(("t", torch.nn.Parameter(base.t())))
    params.append(("m11", torch.nn.Parameter(torch.randn(1, 1, generator=gen))))
    return params


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"beta1": None, "weight_decay": 0.1, "compression": True},
        {"learning_rate": 0.1, "relative_step": False, "warmup_init": False},
    ],
)
def test_reference_equals_foreach_bitwise(kwargs):
    runs = []
    for foreach in (False, True):
        params = _mixed_params(3)
        groups = [{"params": params[:4]}, {"params": params[4:]}]
        opt = AdaFactor(groups, **kwargs, foreach=foreach)
        grads = grad_sets(params, 4, seed=11)
        for step, step_grads in enumerate(grads):
            opt(tuple(step_grads))
            runs.append(
                (
                    foreach,
                    step,
                    [p.detach().clone() for _, p in params],
                    copy.deepcopy({k: v.clone() for k, v in opt.ms_state_dict().items()}),
                )
            )
    half = len(runs) // 2
    for (_, step, p_ref, s_ref), (_, _, p_fe, s_fe) in zip(runs[:half], runs[half:]):
        for a, b in zip(p_ref, p_fe):
            assert torch.equal(a, b), f"parameters differ at step {step}"
        assert s_ref.keys() == s_fe.keys()
        for key in s_ref:
            assert torch.equal(s_ref[key], s_fe[key]), f"{key} differs at step {step}"


def test_kernels_bitwise_on_16bit_parameters():
    """bfloat16 parameters are computed in float32 and rounded once, by both kernels."""
    results = []
    for kernel in (adafactor_reference, adafactor_foreach):
        gen = torch.Generator().manual_seed(5)
        params = [torch.randn(4, 3, generator=gen).bfloat16(), torch.randn(5, generator=gen)]
        grads = [torch.randn(p.shape, generator=gen).to(p.dtype) for p in params]
        rows = [torch.zeros(4, dtype=torch.bfloat16), torch.zeros(1)]
        cols = [torch.zeros(3, dtype=torch.bfloat16), torch.zeros(1)]
        sqs = [torch.zeros(1, dtype=torch.bfloat16), torch.zeros(5)]
        avgs = [torch.zeros_like(p) for p in params]
        kernel(
            params, grads, avgs, rows, cols, sqs,
            lr=torch.tensor(0.01), beta2t=torch.tensor(0.3), eps=(1e-30, 1e-3),
            clip_threshold=1.0, beta1=0.9, weight_decay=0.1, scale_parameter=True,
        )  # fmt: skip
        results.append([*params, *rows, *cols, *sqs, *avgs])
    for a, b in zip(*results):
        assert a.dtype == b.dtype
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "shape",
    [(33, 17), (4, 100, 1), (2, 16, 1, 1), (1, 1000, 2), (64, 32, 3, 3), (3, 1), (2, 16), (17, 2)],
    # (the last axis: 1 term, at most SLICE_LOOP_MAX terms, more; the rest: 1 element or more)
)
@pytest.mark.parametrize("block", [None, 34])
def test_sequential_sums(shape, block, monkeypatch):
    """The CPU sums are MindSpore's loops: element after element, rounded to float32 each time."""
    import msoptim.kernels._sequential_sums as sums
    import msoptim.kernels.adafactor as kernels

    if block is not None:  # blocks of 2 rows of 17 terms, and a last block of 1 row
        monkeypatch.setattr(sums, "BLOCK_ELEMENTS", block)

    x = torch.rand(shape, generator=torch.Generator().manual_seed(len(shape)))
    for dim in (-1, -2):
        moved = x.movedim(dim, 0)
        expected = moved[0].clone()
        for row in moved[1:]:
            expected += row
        assert torch.equal(sums.sum_along(x, dim), expected)
        assert torch.equal(
            sums.sum_along(x.transpose(0, 1), dim), _loop_sum(x.transpose(0, 1), dim)
        )
    flat = x.reshape(-1)[:1000]
    expected = torch.zeros(())
    for value in flat:
        expected += value
    assert torch.equal(kernels._sum_all(flat), expected)
    # A 1-D tensor (the row statistics of a matrix), kept as one element.
    assert torch.equal(sums.sum_along(flat, -1, keepdim=True), expected.reshape(1))


def _loop_sum(x: torch.Tensor, dim: int) -> torch.Tensor:
    moved = x.movedim(dim, 0)
    total = moved[0].clone()
    for row in moved[1:]:
        total += row
    return total


# ----------------------------------------------------------------------------- state, lr, steps


def test_state_names_shapes_and_dummies():
    params = named_params()
    opt = AdaFactor(params, compression=True)
    state = opt.ms_state_dict()
    expected = {"global_step", "learning_rate", "step"}
    for name, _p in params:
        expected |= {f"exp_avg.{name}", f"exp_avg_sq_row_{name}", f"exp_avg_sq_col_{name}"}
        expected.add(f"exp_avg_sq_{name}")
    assert set(state) == expected
    assert state["step"].shape == (1,)
    assert state["step"].dtype == torch.float32
    assert state["exp_avg_sq_row_w4"].shape == (2, 3, 2)
    assert state["exp_avg_sq_col_w4"].shape == (2, 3, 4)
    assert state["exp_avg_sq_row_w2"].shape == (3,)
    assert state["exp_avg_sq_col_w2"].shape == (5,)
    assert state["exp_avg_sq_w2"].shape == (1,)
    assert state["exp_avg_sq_w2"].dtype == torch.float32
    assert state["exp_avg_sq_row_vec"].shape == (1,)
    assert state["exp_avg_sq_col_vec"].shape == (1,)
    assert state["exp_avg_sq_vec"].shape == (4,)
    assert state["exp_avg_sq_vec"].dtype == torch.float16
    assert state["exp_avg_sq_scalar"].shape == ()
    assert all(float(t.abs().sum()) == 0.0 for t in state.values())


def test_without_first_moment_there_is_no_exp_avg():
    for beta1 in (None, 0.0, 0):
        opt = AdaFactor(named_params(), beta1=beta1)
        assert not any(k.startswith("exp_avg.") for k in opt.ms_state_dict())


def test_step_and_global_step_advance_once_per_call_and_lr_reports_zero():
    params = named_params()
    groups = [{"params": params[:2]}, {"params": params[2:]}]
    opt = AdaFactor(groups, weight_decay=0.1)
    for step, grads in enumerate(grad_sets(params, 3), start=1):
        assert float(opt.get_lr()) == 0.0
        opt(tuple(grads))
        assert opt.ms_state_dict()["step"].tolist() == [float(step)]
        assert opt.global_step.tolist() == [step]
    # Parameters without a gradient are skipped; the counters still advance (as in MindSpore).
    opt((None,) * len(params))
    assert opt.ms_state_dict()["step"].tolist() == [4.0]


def test_weight_decay_property_is_not_loss_scaled():
    opt = AdaFactor(named_params(), weight_decay=0.25, loss_scale=8.0)
    assert float(opt.weight_decay) == 0.25
    assert float(opt.get_weight_decay()) == 0.25
    groups = [{"params": named_params()[:2], "weight_decay": 0.5}, {"params": named_params()[2:]}]
    with pytest.warns(UserWarning, match="ignored"):
        opt = AdaFactor(groups, weight_decay=0.25)
    assert [float(x) for x in opt.weight_decay] == [0.25] * 6


def test_loss_scale_is_not_applied():
    params_a, params_b = named_params(), named_params()
    grads = grad_sets(params_a, 3)
    run_msoptim(lambda p: AdaFactor(p), params_a, grads)
    run_msoptim(lambda p: AdaFactor(p, loss_scale=1024.0), params_b, grads)
    for (_, a), (_, b) in zip(params_a, params_b):
        assert torch.equal(a, b)


def test_non_numeric_lr_turns_parameter_scaling_off_with_a_warning():
    params = named_params()
    with pytest.warns(UserWarning, match="scale_parameter=True is ignored"):
        opt = AdaFactor(params, learning_rate=[0.01] * 5, relative_step=False)
    grads = grad_sets(params, 2)
    w0, g_np = as_numpy(params, grads)
    run_msoptim(lambda _: opt, params, grads)
    want, _ = adafactor_numpy(w0, g_np, lr=0.01, relative_step=False, scale_parameter=False)
    for n, p in params:
        assert_float32_close(p, want[n], what=n, ulps=REF_ULPS)


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("kwargs", [{}, {"compression": True, "beta1": None}])
def test_state_dict_round_trip_continues_bitwise(kwargs):
    params = named_params()
    grads = grad_sets(params, 6)
    opt = AdaFactor(params, **kwargs)
    for step_grads in grads[:3]:
        opt(tuple(step_grads))
    buffer = io.BytesIO()
    torch.save(copy.deepcopy(opt.state_dict()), buffer)
    snapshot = [p.detach().clone() for _, p in params]

    resumed_params = [(n, torch.nn.Parameter(s.clone())) for (n, _), s in zip(params, snapshot)]
    resumed = AdaFactor(resumed_params, **kwargs)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    steps = {id(st["step"]) for st in resumed.state.values()}
    assert len(steps) == 1, "step must be one tensor shared by every parameter"
    if kwargs.get("compression"):
        assert resumed.state[resumed_params[2][1]]["exp_avg_sq"].dtype == torch.float16
    for step_grads in grads[3:]:
        opt(tuple(step_grads))
        resumed(tuple(step_grads))
    for (_, a), (_, b) in zip(params, resumed_params):
        assert torch.equal(a, b)
    for key, value in opt.ms_state_dict().items():
        assert torch.equal(value, resumed.ms_state_dict()[key]), key


def test_ms_state_dict_round_trip():
    params = named_params()
    opt = AdaFactor(params)
    for step_grads in grad_sets(params, 2):
        opt(tuple(step_grads))
    saved = {k: v.clone() for k, v in opt.ms_state_dict().items()}
    fresh = AdaFactor(named_params())
    fresh.load_ms_state_dict(saved)
    for key, value in fresh.ms_state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert {id(st["step"]) for st in fresh.state.values()} == {id(fresh.ms_state_dict()["step"])}


def test_add_param_group_shares_the_step_counter():
    params = named_params()
    opt = AdaFactor(
        [{"params": params[:3]}], learning_rate=0.01, relative_step=False, scale_parameter=False
    )
    with pytest.warns(UserWarning, match=r"weight_decay 0.1 .*is ignored"):
        opt.add_param_group({"params": params[3:], "weight_decay": 0.1})
    assert len({id(st["step"]) for st in opt.state.values()}) == 1
    assert [group["weight_decay"] for group in opt.param_groups] == [0.0, 0.0]
    with pytest.raises(ValueError, match="one learning rate for all parameters"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))], "lr": 0.1})
    assert len(opt.param_groups) == 2
    relative = AdaFactor([{"params": params[:3]}])
    with pytest.warns(UserWarning, match="it is ignored"):
        relative.add_param_group({"params": params[3:], "lr": 0.1})


# ----------------------------------------------------------------------------- validation


ERRORS = [
    ({"learning_rate": 0.01}, ValueError, r"'learning_rate' must be None when relative_step"),
    (
        {"warmup_init": True, "relative_step": False, "learning_rate": 0.1},
        ValueError,
        "warmup_init",
    ),
    ({"relative_step": False}, ValueError, r"'learning_rate' is required"),
    ({"eps": 1e-30}, TypeError, r"'eps' must be a tuple or list"),
    ({"eps": (1e-30, 1e-3, 1.0)}, ValueError, r"'eps' must be two floats"),
    ({"eps": (0, 1e-3)}, TypeError, r"'eps\[0\]' must be a non-negative float"),
    ({"eps": (1e-30, -1e-3)}, ValueError, r"'eps\[1\]' must be a finite float >= 0"),
    ({"clip_threshold": 1}, TypeError, r"'clip_threshold'"),
    ({"clip_threshold": -1.0}, ValueError, r"'clip_threshold'"),
    ({"decay_rate": 1}, TypeError, r"'decay_rate'"),
    ({"decay_rate": 1.0}, ValueError, r"'decay_rate' must be in the range \(0.0, 1.0\)"),
    ({"decay_rate": 0.0}, ValueError, r"'decay_rate'"),
    ({"weight_decay": 0}, TypeError, r"'weight_decay' must be a float"),
    ({"weight_decay": 1.0}, ValueError, r"'weight_decay' must be in the range \[0.0, 1.0\)"),
    ({"weight_decay": -0.1}, ValueError, r"'weight_decay'"),
    ({"weight_decay": msoptim.WarmUpLR(0.1, 2)}, TypeError, r"'weight_decay'"),
    ({"scale_parameter": 1}, TypeError, r"'scale_parameter' must be a bool"),
    ({"relative_step": 1}, TypeError, r"'relative_step' must be a bool"),
    ({"compression": "yes"}, TypeError, r"'compression' must be a bool"),
    ({"beta1": True}, TypeError, r"'beta1'"),
    ({"beta1": "0.9"}, TypeError, r"'beta1'"),
    ({"beta1": -0.1}, ValueError, r"'beta1'"),
    ({"loss_scale": 0.0}, ValueError, r"'loss_scale'"),
]


@pytest.mark.parametrize(("kwargs", "exc", "match"), ERRORS, ids=[str(e[0]) for e in ERRORS])
def test_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        AdaFactor(named_params(), **kwargs)


def test_accepted_like_mindspore():
    AdaFactor(named_params(), beta1=0)  # an int beta1 is fine
    # Accepted at construction, refused by the kernel at the first step (nothing changes).
    for kwargs, match in (({"beta1": 1.5}, "beta1"), ({"clip_threshold": 0.0}, "clip_threshold")):
        params = named_params()
        opt = AdaFactor(params, **kwargs)
        with pytest.raises(RuntimeError, match=match):
            opt(tuple(grad_sets(params, 1)[0]))
        assert opt.global_step.tolist() == [0]
        assert opt.ms_state_dict()["step"].tolist() == [0.0]
    AdaFactor(named_params(), learning_rate=1, relative_step=False)  # int lr converts
    AdaFactor(named_params(), eps=[0.0, 0.0])


def test_group_weight_decays_mindspore_ignores_are_warned_not_refused():
    """A schedule or a value MindSpore's own check would refuse (2.0) in a group: MindSpore's
    base class accepts them and AdaFactor never reads them."""
    params = named_params()
    schedule = msoptim.WarmUpLR(0.1, 2)
    with pytest.warns(UserWarning, match=r"param_groups\[1\]\['weight_decay'\] = .*WarmUpLR"):
        opt = AdaFactor([{"params": params[:2]}, {"params": params[2:], "weight_decay": schedule}])
    assert [group["weight_decay"] for group in opt.param_groups] == [0.0, 0.0]
    opt(tuple(grads for grads in grad_sets(params, 1)[0]))  # the step never reads the schedule
    assert opt.ms_state_dict()["step"].tolist() == [1.0]
    with pytest.warns(UserWarning, match=r"param_groups\[0\]\['weight_decay'\] = 2.0"):
        AdaFactor([{"params": params, "weight_decay": 2.0}])


def test_relative_steps_ignore_a_group_table_even_past_its_end():
    """MindSpore 2.10 (recorded: seed 301): with ``relative_step=True`` a group's lr table is
    never read by the step, which goes on past the table's end, while ``get_lr()`` there fails."""
    params, twin = named_params(), named_params()
    groups = [{"params": params[:2], "lr": [0.005]}, {"params": params[2:]}]
    with pytest.warns(UserWarning, match="it is ignored"):
        opt = AdaFactor(groups)
    plain = AdaFactor(twin)
    for step, grads in enumerate(grad_sets(params, 3)):
        if step:
            with pytest.raises(RuntimeError, match="table of 1 values"):
                opt.get_lr()
        opt(tuple(grads))
        plain(tuple(g.clone() for g in grads))
    assert int(opt.global_step) == 3
    for (_, a), (_, b) in zip(params, twin):
        assert torch.equal(a, b)
