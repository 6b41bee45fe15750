"""RMSProp, Adagrad, ProximalAdagrad, Adadelta, FTRL, ASGD and Rprop: MindSpore's adaptive family.

Contracts checked here (the golden replay checks the MindSpore 2.10 trajectories themselves):

1. Constructors validate like MindSpore: exception type, the argument named in the message, ints
   rejected where MindSpore wants floats, MindSpore's check order (Rprop, FTRL).
2. The foreach kernels equal the reference kernels bit for bit, parameters and every state buffer,
   on 0-d, one-element, non-contiguous and larger tensors, with groups, over several steps.
3. Every optimizer follows its documented formula: a float64 NumPy reference of spec §2.9–§2.16,
   including the settings whose MindSpore CPU recordings are not parity targets (``Adagrad
   (update_slots=False)``, ``FTRL(l1 > 0)``) and those without golden data (centered RMSProp,
   ASGD's averaging branch).
4. ``state_dict()`` → fresh optimizer → ``load_state_dict`` → continue equals the uninterrupted run
   bit for bit (also through MindSpore's checkpoint names), and those names are MindSpore's.
5. A step reads no device value on the host.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from msoptim.kernels.adadelta import adadelta_foreach, adadelta_reference
from msoptim.kernels.adagrad import adagrad_foreach, adagrad_reference
from msoptim.kernels.asgd import asgd_foreach, asgd_reference
from msoptim.kernels.ftrl import ftrl_foreach, ftrl_reference
from msoptim.kernels.proximal_adagrad import (
    proximal_adagrad_foreach,
    proximal_adagrad_reference,
)
from msoptim.kernels.rmsprop import rmsprop_foreach, rmsprop_reference
from msoptim.kernels.rprop import rprop_foreach, rprop_reference
from msoptim.optimizers.adadelta import Adadelta
from msoptim.optimizers.adagrad import Adagrad
from msoptim.optimizers.asgd import ASGD
from msoptim.optimizers.ftrl import FTRL
from msoptim.optimizers.proximal_adagrad import ProximalAdagrad
from msoptim.optimizers.rmsprop import RMSProp
from msoptim.optimizers.rprop import Rprop
from msoptim.schedules import CosineDecayLR

STEPS = 6


# ------------------------------------------------------------------------------------------------
# Shared fixtures


def mixed_params(seed: int = 0) -> list[tuple[str, nn.Parameter]]:
    """0-d, one element, a non-contiguous leaf, 4-D, 2-D and a 'gamma' (not decayed by name)."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=generator)

    return [
        ("scalar.weight", nn.Parameter(rand(()))),
        ("one.bias", nn.Parameter(rand(1))),
        ("transposed.weight", nn.Parameter(rand(6, 5).t())),
        ("conv.weight", nn.Parameter(rand(3, 16, 2, 2))),
        ("fc.weight", nn.Parameter(rand(9, 7))),
        ("bn.gamma", nn.Parameter(1 + 0.1 * rand(7))),
    ]


def gradients(params, step: int, scale: float = 1.0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(100 + step)
    return tuple(0.5 * scale * torch.randn(p.shape, generator=generator) for _, p in params)


def grouped(params, first_lr, second_lr=0.02):
    return [
        {"params": params[:3], "lr": first_lr, "weight_decay": 0.01},
        {"params": params[3:5], "lr": second_lr},
        {"params": params[5:], "weight_decay": 0.0},
    ]


# name, constructor, kwargs (without params), whether the config takes groups with lrs
CONFIGS: list[tuple[str, type, dict, bool]] = [
    ("RMSProp-plain", RMSProp, {"learning_rate": 0.01}, True),
    (
        "RMSProp-momentum-wd-ls",
        RMSProp,
        {"learning_rate": 0.01, "momentum": 0.9, "weight_decay": 0.01, "loss_scale": 8.0},
        True,
    ),
    (
        "RMSProp-centered",
        RMSProp,
        {"learning_rate": 0.01, "centered": True, "momentum": 0.5, "decay": 0.8, "epsilon": 1e-6},
        True,
    ),
    ("Adagrad-plain", Adagrad, {"learning_rate": 0.1, "weight_decay": 0.01}, True),
    ("Adagrad-frozen", Adagrad, {"learning_rate": 0.1, "update_slots": False, "accum": 0.5}, True),
    ("ProximalAdagrad-plain", ProximalAdagrad, {"learning_rate": 0.1}, True),
    (
        "ProximalAdagrad-l1-l2-ls",
        ProximalAdagrad,
        {"learning_rate": 0.1, "l1": 0.05, "l2": 0.1, "loss_scale": 4.0},
        True,
    ),
    ("Adadelta-plain", Adadelta, {"learning_rate": 1.0}, True),
    ("Adadelta-rho-eps", Adadelta, {"learning_rate": 0.5, "rho": 0.5, "epsilon": 1e-3}, True),
    ("FTRL-plain", FTRL, {"learning_rate": 0.1, "weight_decay": 0.01}, False),
    (
        "FTRL-l1-l2-power",
        FTRL,
        {"learning_rate": 0.1, "l1": 0.05, "l2": 0.1, "lr_power": -0.3, "initial_accum": 0.2},
        False,
    ),
    ("ASGD-plain", ASGD, {"learning_rate": 0.1, "weight_decay": 0.01}, True),
    ("ASGD-averaging", ASGD, {"learning_rate": 0.1, "t0": 2.0, "lambd": 0.01}, True),
    ("Rprop-plain", Rprop, {"learning_rate": 0.01}, True),
    (
        "Rprop-etas-wd",
        Rprop,
        {
            "learning_rate": 0.01,
            "etas": (0.4, 1.5),
            "step_sizes": (1e-3, 0.05),
            "weight_decay": 0.1,
        },
        True,
    ),
]
CONFIG_PARAMS = [
    pytest.param(cls, kwargs, groups, id=name) for name, cls, kwargs, groups in CONFIGS
]


def scaled(kwargs: dict) -> float:
    """The loss scale the gradients of a config carry."""
    return kwargs.get("loss_scale", 1.0)


def snapshot(params, opt) -> dict[str, torch.Tensor]:
    out = {f"param:{name}": p.detach().clone() for name, p in params}
    out.update({name: value.detach().clone() for name, value in opt.ms_state_dict().items()})
    return out


def assert_bit_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str):
    assert a.keys() == b.keys(), what
    for name in a:
        assert a[name].dtype == b[name].dtype, f"{what}: {name}"
        assert torch.equal(a[name], b[name]), f"{what}: {name} differs"


# ------------------------------------------------------------------------------------------------
# 1. Validation


def flat(seed: int = 0):
    return mixed_params(seed)


VALIDATION = [
    # RMSProp: decay/momentum float >= 0, epsilon float > 0, bools
    (RMSProp, {"decay": 1}, TypeError, r"RMSProp: 'decay' must be .*\(int\)"),
    (RMSProp, {"decay": -0.1}, ValueError, r"'decay'"),
    (RMSProp, {"momentum": 0}, TypeError, r"'momentum'"),
    (RMSProp, {"momentum": -0.5}, ValueError, r"'momentum'"),
    (RMSProp, {"epsilon": 0.0}, ValueError, r"'epsilon'"),
    (RMSProp, {"epsilon": 1}, TypeError, r"'epsilon'"),
    (RMSProp, {"use_locking": 1}, TypeError, r"'use_locking'"),
    (RMSProp, {"centered": "yes"}, TypeError, r"'centered'"),
    (RMSProp, {"learning_rate": -0.1}, ValueError, r"learning_rate"),
    (RMSProp, {"loss_scale": 0.0}, ValueError, r"'loss_scale'"),
    # Adagrad: accum float >= 0 (type checked before update_slots), update_slots bool
    (Adagrad, {"accum": 1}, TypeError, r"Adagrad: 'accum' must be a float"),
    (Adagrad, {"accum": -0.1}, ValueError, r"'accum'"),
    (Adagrad, {"update_slots": 1}, TypeError, r"'update_slots'"),
    (Adagrad, {"accum": 1, "update_slots": 1}, TypeError, r"'accum'"),
    (Adagrad, {"accum": -1.0, "update_slots": 1}, TypeError, r"'update_slots'"),
    # ProximalAdagrad: all types first, then ranges
    (ProximalAdagrad, {"l1": 0}, TypeError, r"'l1'"),
    (ProximalAdagrad, {"l2": -0.1}, ValueError, r"'l2'"),
    (ProximalAdagrad, {"accum": -0.1, "l2": 1}, TypeError, r"'l2'"),
    (ProximalAdagrad, {"use_locking": 0}, TypeError, r"'use_locking'"),
    # Adadelta: rho float in [0, 1], epsilon float >= 0
    (Adadelta, {"rho": 1}, TypeError, r"'rho'"),
    (Adadelta, {"rho": 1.5}, ValueError, r"'rho'"),
    (Adadelta, {"rho": -0.1}, ValueError, r"'rho'"),
    (Adadelta, {"epsilon": -1e-6}, ValueError, r"'epsilon'"),
    (Adadelta, {"epsilon": 0}, TypeError, r"'epsilon'"),
    # FTRL: static float lr > 0 only, initial_accum >= 0, lr_power <= 0, l1/l2 >= 0
    (FTRL, {"learning_rate": [0.1, 0.05]}, ValueError, r"FTRL: dynamic learning rate"),
    (FTRL, {"learning_rate": torch.tensor([0.1, 0.05])}, ValueError, r"dynamic learning rate"),
    (FTRL, {"learning_rate": CosineDecayLR(0.01, 0.1, 4)}, ValueError, r"dynamic learning rate"),
    (FTRL, {"learning_rate": 1}, TypeError, r"'learning_rate'"),
    (FTRL, {"learning_rate": 0.0}, ValueError, r"'learning_rate'"),
    (FTRL, {"learning_rate": torch.tensor(0.1)}, TypeError, r"'learning_rate'"),
    (FTRL, {"initial_accum": 1}, TypeError, r"'initial_accum'"),
    (FTRL, {"initial_accum": -0.1}, ValueError, r"'initial_accum'"),
    (FTRL, {"lr_power": 0.5}, ValueError, r"'lr_power'"),
    (FTRL, {"lr_power": -1}, TypeError, r"'lr_power'"),
    (FTRL, {"l1": -0.1}, ValueError, r"'l1'"),
    (FTRL, {"l2": 0}, TypeError, r"'l2'"),
    (FTRL, {"use_locking": None}, TypeError, r"'use_locking'"),
    # ASGD: lambd, alpha, t0 must be floats; no range checks
    (ASGD, {"lambd": 0}, TypeError, r"'lambd'"),
    (ASGD, {"alpha": 1}, TypeError, r"'alpha'"),
    (ASGD, {"t0": 1000000}, TypeError, r"ASGD: 't0' must be a float.*1000000\.0"),
    # Rprop: tuples of 2 (lists rejected), min <= max before the element checks
    (Rprop, {"etas": [0.5, 1.2]}, TypeError, r"'etas' must be a tuple"),
    (Rprop, {"etas": (0.5, 1.2, 2.0)}, ValueError, r"'etas'"),
    (Rprop, {"step_sizes": [1e-6, 50.0]}, TypeError, r"'step_sizes' must be a tuple"),
    (Rprop, {"step_sizes": (1e-6,)}, ValueError, r"'step_sizes'"),
    (Rprop, {"step_sizes": (1.0, 0.1)}, ValueError, r"maximal step size"),
    (Rprop, {"etas": (1.5, 1.2), "step_sizes": (1.0, 0.1)}, ValueError, r"maximal step size"),
    (Rprop, {"etas": (1.5, 1.2)}, ValueError, r"'etas\[0\] \(etaminus\)'"),
    (Rprop, {"etas": (0.0, 1.2)}, ValueError, r"'etas\[0\] \(etaminus\)'"),
    (Rprop, {"etas": (1, 1.2)}, TypeError, r"'etas\[0\] \(etaminus\)'"),
    (Rprop, {"etas": (0.5, 2)}, TypeError, r"'etas\[1\] \(etaplus\)'"),
    (Rprop, {"etas": (0.5, 1.0)}, ValueError, r"'etas\[1\] \(etaplus\)'"),
    (Rprop, {"step_sizes": (0, 50.0)}, TypeError, r"'step_sizes\[0\] \(min_step_sizes\)'"),
    (Rprop, {"step_sizes": (1e-6, 50)}, TypeError, r"'step_sizes\[1\] \(max_step_sizes\)'"),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "raises", "match"),
    [
        pytest.param(*row, id=f"{row[0].__name__}-{'-'.join(row[1])}-{index}")
        for index, row in enumerate(VALIDATION)
    ],
)
def test_bad_arguments_raise_mindspores_type_naming_the_argument(cls, kwargs, raises, match):
    params = flat()
    before = [p.detach().clone() for _, p in params]
    with pytest.raises(raises, match=match):
        cls(params, **kwargs)
    assert all(torch.equal(b, p) for b, (_, p) in zip(before, params))


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (RMSProp, {"decay": 1.5}),  # MindSpore does not reject decay > 1
        (Adadelta, {"rho": 0.0, "epsilon": 0.0}),
        (Adadelta, {"rho": 1.0}),
        (ASGD, {"lambd": -1.0, "alpha": 0.0, "t0": -5.0}),  # no range checks
        (Rprop, {"step_sizes": (0.1, 0.1)}),
        (FTRL, {"lr_power": 0.0, "initial_accum": 0.0}),
        (ProximalAdagrad, {"accum": 0.0, "use_locking": True}),
        (Adagrad, {"loss_scale": 2}),  # an int loss_scale is converted, as in MindSpore
    ],
)
def test_values_mindspore_accepts_are_accepted(cls, kwargs):
    cls(flat(), **kwargs)


def test_ftrl_rejects_group_lrs_and_decays_every_parameter_when_not_grouped():
    params = flat()
    with pytest.raises(ValueError, match=r"group learning rate"):
        FTRL([{"params": params[:2], "lr": 0.1}, {"params": params[2:]}], learning_rate=0.1)
    ungrouped = FTRL(flat(), learning_rate=0.1, weight_decay=0.01)
    assert ungrouped.decay_flags == (True,) * 6  # 'bn.gamma' too
    groups = FTRL(
        [{"params": params[:2], "weight_decay": 0.01}, {"params": params[2:]}],
        learning_rate=0.1,
        weight_decay=0.0,
    )
    assert groups.decay_flags == (True, True, False, False, False, False)
    plain = Adagrad(flat(), weight_decay=0.01)
    assert plain.decay_flags == (True,) * 5 + (False,)


def test_adadelta_rejects_a_list_of_gradients_like_mindspore():
    params = flat()
    opt = Adadelta(params)
    grads = gradients(params, 0)
    before = [p.detach().clone() for _, p in params]
    with pytest.raises(TypeError, match=r"Adadelta: 'grads' must be a tuple"):
        opt(list(grads))
    assert all(torch.equal(b, p) for b, (_, p) in zip(before, params))
    assert int(opt.global_step) == 0
    opt(grads)
    for (_, p), g in zip(params, grads):
        p.grad = g
    opt.step()  # the torch style is unaffected
    assert int(opt.global_step) == 2
    other = RMSProp(flat())
    other(list(gradients(params, 0)))  # only Adadelta is strict


# ------------------------------------------------------------------------------------------------
# 2. Reference == foreach


@pytest.mark.parametrize(("cls", "kwargs", "groups"), CONFIG_PARAMS)
def test_foreach_equals_reference_bit_for_bit(cls, kwargs, groups):
    runs = []
    for foreach in (False, True):
        params = mixed_params()
        spec = grouped(params, kwargs["learning_rate"]) if groups else params
        opt = cls(spec, **kwargs, foreach=foreach)
        trace = []
        for step in range(STEPS):
            opt(gradients(params, step, scaled(kwargs)))
            trace.append(snapshot(params, opt))
        runs.append(trace)
    for step, (a, b) in enumerate(zip(*runs)):
        assert_bit_identical(a, b, f"step {step + 1}")


@pytest.mark.parametrize(("cls", "kwargs", "groups"), CONFIG_PARAMS)
def test_foreach_in_small_chunks_equals_reference(monkeypatch, cls, kwargs, groups):
    """The concatenating foreach paths (FMA arithmetic) split work into chunks: same bits."""
    import msoptim.kernels as kernels

    monkeypatch.setattr(kernels, "CONCATENATED_CHUNK", 7)
    test_foreach_equals_reference_bit_for_bit(cls, kwargs, groups)


def _views(seed: int):
    """Non-contiguous views into larger buffers (params and state alike), plus 0-d and 1-elem."""
    generator = torch.Generator().manual_seed(seed)
    big = torch.rand(8, 10, generator=generator) + 0.5
    return [big[::2, 1::3], big[1, :7], torch.rand((), generator=generator) + 0.5, big[3, 2:3]]


KERNELS: dict[str, tuple[Callable, Callable, int, dict]] = {
    "rmsprop": (
        rmsprop_reference,
        rmsprop_foreach,
        2,
        {"decay": 0.9, "momentum": 0.5, "epsilon": 1e-10, "centered": False},
    ),
    "rmsprop-centered": (
        rmsprop_reference,
        rmsprop_foreach,
        3,
        {"decay": 0.9, "momentum": 0.5, "epsilon": 1e-6, "centered": True},
    ),
    "adagrad": (adagrad_reference, adagrad_foreach, 1, {"update_slots": True}),
    "proximal_adagrad": (
        proximal_adagrad_reference,
        proximal_adagrad_foreach,
        1,
        {"l1": 0.01, "l2": 0.2},
    ),
    "adadelta": (adadelta_reference, adadelta_foreach, 2, {"rho": 0.9, "epsilon": 1e-6}),
    "ftrl": (ftrl_reference, ftrl_foreach, 2, {"lr_power": -0.3, "l1": 0.05, "l2": 0.1}),
    "rprop": (
        rprop_reference,
        rprop_foreach,
        2,
        {"etaminus": 0.5, "etaplus": 1.2, "step_size_min": 1e-6, "step_size_max": 50.0},
    ),
}


@pytest.mark.parametrize("name", list(KERNELS))
def test_kernels_on_non_contiguous_views_agree_bit_for_bit(name):
    reference, foreach, n_states, hyper = KERNELS[name]
    results = []
    for kernel in (reference, foreach):
        params = _views(0)
        states = [_views(10 + i) for i in range(n_states)]
        if name == "rprop":
            states[0] = [torch.zeros_like(t) for t in states[0]]
        extra = {"step": torch.tensor(1)} if name == "rprop" else {}
        for step in range(4):
            grads = [g - 1.0 for g in _views(20 + step)]
            if name == "rprop":
                extra = {"step": torch.tensor(step + 1)}
            kernel(params, grads, *states, lr=torch.tensor(0.05), **extra, **hyper)
        results.append([*params, *(t for s in states for t in s)])
    for a, b in zip(*results):
        assert torch.equal(a, b)
        assert not torch.isnan(a).any()


def test_asgd_kernels_agree_bit_for_bit_through_the_averaging_branch():
    results = []
    for kernel in (asgd_reference, asgd_foreach):
        params = _views(0)
        axs = [torch.zeros_like(p) for p in params]
        mus = [torch.ones(()) for _ in params]
        etas = [torch.zeros(()) for _ in params]
        for step in range(1, 6):
            grads = [g - 1.0 for g in _views(20 + step)]
            kernel(
                params,
                grads,
                mus,
                etas,
                axs,
                lr=torch.tensor(0.1),
                step=torch.tensor(step, dtype=torch.int32),
                lambd=0.01,
                alpha=0.75,
                t0=2.0,
            )
        results.append([*params, *axs, *mus, *etas])
    assert float(results[0][-5]) != 1.0  # mu left 1: the averaging branch ran
    for a, b in zip(*results):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------------
# 3. The documented formulas, in float64 NumPy


def f32(x) -> float:
    return float(np.float32(x))


def reference_run(cls, kwargs, steps: int = 10):
    """msoptim (float32) vs a float64 NumPy run of the documented update (spec §2.9–§2.16)."""
    params = mixed_params(3)
    names = [name for name, _ in params]
    opt = cls(params, **kwargs)
    w = {n: p.detach().double().numpy().copy() for n, p in params}
    ls = kwargs.get("loss_scale", 1.0)
    wd = f32(kwargs.get("weight_decay", 0.0) * ls)
    decayed = dict(zip(names, opt.decay_flags))
    lr = f32(kwargs["learning_rate"])
    update = DOCUMENTED[cls.__name__](kwargs, w)
    update.optimizer = opt
    for t in range(1, steps + 1):
        grads = gradients(params, t, ls)
        opt(grads)
        for name, grad in zip(names, grads):
            g = grad.double().numpy()
            if decayed[name] and wd:
                g = g + wd * w[name]
            g = g * f32(1.0 / ls)
            w[name] = update(name, w[name], g, lr, t)
    return params, w, update


def _rmsprop(kwargs, w):
    decay, momentum = f32(kwargs.get("decay", 0.9)), f32(kwargs.get("momentum", 0.0))
    eps, centered = f32(kwargs.get("epsilon", 1e-10)), kwargs.get("centered", False)
    ms = {n: np.ones_like(v) for n, v in w.items()}
    mg = {n: np.zeros_like(v) for n, v in w.items()}
    mom = {n: np.zeros_like(v) for n, v in w.items()}

    def update(n, w, g, lr, t):
        ms[n] = decay * ms[n] + (1 - decay) * g * g
        if centered:
            mg[n] = decay * mg[n] + (1 - decay) * g
        mom[n] = momentum * mom[n] + lr * g / np.sqrt(ms[n] - mg[n] ** 2 + eps)
        return w - mom[n]

    return update


def _adagrad(kwargs, w):
    acc = {n: np.full_like(v, f32(kwargs.get("accum", 0.1))) for n, v in w.items()}
    update_slots = kwargs.get("update_slots", True)

    def update(n, w, g, lr, t):
        if update_slots:
            acc[n] = acc[n] + g * g
        return w - lr * g / np.sqrt(acc[n])

    return update


def _proximal_adagrad(kwargs, w):
    acc = {n: np.full_like(v, f32(kwargs.get("accum", 0.1))) for n, v in w.items()}
    l1, l2 = f32(kwargs.get("l1", 0.0)), f32(kwargs.get("l2", 0.0))

    def update(n, w, g, lr, t):
        acc[n] = acc[n] + g * g
        lr_t = lr / np.sqrt(acc[n])
        prox = w - lr_t * g
        return np.sign(prox) * np.maximum(np.abs(prox) - lr_t * l1, 0.0) / (1 + lr_t * l2)

    return update


def _adadelta(kwargs, w):
    rho, eps = f32(kwargs.get("rho", 0.9)), f32(kwargs.get("epsilon", 1e-6))
    acc = {n: np.zeros_like(v) for n, v in w.items()}
    upd = {n: np.zeros_like(v) for n, v in w.items()}

    def update(n, w, g, lr, t):
        acc[n] = rho * acc[n] + (1 - rho) * g * g
        delta = np.sqrt(upd[n] + eps) / np.sqrt(acc[n] + eps) * g
        upd[n] = rho * upd[n] + (1 - rho) * delta * delta
        return w - lr * delta

    return update


def _ftrl(kwargs, w):
    p = f32(kwargs.get("lr_power", -0.5))
    l1, l2 = f32(kwargs.get("l1", 0.0)), f32(kwargs.get("l2", 0.0))
    acc = {n: np.full_like(v, f32(kwargs.get("initial_accum", 0.1))) for n, v in w.items()}
    z = {n: np.zeros_like(v) for n, v in w.items()}

    def update(n, w, g, lr, t):
        new = acc[n] + g * g
        sigma = (new ** (-p) - acc[n] ** (-p)) / lr
        z[n] = z[n] + g - sigma * w
        acc[n] = new
        shrunk = (np.sign(z[n]) * l1 - z[n]) / (new ** (-p) / lr + 2 * l2)
        return np.where(np.abs(z[n]) > l1, shrunk, 0.0)

    return update


def _asgd(kwargs, w):
    lambd, alpha = f32(kwargs.get("lambd", 1e-4)), f32(kwargs.get("alpha", 0.75))
    t0 = f32(kwargs.get("t0", 1e6))
    eta = dict.fromkeys(w, 0.0)
    mu = dict.fromkeys(w, 1.0)
    ax = {n: np.zeros_like(v) for n, v in w.items()}

    def update(n, w, g, lr, t):
        if t == 1:
            eta[n] = lr
        w = w * (1 - lambd * eta[n]) - eta[n] * g
        ax[n] = ax[n] + (w - ax[n]) * mu[n] if mu[n] != 1 else w.copy()
        eta[n] = lr / (1 + lambd * lr * t) ** alpha
        mu[n] = 1 / max(1.0, t - t0)
        return w

    update.averages = ax
    return update


def _rprop(kwargs, w):
    etaminus, etaplus = (f32(x) for x in kwargs.get("etas", (0.5, 1.2)))
    low, high = (f32(x) for x in kwargs.get("step_sizes", (1e-6, 50.0)))
    prev = {n: np.zeros_like(v) for n, v in w.items()}
    size = {n: np.zeros_like(v) for n, v in w.items()}

    def update(n, w, g, lr, t):
        step = np.full_like(w, lr) if t == 1 else size[n]
        s = np.sign(g * prev[n])
        factor = np.where(s > 0, etaplus, np.where(s < 0, etaminus, 1.0))
        size[n] = np.clip(step * factor, low, high)
        prev[n] = np.where(s < 0, 0.0, g)
        return w - np.sign(prev[n]) * size[n]

    return update


DOCUMENTED = {
    "RMSProp": _rmsprop,
    "Adagrad": _adagrad,
    "ProximalAdagrad": _proximal_adagrad,
    "Adadelta": _adadelta,
    "FTRL": _ftrl,
    "ASGD": _asgd,
    "Rprop": _rprop,
}


def assert_close_to_reference(actual: torch.Tensor, expected: np.ndarray, what: str, ulps=64):
    """``ulps`` float32 units of the value and of the tensor's scale (the golden replay's rule)."""
    got = actual.detach().double().numpy()

    def ulp(x):
        return np.spacing(np.abs(np.asarray(x)).astype(np.float32)).astype(np.float64)

    tolerance = ulps * (ulp(expected) + ulp(np.max(np.abs(expected))))
    worst = np.max(np.abs(got - expected) - tolerance)
    assert worst <= 0, f"{what}: off the float64 reference by {worst:.3g} beyond {ulps} units"


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [pytest.param(cls, kwargs, id=name) for name, cls, kwargs, _ in CONFIGS],
)
def test_follows_the_documented_formula(cls, kwargs):
    params, expected, _ = reference_run(cls, kwargs)
    for name, param in params:
        assert_close_to_reference(param, expected[name], f"{cls.__name__} {name}")


def test_asgd_average_follows_the_documented_formula():
    params, _, update = reference_run(ASGD, {"learning_rate": 0.1, "t0": 2.0, "lambd": 0.01})
    state = update.optimizer.ms_state_dict()
    for name, _ in params:
        assert_close_to_reference(state[f"ax_.{name}"], update.averages[name], f"ax_.{name}")
        assert float(state[f"mu_{name}"]) == f32(1 / (10 - 2.0))  # averaging is on


def test_adagrad_update_slots_false_freezes_the_accumulator():
    params = mixed_params()
    opt = Adagrad(params, accum=0.25, learning_rate=0.1, update_slots=False)
    start = [p.detach().clone() for _, p in params]
    grads = gradients(params, 0)
    opt(grads)
    for (name, p), w0, g in zip(params, start, grads):
        assert torch.equal(opt.state[p]["accum"], torch.full_like(p, 0.25)), name
        assert_close_to_reference(p, (w0 - 0.1 * g / 0.5).double().numpy(), name, ulps=2)


def test_ftrl_numerator_is_sign_z_times_l1_minus_z_for_negative_z():
    """Documented formula: ``|w| = (|z| - l1) / denominator`` for both signs of ``z``."""
    w = nn.Parameter(torch.zeros(2))
    opt = FTRL([("w", w)], learning_rate=0.5, l1=0.1, initial_accum=1.0, lr_power=-0.5)
    opt((torch.tensor([2.0, -2.0]),))
    # n' = 5, z = g (w was 0), denominator = sqrt(5) / 0.5
    magnitude = (2.0 - 0.1) / (5**0.5 / 0.5)
    torch.testing.assert_close(w.detach(), torch.tensor([-magnitude, magnitude]))
    # MindSpore 2.10's CPU kernel would give (|z| + l1) / denominator for z = -2:
    assert abs(float(w.detach()[1]) - (2.0 + 0.1) / (5**0.5 / 0.5)) > 1e-3


def test_rmsprop_starts_mean_square_at_one_and_puts_epsilon_inside_the_root():
    w = nn.Parameter(torch.tensor([1.0]))
    opt = RMSProp([("w", w)], learning_rate=0.1, decay=0.5, epsilon=3.0)
    assert torch.equal(opt.state[w]["mean_square"], torch.ones(1))
    opt((torch.tensor([2.0]),))
    mean_square = 0.5 * 1.0 + 0.5 * 4.0  # 2.5
    expected = 1.0 - 0.1 * 2.0 / (mean_square + 3.0) ** 0.5  # not / (sqrt(2.5) + 3)
    assert float(w.detach()) == pytest.approx(expected, rel=1e-6)


def test_rmsprop_lr_sits_inside_the_momentum_buffer():
    w = nn.Parameter(torch.tensor([0.0]))
    opt = RMSProp([("w", w)], learning_rate=[0.1, 0.0], momentum=0.5, decay=0.0)
    opt((torch.tensor([1.0]),))  # mom = 0.1 * 1 / sqrt(1)
    opt((torch.tensor([1.0]),))  # mom = 0.5 * 0.1 + 0 (lr 0 does not cancel the buffer)
    assert float(w.detach()) == pytest.approx(-0.15, rel=1e-6)


def test_rprop_and_asgd_read_the_step_after_the_increment():
    w = nn.Parameter(torch.tensor([0.0, 0.0]))
    opt = Rprop([("w", w)], learning_rate=0.25)
    opt((torch.tensor([1.0, -1.0]),))  # t == 1: step size = lr everywhere
    assert w.tolist() == [-0.25, 0.25]
    assert opt.state[w]["step_size"].tolist() == [0.25, 0.25]
    v = nn.Parameter(torch.tensor([1.0]))
    asgd = ASGD([("v", v)], learning_rate=0.5, lambd=0.5)
    asgd((torch.tensor([0.0]),))  # t == 1: eta = lr, then eta = lr / (1 + lambd*lr*1)^alpha
    assert float(v.detach()) == pytest.approx(1.0 * (1 - 0.5 * 0.5))
    assert float(asgd.state[v]["eta"]) == pytest.approx(0.5 / 1.25**0.75, rel=1e-6)


# ------------------------------------------------------------------------------------------------
# 4. Checkpoints and names


def checkpoint_configs():
    yield from CONFIG_PARAMS
    yield pytest.param(
        ASGD,
        {"learning_rate": [0.1, 0.09, 0.08, 0.07, 0.06, 0.05], "t0": 1.0},
        True,
        id="ASGD-table-groups",
    )
    yield pytest.param(
        Rprop, {"learning_rate": CosineDecayLR(0.001, 0.02, 4)}, True, id="Rprop-schedule-groups"
    )


@pytest.mark.parametrize(("cls", "kwargs", "groups"), list(checkpoint_configs()))
def test_checkpoint_round_trip_continues_bit_identically(cls, kwargs, groups):
    def build(seed: int = 0):
        params = mixed_params(seed)
        lr = kwargs["learning_rate"]
        spec = grouped(params, lr, 0.02 if isinstance(lr, float) else lr) if groups else params
        return params, cls(spec, **kwargs)

    params_a, straight = build()
    for step in range(STEPS):
        straight(gradients(params_a, step, scaled(kwargs)))

    params_b, first = build()
    for step in range(3):
        first(gradients(params_b, step, scaled(kwargs)))
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    ms_saved = {name: value.detach().clone() for name, value in first.ms_state_dict().items()}

    for route in ("state_dict", "ms_state_dict"):
        params_c, resumed = build(seed=7)
        with torch.no_grad():
            for (_, c), (_, b) in zip(params_c, params_b):
                c.copy_(b)
        if route == "state_dict":
            resumed.load_state_dict(saved)
        else:
            resumed.load_ms_state_dict(ms_saved)
        for step in range(3, STEPS):
            resumed(gradients(params_c, step, scaled(kwargs)))
        assert_bit_identical(snapshot(params_a, straight), snapshot(params_c, resumed), route)


def test_ms_state_dict_uses_mindspores_names_shapes_and_initial_values():
    def names_of(opt):
        return {name: (tuple(t.shape), t.dtype) for name, t in opt.ms_state_dict().items()}

    def pair():
        return [
            ("fc.weight", nn.Parameter(torch.ones(2, 3))),
            ("bn.gamma", nn.Parameter(torch.ones(4))),
        ]

    common = {"global_step": ((1,), torch.int32), "learning_rate": ((), torch.float32)}

    def each(*prefixes, shape_of=None):
        out = dict(common)
        for prefix in prefixes:
            for name, shape in (("fc.weight", (2, 3)), ("bn.gamma", (4,))):
                key = prefix.format(name=name)
                out[key] = ((shape_of or {}).get(prefix, shape), torch.float32)
        return out

    assert names_of(RMSProp(pair())) == each("mean_square.{name}", "moment.{name}")
    assert names_of(RMSProp(pair(), centered=True)) == each(
        "mean_square.{name}", "moment.{name}", "mean_grad.{name}"
    )
    assert names_of(Adagrad(pair())) == each("accum.{name}")
    assert names_of(ProximalAdagrad(pair())) == each("accum.{name}")
    assert names_of(Adadelta(pair())) == each("accum.{name}", "accum_update.{name}")
    assert names_of(FTRL(pair())) == each("moments.{name}", "linear.{name}")
    assert names_of(Rprop(pair())) == each("prev.{name}", "step_size.{name}")
    assert names_of(ASGD(pair())) == each(
        "mu_{name}", "eta_{name}", "ax_.{name}", shape_of={"mu_{name}": (), "eta_{name}": ()}
    )
    state = RMSProp(pair()).ms_state_dict()
    assert torch.equal(state["mean_square.fc.weight"], torch.ones(2, 3))
    state = FTRL(pair(), initial_accum=0.25).ms_state_dict()
    assert torch.equal(state["moments.bn.gamma"], torch.full((4,), 0.25))
    state = ASGD(pair()).ms_state_dict()
    assert float(state["mu_fc.weight"]) == 1.0
    assert float(state["eta_fc.weight"]) == 0.0


# ------------------------------------------------------------------------------------------------
# 5. No host synchronisation


class NoSync(TorchDispatchMode):
    """Fails on any op that copies a device value to the host."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.item.default):
            raise AssertionError(f"host sync: {func}")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(("cls", "kwargs", "groups"), CONFIG_PARAMS)
def test_a_step_reads_no_device_value(cls, kwargs, groups, foreach):
    params = mixed_params()
    opt = cls(params, **kwargs, foreach=foreach)
    grads = gradients(params, 0)
    with NoSync():
        opt(grads)
        opt(grads)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize(("cls", "kwargs", "groups"), CONFIG_PARAMS)
def test_other_dtypes_keep_their_dtype_and_foreach_still_matches(cls, kwargs, groups, dtype):
    runs = []
    for foreach in (False, True):
        params = [(name, nn.Parameter(p.detach().to(dtype))) for name, p in mixed_params()]
        opt = cls(params, **kwargs, foreach=foreach)
        for step in range(3):
            opt(tuple(g.to(dtype) for g in gradients(params, step, scaled(kwargs))))
        state = snapshot(params, opt)
        for name, _ in params:
            assert state[f"param:{name}"].dtype == dtype, name
            assert torch.isfinite(state[f"param:{name}"]).all(), name
        runs.append(state)
    assert_bit_identical(*runs, f"{dtype}")


def test_ftrl_add_param_group_rejects_an_lr_and_accepts_a_plain_group():
    params = flat()
    opt = FTRL(params[:3], learning_rate=0.1)
    with pytest.raises(ValueError, match=r"FTRL.add_param_group: group learning rates"):
        opt.add_param_group({"params": params[3:4], "lr": 0.5})
    assert len(opt.parameters) == 3
    opt.add_param_group({"params": params[3:]})
    assert [name for name, _ in params] == list(opt.parameter_names)
    opt(gradients(params, 0))
    assert torch.equal(opt.state[params[5][1]]["moments"] > 0.1, torch.ones(7, dtype=torch.bool))


def test_asgd_eta_uses_c_powf_like_mindspore():
    """MindSpore 2.10's ``eta`` after steps 293-295 of ``nn.ASGD([w], 0.3, lambd=0.5, alpha=0.75,
    t0=1.0)``: at step 294 ``powf`` is one ulp from the correctly rounded power, and so is eta."""
    param = torch.nn.Parameter(torch.ones(3))
    opt = ASGD([param], learning_rate=0.3, lambd=0.5, alpha=0.75, t0=1.0)
    recorded = {293: 0.01728120446205139, 294: 0.017238076776266098, 295: 0.01719520427286625}
    for step in range(1, 296):
        param.grad = torch.full((3,), 1e-3)
        opt.step()
        if step in recorded:
            assert opt.state[param]["eta"].item() == recorded[step], step
