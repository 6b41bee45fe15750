"""Contracts every msoptim optimizer keeps, driven by the database in ``optim_db.py``.

1. Bad constructor arguments raise the documented type with a message naming the argument, and touch
   nothing.
2. The foreach kernel equals the reference kernel bit for bit (params and every state buffer), on
   mixed shapes: 0-d, one element, non-contiguous, larger.
3. Two groups in one optimizer behave as two optimizers (per-group lr and weight decay).
4. ``state_dict()`` → ``torch.load(weights_only=True)`` → fresh optimizer → continue equals the
   uninterrupted run, bit for bit.
5. A failing step (wrong gradient shape) changes nothing.
"""

from __future__ import annotations

import copy
import inspect
import io

import pytest
import torch
from torch import nn

import msoptim
from optim_db import OPTIMIZER_CASES

CONFIGS = [
    pytest.param(case, config, id=f"{case.name}-{config.desc}")
    for case in OPTIMIZER_CASES
    for config in case.configs
]
ERRORS = [
    pytest.param(case, error, id=f"{case.name}-{error.desc}")
    for case in OPTIMIZER_CASES
    for error in case.error_inputs
]


def mixed_params(seed: int = 0) -> list[tuple[str, nn.Parameter]]:
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=generator)

    return [
        ("scalar.weight", nn.Parameter(rand(()))),
        ("one.bias", nn.Parameter(rand(1))),
        ("conv.weight", nn.Parameter(rand(4, 16, 3, 3))),
        ("transposed.weight", nn.Parameter(rand(6, 5).t())),  # non-contiguous leaf
        ("fc.weight", nn.Parameter(rand(33, 7))),
        ("bn.gamma", nn.Parameter(1 + 0.1 * rand(7))),
    ]


def gradients(params, step: int):
    generator = torch.Generator().manual_seed(100 + step)
    return tuple(0.5 * torch.randn(p.shape, generator=generator) for _, p in params)


def make(case, kwargs, params, **extra):
    return case.cls(params, **kwargs, **extra)


def accepts(case, name: str) -> bool:
    return name in inspect.signature(case.cls.__init__).parameters


def state_tensors(opt):
    return {name: value.detach().clone() for name, value in opt.ms_state_dict().items()}


def assert_same(params_a, params_b, opt_a, opt_b):
    for (name, a), (_, b) in zip(params_a, params_b):
        assert torch.equal(a, b), name
    state_a, state_b = state_tensors(opt_a), state_tensors(opt_b)
    assert state_a.keys() == state_b.keys()
    for name in state_a:
        assert torch.equal(state_a[name], state_b[name]), name


@pytest.mark.parametrize(("case", "error"), ERRORS)
def test_bad_argument_raises_and_changes_nothing(case, error):
    params = mixed_params()
    before = [p.detach().clone() for _, p in params]
    with pytest.raises(error.raises, match=error.match):
        make(case, error.kwargs, params)
    assert all(torch.equal(b, p) for b, (_, p) in zip(before, params))


@pytest.mark.parametrize(("case", "config"), CONFIGS)
def test_foreach_matches_reference(case, config):
    if "foreach" not in case.supports or not accepts(case, "foreach"):
        pytest.skip(f"{case.name} has no foreach kernel")
    params_a, params_b = mixed_params(), mixed_params()
    reference = make(case, config.kwargs, params_a, foreach=False)
    fast = make(case, config.kwargs, params_b, foreach=True)
    for step in range(3):
        grads = gradients(params_a, step)
        reference(grads)
        fast(tuple(g.clone() for g in grads))
        assert_same(params_a, params_b, reference, fast)


@pytest.mark.parametrize(("case", "config"), CONFIGS)
def test_groups_equal_separate_optimizers(case, config):
    if "groups" not in case.supports or "learning_rate" not in config.kwargs:
        pytest.skip(f"{case.name} ({config.desc}) has no per-group lr")
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("learning_rate", "weight_decay")}
    lr_a, lr_b = config.kwargs["learning_rate"], config.kwargs["learning_rate"] * 0.5
    params = mixed_params()
    first, second = params[:3], params[3:]
    grouped = make(
        case,
        kwargs,
        [
            {"params": first, "lr": lr_a, "weight_decay": 0.01},
            {"params": second, "lr": lr_b, "weight_decay": 0.02},
        ],
        learning_rate=lr_a,
    )
    separate_params = mixed_params()
    separate = [
        make(
            case,
            kwargs,
            [{"params": separate_params[:3], "weight_decay": 0.01}],
            learning_rate=lr_a,
        ),
        make(
            case,
            kwargs,
            [{"params": separate_params[3:], "weight_decay": 0.02}],
            learning_rate=lr_b,
        ),
    ]
    for step in range(3):
        grads = gradients(params, step)
        grouped(grads)
        separate[0](grads[:3])
        separate[1](grads[3:])
    for (name, a), (_, b) in zip(params, separate_params):
        assert torch.equal(a, b), name
    merged = {**state_tensors(separate[0]), **state_tensors(separate[1])}
    for name, value in state_tensors(grouped).items():
        if name.startswith("learning_rate") or name == "global_step":
            continue
        assert torch.equal(value, merged[name]), name


@pytest.mark.parametrize(("case", "config"), CONFIGS)
def test_state_dict_round_trip_continues_bit_identically(case, config):
    params_a = mixed_params()
    straight = make(case, config.kwargs, params_a)
    for step in range(6):
        straight(gradients(params_a, step))

    params_b = mixed_params()
    first = make(case, config.kwargs, params_b)
    for step in range(3):
        first(gradients(params_b, step))
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)

    params_c = mixed_params(seed=9)
    resumed = make(case, config.kwargs, params_c)
    with torch.no_grad():
        for (_, c), (_, b) in zip(params_c, params_b):
            c.copy_(b)
    resumed.load_state_dict(loaded)
    for step in range(3, 6):
        resumed(gradients(params_c, step))
    assert_same(params_a, params_c, straight, resumed)


@pytest.mark.parametrize(("case", "config"), CONFIGS)
def test_failed_step_changes_nothing(case, config):
    params = mixed_params()
    opt = make(case, config.kwargs, params)
    opt(gradients(params, 0))
    before_params = [p.detach().clone() for _, p in params]
    before_state = copy.deepcopy(state_tensors(opt))
    bad = list(gradients(params, 1))
    bad[2] = bad[2].reshape(-1)
    with pytest.raises(ValueError, match=r"'conv\.weight' has shape"):
        opt(tuple(bad))
    assert all(torch.equal(b, p) for b, (_, p) in zip(before_params, params))
    after_state = state_tensors(opt)
    for name, value in before_state.items():
        assert torch.equal(value, after_state[name]), name


def test_every_optimizer_in_the_api_has_a_record():
    names = {case.name for case in OPTIMIZER_CASES}
    exported = {
        name
        for name in msoptim.__all__
        if isinstance(getattr(msoptim, name), type)
        and issubclass(getattr(msoptim, name), msoptim.Optimizer)
        and name not in ("Optimizer", "LARS")  # LARS wraps an optimizer: tests/test_lars.py
    }
    assert exported <= names, exported - names
