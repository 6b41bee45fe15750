"""Bad inputs at every public entry point: the right built-in exception, a clear message, no change.

Contract, checked for every row of the table below (``CASES``):

1. The call raises the listed exception type: MindSpore's built-in type (``TypeError`` for a wrong
   type, an ``int`` where MindSpore requires a ``float`` included; ``ValueError`` for a wrong value,
   NaN and inf included; ``KeyError`` for an unknown group key), or msoptim's subclass of it
   (``DuplicateParameterError`` is a ``ValueError`` and a ``RuntimeError``,
   ``LearningRateTableExhaustedError`` an ``IndexError`` and a ``RuntimeError``, ...).
2. The message matches a regex that names the culprit: the argument, the group and key, or the
   parameter.
3. Nothing changed: the parameters (values and grads) and, where an optimizer exists, its
   ``state_dict()`` (deep-compared, tensors by value), plus any tensor the row watches (e.g. the lr
   tensor given to ``assign``).

Each row builds its world from scratch (``Ctx``): four named parameters and, for rows about an
existing optimizer, a Momentum (or the row's own optimizer) that has taken one step, so its state
is not trivially zero.

The last section holds inputs that look wrong but are accepted on purpose (MindSpore accepts them,
or they are legitimate), so that a stricter check cannot creep in unnoticed, and the decisions:

* ``None`` gradients (``param.grad is None`` in ``step()``, or ``None`` in ``opt(grads)``) skip
  that parameter for the step, as ``torch.optim`` does; ``global_step`` still advances. MindSpore
  has no such case: its autodiff gives unused parameters a zero gradient, which still decays the
  weight and moves the moments. Pass zeros to get that.
* Two distinct Parameters whose memory overlaps (one Parameter wrapped twice, overlapping views)
  are a ``DuplicateParameterError``; disjoint views of one flat buffer (contiguous parameters) are
  accepted.
* ``global_step`` is int32 as in MindSpore; the step that would take it past 2**31 - 1 raises
  ``OverflowError`` and changes nothing (see ``test_long_runs.py``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import msoptim
from msoptim.errors import (
    DuplicateParameterError,
    LearningRateTableExhaustedError,
    UnknownGroupKeyError,
    UnsupportedLrKindError,
)

NAN = float("nan")
INF = float("inf")

# --------------------------------------------------------------------------------------- world


def named_params() -> list[tuple[str, nn.Parameter]]:
    generator = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=generator)

    return [
        ("conv.weight", nn.Parameter(rand(2, 16, 1, 1))),
        ("bn.gamma", nn.Parameter(1 + 0.1 * rand(4))),
        ("fc.weight", nn.Parameter(rand(3, 4))),
        ("fc.bias", nn.Parameter(rand(3))),
    ]


def grads_for(params) -> tuple[Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    return tuple(torch.randn(p.shape, generator=generator) for _, p in params)


class Ctx:
    """One row's world: fresh parameters, an optional optimizer, tensors to watch."""

    def __init__(self) -> None:
        self.params = named_params()
        self.opt: Any = None
        self.watched: list[Tensor] = []
        self.extra: dict[str, Any] = {}

    def p(self, name: str) -> nn.Parameter:
        return dict(self.params)[name]

    def pairs(self, *names: str) -> list[tuple[str, nn.Parameter]]:
        return [(name, self.p(name)) for name in names]

    def stepped(self, opt: Any) -> Any:
        """Keep ``opt`` as this row's optimizer after one successful step."""
        opt(grads_for(self.params))
        self.opt = opt
        return opt

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "params": [
                (name, p.detach().clone(), None if p.grad is None else p.grad.detach().clone())
                for name, p in self.params
            ],
            "watched": [t.detach().clone() for t in self.watched],
        }
        if self.opt is not None:
            snap["state_dict"] = copy.deepcopy(self.opt.state_dict())
            snap["global_step"] = self.opt.global_step.clone()
        return snap


def assert_same(before: Any, after: Any, path: str = "") -> None:
    """Deep equality; tensors by dtype, shape and value (NaN equal to NaN)."""
    if isinstance(before, Tensor):
        assert isinstance(after, Tensor), path
        assert before.dtype == after.dtype, path
        assert before.shape == after.shape, path
        torch.testing.assert_close(after, before, rtol=0, atol=0, equal_nan=True, msg=path)
    elif isinstance(before, dict):
        assert isinstance(after, dict), path
        assert before.keys() == after.keys(), path
        for key in before:
            assert_same(before[key], after[key], f"{path}[{key!r}]")
    elif isinstance(before, list | tuple):
        assert isinstance(after, list | tuple), path
        assert len(before) == len(after), path
        for index, (x, y) in enumerate(zip(before, after)):
            assert_same(x, y, f"{path}[{index}]")
    elif isinstance(before, float) and math.isnan(before):
        assert isinstance(after, float), path
        assert math.isnan(after), path
    else:
        assert before == after, path


@dataclass(frozen=True)
class Case:
    """One bad input: ``act(ctx)`` must raise ``raises`` with a message matching ``match``."""

    id: str
    act: Callable[[Ctx], Any]
    raises: type[BaseException] | tuple[type[BaseException], ...]
    match: str
    setup: Callable[[Ctx], Any] | None = None


CASES: list[Case] = []


def case(id: str, act, raises, match, setup=None) -> None:
    CASES.append(Case(id, act, raises, match, setup))


# --------------------------------------------------------------------------- constructors

#: What each constructor needs besides ``params`` (Momentum and Lamb have no default lr).
REQUIRED: dict[str, dict[str, Any]] = {
    "Momentum": {"learning_rate": 0.1, "momentum": 0.9},
    "Lamb": {"learning_rate": 0.01},
}
#: AdaFactor takes a learning rate only with relative_step=False.
LR_KWARGS: dict[str, dict[str, Any]] = {
    "AdaFactor": {"relative_step": False, "scale_parameter": False},
}
OPTIMIZERS = (
    "Momentum",
    "SGD",
    "Adam",
    "AdamOffload",
    "LazyAdam",
    "AdamWeightDecay",
    "AdaMax",
    "Lamb",
    "RMSProp",
    "Adagrad",
    "ProximalAdagrad",
    "Adadelta",
    "FTRL",
    "ASGD",
    "Rprop",
    "AdaFactor",
)
WITH_LOSS_SCALE = (
    "Momentum",
    "SGD",
    "Adam",
    "AdamOffload",
    "LazyAdam",
    "AdaMax",
    "RMSProp",
    "Adagrad",
    "ProximalAdagrad",
    "Adadelta",
    "FTRL",
    "AdaFactor",
)


def build(name: str, params: Any, **kwargs: Any) -> Any:
    merged = {**REQUIRED.get(name, {}), **kwargs}
    return getattr(msoptim, name)(params, **merged)


def ctor(name: str, desc: str, kwargs: dict[str, Any], raises, match, params=None) -> None:
    """A constructor call with ``kwargs`` over the row's parameters (or ``params(ctx)``)."""

    def act(ctx: Ctx) -> Any:
        return build(name, ctx.params if params is None else params(ctx), **kwargs)

    case(f"{name}-{desc}", act, raises, match)


def with_lr(name: str, lr: Any) -> dict[str, Any]:
    return {**LR_KWARGS.get(name, {}), "learning_rate": lr}


# Every optimizer: the shared rules (base class), run through each constructor.
for _name in OPTIMIZERS:
    ctor(_name, "params-empty", {}, ValueError, r"'params' must not be empty", lambda ctx: [])
    ctor(_name, "params-None", {}, ValueError, r"'params' must not be None", lambda ctx: None)
    ctor(
        _name,
        "params-int",
        {},
        TypeError,
        r"'params' must be an iterable of parameters",
        lambda ctx: 3,
    )
    ctor(
        _name,
        "lr-str",
        with_lr(_name, "0.1"),
        ValueError,
        r"'learning_rate' must be .*string '0\.1'",
    )
    ctor(_name, "lr-nan", with_lr(_name, NAN), ValueError, r"'learning_rate' must be a finite")
    ctor(
        _name,
        "lr-table-with-nan",
        with_lr(_name, [0.1, NAN]),
        ValueError,
        # MindSpore takes the list, and FTRL then refuses a dynamic lr: its error comes first
        r"dynamic learning rate" if _name == "FTRL" else r"'learning_rate' must hold finite values",
    )
    ctor(  # msoptim's refusal of the NaN comes after MindSpore's checks
        _name,
        "lr-nan-tensor-and-a-bad-weight-decay",
        {**with_lr(_name, torch.tensor(NAN)), "weight_decay": -1.0},
        ValueError,
        r"'weight_decay' must be",
    )
    ctor(_name, "wd-negative", {"weight_decay": -1.0}, ValueError, r"'weight_decay' must be")
    ctor(_name, "wd-str", {"weight_decay": "0.1"}, TypeError, r"'weight_decay' must be a float")
    ctor(_name, "foreach-str", {"foreach": "yes"}, TypeError, r"'foreach' must be None, True or")
for _name in WITH_LOSS_SCALE:
    ctor(_name, "loss_scale-zero", {"loss_scale": 0.0}, ValueError, r"'loss_scale' must be")
    ctor(_name, "loss_scale-str", {"loss_scale": "1"}, TypeError, r"'loss_scale' must be")

# The top-level ``params``, on Momentum.


def _shared(ctx: Ctx):
    base = torch.zeros(4)
    return [("a", nn.Parameter(base)), ("b", nn.Parameter(base))]


def _overlapping_views(ctx: Ctx):
    base = torch.zeros(6)
    return [("left", nn.Parameter(base[0:4])), ("right", nn.Parameter(base[2:6]))]


def _view_of_other(ctx: Ctx):
    return [("fc.weight", ctx.p("fc.weight")), ("fc.row", nn.Parameter(ctx.p("fc.weight").data[0]))]


def _sparse(ctx: Ctx):
    return [("emb.weight", nn.Parameter(torch.eye(3).to_sparse()))]


PARAM_CASES = [
    ("str", lambda ctx: "conv.weight", TypeError, r"'params' must be an iterable of parameters"),
    ("bytes", lambda ctx: b"abc", TypeError, r"'params' must be an iterable of parameters"),
    ("single-tensor", lambda ctx: ctx.p("fc.weight"), TypeError, r"single tensor.*\[param\]"),
    ("set", lambda ctx: {ctx.p("fc.weight")}, TypeError, r"'params' must be an ordered list"),
    ("single-group-dict", lambda ctx: {"params": ctx.params}, TypeError, r"Wrap the group"),
    ("nested-list", lambda ctx: [ctx.params], TypeError, r"params\[0\] must be a torch\.nn"),
    ("plain-tensor", lambda ctx: [torch.ones(2)], TypeError, r"params\[0\].*plain tensor"),
    (
        "non-leaf",
        lambda ctx: [("double", ctx.p("fc.bias") * 2)],
        TypeError,
        r"params\[0\] must be a torch\.nn\.Parameter, but got a plain tensor of shape \(3,\)",
    ),
    ("numbers", lambda ctx: np.ones(3), TypeError, r"params\[0\] must be a torch\.nn\.Parameter"),
    (
        "pair-with-int-name",
        lambda ctx: [(1, ctx.p("fc.bias"))],
        TypeError,
        r"params\[0\] must be a torch\.nn\.Parameter",
    ),
    (
        "requires-grad-false",
        lambda ctx: [("frozen", nn.Parameter(torch.ones(2), requires_grad=False))],
        ValueError,
        r"'frozen'.*requires_grad=False",
    ),
    (
        "int-parameter",
        lambda ctx: [("steps", nn.Parameter(torch.ones(2, dtype=torch.int64), False))],
        TypeError,
        r"'steps'.*dtype torch\.int64",
    ),
    (
        "complex-parameter",
        lambda ctx: [("z", nn.Parameter(torch.ones(2, dtype=torch.complex64)))],
        TypeError,
        r"'z'.*dtype torch\.complex64",
    ),
    ("sparse-parameter", _sparse, TypeError, r"'emb\.weight'.*layout torch\.sparse_coo"),
    (
        "expanded-parameter",
        lambda ctx: [("bias", nn.Parameter(torch.zeros(1).expand(4)))],
        ValueError,
        r"'bias'.*expanded view",
    ),
    (
        "same-parameter-twice",
        lambda ctx: ctx.pairs("fc.weight", "fc.weight"),
        DuplicateParameterError,
        r"'fc\.weight'.*appears twice",
    ),
    (
        "one-parameter-two-names",
        lambda ctx: [("a", ctx.p("fc.bias")), ("b", ctx.p("fc.bias"))],
        ValueError,
        r"'b'.*also named 'a'",
    ),
    (
        "two-parameters-one-name",
        lambda ctx: [("w", ctx.p("fc.bias")), ("w", ctx.p("bn.gamma"))],
        DuplicateParameterError,
        r"both named 'w'",
    ),
    ("shared-storage", _shared, DuplicateParameterError, r"'a' .* and 'b' .* share memory"),
    ("overlapping-views", _overlapping_views, DuplicateParameterError, r"'left'.*'right'.*share"),
    (
        "view-of-another",
        _view_of_other,
        DuplicateParameterError,
        r"'fc\.row' .* and 'fc\.weight' .* share memory",
    ),
    (
        "two-devices",
        lambda ctx: [*ctx.pairs("fc.bias"), ("meta.w", nn.Parameter(torch.ones(2, device="meta")))],
        ValueError,
        r"one device.*\['cpu', 'meta'\]",
    ),
    (
        "dicts-and-params",
        lambda ctx: [{"params": ctx.pairs("fc.bias")}, ctx.p("fc.weight")],
        TypeError,
        r"not a mix",
    ),
    (
        "generator-of-tensors",
        lambda ctx: (torch.ones(2) for _ in range(2)),
        TypeError,
        r"params\[0\] must be a torch\.nn\.Parameter",
    ),
]
for _desc, _params, _raises, _match in PARAM_CASES:
    ctor("Momentum", f"params-{_desc}", {}, _raises, _match, _params)

# Group dicts, on Momentum.


def groups(*build_groups):
    return lambda ctx: [g(ctx) if callable(g) else g for g in build_groups]


def g(*names: str, **keys: Any):
    return lambda ctx: {"params": ctx.pairs(*names), **keys}


class NaNSchedule(msoptim.LearningRateSchedule):
    def forward(self, global_step: Tensor) -> Tensor:
        return torch.tensor(NAN)


class InfSchedule(msoptim.LearningRateSchedule):
    def forward(self, global_step: Tensor) -> Tensor:
        return torch.tensor(INF)


class VectorSchedule(msoptim.LearningRateSchedule):
    def forward(self, global_step: Tensor) -> Tensor:
        return torch.full((3,), 0.1)


GROUP_CASES = [
    (
        "unknown-key",
        groups(g("fc.weight", weight_decy=0.1)),
        UnknownGroupKeyError,
        r"param_groups\[0\] has unknown key 'weight_decy'.*Did you mean 'weight_decay'\?",
    ),
    (
        "non-str-key",
        groups(lambda ctx: {"params": ctx.pairs("fc.weight"), 1: 0.1}),
        KeyError,
        r"param_groups\[0\] has unknown key 1",
    ),
    (
        "no-params-key",
        groups({"lr": 0.1}),
        KeyError,
        r"param_groups\[0\] has no 'params' key",
    ),
    (
        "empty-params",
        groups(g("fc.weight"), {"params": []}),
        ValueError,
        r"param_groups\[1\]\['params'\] must not be empty",
    ),
    (
        "params-None",
        groups({"params": None}),
        ValueError,
        r"param_groups\[0\]\['params'\] must not be None",
    ),
    (
        "params-single-tensor",
        groups(lambda ctx: {"params": ctx.p("fc.weight")}),
        TypeError,
        r"param_groups\[0\]\['params'\] must be a list of parameters, but got a single tensor",
    ),
    (
        "params-str",
        groups({"params": "fc.weight"}),
        TypeError,
        r"param_groups\[0\]\['params'\] must be an iterable of parameters",
    ),
    (
        "plain-tensor-in-group",
        groups(lambda ctx: {"params": [ctx.p("fc.weight"), torch.ones(3)]}),
        TypeError,
        r"param_groups\[0\]\['params'\]\[1\] must be a torch\.nn\.Parameter",
    ),
    (
        "parameter-in-two-groups",
        groups(g("fc.weight"), g("fc.bias", "fc.weight")),
        DuplicateParameterError,
        r"'fc\.weight'.*param_groups\[0\] and param_groups\[1\]",
    ),
    (
        "shared-storage-across-groups",
        groups(
            g("fc.weight"),
            lambda ctx: {"params": [("fc.alias", nn.Parameter(ctx.p("fc.weight").data))]},
        ),
        DuplicateParameterError,
        r"'fc\.weight'.*'fc\.alias'.*share memory",
    ),
    (
        "lr-negative",
        groups(g("fc.weight", lr=-0.1)),
        ValueError,
        r"param_groups\[0\]\['lr'\] must be a finite float >= 0",
    ),
    ("lr-nan", groups(g("fc.weight", lr=NAN)), ValueError, r"param_groups\[0\]\['lr'\].*nan"),
    ("lr-inf", groups(g("fc.weight", lr=INF)), ValueError, r"param_groups\[0\]\['lr'\].*inf"),
    ("lr-None", groups(g("fc.weight", lr=None)), TypeError, r"param_groups\[0\]\['lr'\].*None"),
    (
        "lr-str",
        groups(g("fc.weight", lr="0.1")),
        ValueError,
        r"param_groups\[0\]\['lr'\].*the string '0\.1'",
    ),
    (
        "lr-0d-numpy",
        groups(g("fc.weight", lr=np.array(0.1))),
        TypeError,
        r"param_groups\[0\]\['lr'\].*0-d numpy array",
    ),
    (
        "lr-nested-list",
        groups(g("fc.weight", lr=[[0.1, 0.2]])),
        TypeError,
        r"param_groups\[0\]\['lr'\] must be a flat list.*shape \(1, 2\)",
    ),
    (
        "lr-table-with-nan",
        groups(g("fc.weight", lr=[0.1, NAN])),
        ValueError,
        r"param_groups\[0\]\['lr'\] must hold finite values, but entry 1 is nan",
    ),
    (
        "lr-table-with-bool",
        groups(g("fc.weight", lr=[0.1, True])),
        TypeError,
        r"param_groups\[0\]\['lr'\].*item 1 is True",
    ),
    (
        "lr-table-with-str",
        groups(g("fc.weight", lr=["0.1"])),
        TypeError,
        r"param_groups\[0\]\['lr'\].*item 0 is '0\.1'",
    ),
    (
        "lr-is-a-group",
        groups(lambda ctx: {"params": ctx.pairs("fc.weight"), "lr": [{"params": []}]}),
        TypeError,
        r"param_groups\[0\]\['lr'\].*cannot be nested",
    ),
    (
        "lr-2d-tensor",
        groups(g("fc.weight", lr=torch.ones(2, 2))),
        ValueError,
        r"param_groups\[0\]\['lr'\] must be a 0-d tensor .* shape \(2, 2\)",
    ),
    (
        "lr-bool-table",
        groups(g("fc.weight", lr=torch.tensor([True, False]))),
        TypeError,
        r"param_groups\[0\]\['lr'\] must be a float tensor, but got dtype torch\.bool",
    ),
    (
        "lr-complex-tensor",
        groups(g("fc.weight", lr=torch.tensor(0.1 + 0.1j))),
        TypeError,
        r"param_groups\[0\]\['lr'\] must be a real-valued tensor",
    ),
    (
        "lr-nan-tensor",
        groups(g("fc.weight", lr=torch.tensor(NAN))),
        ValueError,
        r"param_groups\[0\]\['lr'\] must hold a finite value",
    ),
    (
        "lr-meta-tensor",
        groups(g("fc.weight", lr=torch.tensor(0.1, device="meta"))),
        ValueError,
        r"param_groups\[0\]\['lr'\] .*'meta' device",
    ),
    (
        "lr-schedule-nan",
        groups(g("fc.weight", lr=NaNSchedule())),
        ValueError,
        r"param_groups\[0\]\['lr'\] \(NaNSchedule\) returns nan at step 0",
    ),
    (
        "lr-tables-of-two-lengths",
        groups(g("fc.weight", lr=[0.1, 0.2]), g("fc.bias", lr=[0.1, 0.2, 0.3])),
        ValueError,
        r"same length.*param_groups\[0\]\['lr'\]: 2, param_groups\[1\]\['lr'\]: 3",
    ),
    (
        "wd-negative",
        groups(g("fc.weight", weight_decay=-0.1)),
        ValueError,
        r"param_groups\[0\]\['weight_decay'\] must be a finite float >= 0",
    ),
    (
        "wd-nan",
        groups(g("fc.weight", weight_decay=NAN)),
        ValueError,
        r"param_groups\[0\]\['weight_decay'\] must be a finite float",
    ),
    (
        "wd-tensor",
        groups(g("fc.weight", weight_decay=torch.tensor(0.1))),
        TypeError,
        r"param_groups\[0\]\['weight_decay'\] must be a float",
    ),
    (
        "wd-numpy-float32",
        groups(g("fc.weight", weight_decay=np.float32(0.1))),
        TypeError,
        r"param_groups\[0\]\['weight_decay'\] must be a float",
    ),
    (
        "wd-None",
        groups(g("fc.weight", weight_decay=None)),
        TypeError,
        r"param_groups\[0\]\['weight_decay'\] must be a float",
    ),
    (
        "wd-schedule-nan",
        groups(g("fc.weight", weight_decay=NaNSchedule())),
        ValueError,
        r"param_groups\[0\]\['weight_decay'\] \(NaNSchedule\) returns nan",
    ),
    (
        "gc-int",
        groups(g("fc.weight", grad_centralization=1)),
        TypeError,
        r"param_groups\[0\]\['grad_centralization'\] must be a bool",
    ),
    (
        "gc-None",
        groups(g("fc.weight", grad_centralization=None)),
        TypeError,
        r"param_groups\[0\]\['grad_centralization'\] must be a bool",
    ),
    (
        "order-params-with-lr",
        groups(g("fc.weight"), lambda ctx: {"order_params": ctx.pairs("fc.weight"), "lr": 0.1}),
        ValueError,
        r"param_groups\[1\] holds 'order_params' and also \['lr'\]",
    ),
    (
        "order-params-misses-one",
        groups(g("fc.weight", "fc.bias"), lambda ctx: {"order_params": ctx.pairs("fc.weight")}),
        ValueError,
        r"param_groups\[1\]\['order_params'\] misses 'fc\.bias'",
    ),
    (
        "order-params-stranger",
        groups(g("fc.weight"), lambda ctx: {"order_params": ctx.pairs("fc.weight", "fc.bias")}),
        ValueError,
        r"lists 'fc\.bias'.*in no group",
    ),
    (
        "order-params-repeated",
        groups(
            g("fc.weight", "fc.bias"),
            lambda ctx: {"order_params": ctx.pairs("fc.weight", "fc.weight")},
        ),
        ValueError,
        r"'fc\.weight' \(shape \(3, 4\)\) more than once",
    ),
    (
        "order-params-int",
        groups(g("fc.weight"), {"order_params": 3}),
        TypeError,
        r"param_groups\[1\]\['order_params'\] must be a list of parameters",
    ),
    (
        "only-order-params",
        groups(lambda ctx: {"order_params": ctx.pairs("fc.weight")}),
        ValueError,
        r"holds no group with 'params'",
    ),
    (
        "per-group-momentum",
        groups(g("fc.weight", momentum=0.9)),
        KeyError,
        r"param_groups\[0\].*'momentum' is an argument of Momentum",
    ),
]
for _desc, _params, _raises, _match in GROUP_CASES:
    ctor("Momentum", f"group-{_desc}", {}, _raises, _match, _params)

# The top-level learning rate, weight decay and loss scale, on Momentum.
LR_CASES = [
    ("None", None, TypeError, r"'learning_rate' must be a float.*None"),
    ("negative", -0.1, ValueError, r"'learning_rate' must be a finite float >= 0"),
    ("inf", INF, ValueError, r"'learning_rate' must be a finite float >= 0, but got inf"),
    ("numpy-float32", np.float32(0.1), TypeError, r"'learning_rate' must be a float"),
    ("numpy-0d", np.array(0.1), TypeError, r"'learning_rate'.*0-d numpy array"),
    ("object", object(), TypeError, r"'learning_rate' must be a float"),
    ("dict", {"lr": 0.1}, TypeError, r"'learning_rate'.*got a dict"),
    ("schedule-class", msoptim.CosineDecayLR, TypeError, r"'learning_rate' must be a float"),
    ("list-with-inf", [0.1, INF], ValueError, r"'learning_rate'.*entry 1 is inf"),
    (
        "list-with-None",
        [0.1, None],
        msoptim.LearningRateEntryError,
        r"'learning_rate' must be a list of floats, but item 1 is None",
    ),
    (
        "numpy-table-with-nan",
        np.array([0.1, NAN]),
        ValueError,
        r"'learning_rate'.*entry 1 is nan",
    ),
    (
        "tensor-table-with-nan",
        torch.tensor([0.1, 0.2, NAN]),
        ValueError,
        r"'learning_rate'.*entry 2 is nan",
    ),
    ("tensor-nan", torch.tensor(NAN), ValueError, r"'learning_rate' must hold a finite value"),
    (
        "tensor-inf",
        torch.tensor(INF),
        ValueError,
        r"'learning_rate' must hold a finite value",
    ),
    ("tensor-2d", torch.ones(2, 3), ValueError, r"'learning_rate' must be a 0-d tensor"),
    (
        "tensor-bool-table",
        torch.tensor([True]),
        TypeError,
        r"'learning_rate' must be a float tensor",
    ),
    (
        "tensor-uint8-table",
        torch.tensor([1, 2], dtype=torch.uint8),
        TypeError,
        r"'learning_rate' must be a float tensor, but got dtype torch\.uint8",
    ),
    ("tensor-bool", torch.tensor(True), TypeError, r"'learning_rate' must be a real-valued"),
    ("tensor-complex", torch.tensor(1j), TypeError, r"'learning_rate' must be a real-valued"),
    ("meta-tensor", torch.tensor(0.1, device="meta"), ValueError, r"'learning_rate'.*'meta'"),
    ("meta-table", torch.ones(3, device="meta"), ValueError, r"'learning_rate'.*'meta'"),
    ("schedule-nan", NaNSchedule(), ValueError, r"'learning_rate' \(NaNSchedule\) returns nan"),
    ("schedule-inf", InfSchedule(), ValueError, r"'learning_rate' \(InfSchedule\) returns inf"),
    (
        "schedule-vector",
        VectorSchedule(),
        ValueError,
        r"'learning_rate' \(VectorSchedule\) returns a tensor of shape \(3,\)",
    ),
    (
        "schedule-without-forward",
        msoptim.LearningRateSchedule(),
        NotImplementedError,
        r"LearningRateSchedule must implement forward",
    ),
]
for _desc, _lr, _raises, _match in LR_CASES:
    ctor("Momentum", f"lr-{_desc}", {"learning_rate": _lr}, _raises, _match)
for _desc, _wd, _raises, _match in [
    ("nan", NAN, ValueError, r"'weight_decay' must be a finite float >= 0, but got nan"),
    ("inf", INF, ValueError, r"'weight_decay' must be a finite float >= 0, but got inf"),
    ("None", None, TypeError, r"'weight_decay' must be a float >= 0 or a LearningRateSchedule"),
    ("tensor", torch.tensor(0.1), TypeError, r"'weight_decay' must be a float"),
    ("numpy-float32", np.float32(0.1), TypeError, r"'weight_decay' must be a float"),
    ("schedule-nan", NaNSchedule(), ValueError, r"'weight_decay' \(NaNSchedule\) returns nan"),
    ("schedule-vector", VectorSchedule(), ValueError, r"'weight_decay' \(VectorSchedule\)"),
]:
    ctor("Momentum", f"wd-{_desc}", {"weight_decay": _wd}, _raises, _match)
for _desc, _ls, _raises, _match in [
    ("negative", -1.0, ValueError, r"'loss_scale' must be a finite float > 0"),
    ("nan", NAN, ValueError, r"'loss_scale' must be a finite float > 0, but got nan"),
    ("inf", INF, ValueError, r"'loss_scale' must be a finite float > 0, but got inf"),
    ("False", False, ValueError, r"'loss_scale' must be a finite float > 0, but got False"),
    ("None", None, TypeError, r"'loss_scale' must be a float > 0, but got None"),
    ("tensor", torch.tensor(2.0), TypeError, r"'loss_scale' must be a float > 0"),
]:
    ctor("Momentum", f"loss_scale-{_desc}", {"loss_scale": _ls}, _raises, _match)

# Each optimizer's own arguments.
OWN_ARGUMENTS: dict[str, list[tuple[str, dict[str, Any], type, str]]] = {
    "Momentum": [
        ("momentum-int", {"momentum": 1}, TypeError, r"'momentum' must be .*1\.0"),
        ("momentum-negative", {"momentum": -0.1}, ValueError, r"'momentum' must be"),
        ("momentum-nan", {"momentum": NAN}, ValueError, r"'momentum' must be a finite"),
        ("momentum-inf", {"momentum": INF}, ValueError, r"'momentum' must be a finite"),
        ("momentum-None", {"momentum": None}, TypeError, r"'momentum' must be"),
        ("momentum-numpy", {"momentum": np.float32(0.9)}, TypeError, r"'momentum' must be"),
        ("nesterov-int", {"use_nesterov": 1}, TypeError, r"'use_nesterov' must be a bool"),
        ("nesterov-str", {"use_nesterov": "yes"}, TypeError, r"'use_nesterov' must be a bool"),
    ],
    "SGD": [
        ("momentum-str", {"momentum": "0.9"}, TypeError, r"'momentum' must be a float >= 0"),
        ("momentum-negative", {"momentum": -1.0}, ValueError, r"'momentum' must be a finite"),
        ("momentum-inf", {"momentum": INF}, ValueError, r"'momentum' must be a finite float"),
        ("dampening-nan", {"dampening": NAN}, ValueError, r"'dampening' must be a finite"),
        ("dampening-inf", {"dampening": INF}, ValueError, r"'dampening' must be a finite"),
        ("nesterov-int", {"nesterov": 1}, TypeError, r"'nesterov' must be a bool"),
        ("nesterov-no-momentum", {"nesterov": True}, ValueError, r"'nesterov=True' needs"),
        (
            "nesterov-dampening",
            {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
            ValueError,
            r"'nesterov=True' needs .*dampening 0\.1",
        ),
        (
            "wd-schedule",
            {"weight_decay": msoptim.ExponentialDecayLR(0.1, 0.9, 4)},
            TypeError,
            r"'weight_decay' must be a float, but got a LearningRateSchedule",
        ),
    ],
    "Adam": [
        ("beta1-one", {"beta1": 1.0}, ValueError, r"'beta1' must be in the range \(0\.0, 1\.0\)"),
        ("beta1-zero", {"beta1": 0.0}, ValueError, r"'beta1' must be in the range"),
        ("beta1-nan", {"beta1": NAN}, ValueError, r"'beta1' must be in the range"),
        ("beta1-int", {"beta1": 1}, TypeError, r"'beta1' must be a float"),
        ("beta2-above-one", {"beta2": 1.5}, ValueError, r"'beta2' must be in the range"),
        ("beta2-negative", {"beta2": -0.1}, ValueError, r"'beta2' must be in the range"),
        ("eps-zero", {"eps": 0.0}, ValueError, r"'eps' must be a finite float > 0"),
        ("eps-inf", {"eps": INF}, ValueError, r"'eps' must be a finite float > 0"),
        ("eps-int", {"eps": 1}, TypeError, r"'eps' must be a float"),
        ("use_locking-int", {"use_locking": 1}, TypeError, r"'use_locking' must be a bool"),
        ("use_nesterov-None", {"use_nesterov": None}, TypeError, r"'use_nesterov' must be"),
        ("use_amsgrad-str", {"use_amsgrad": "no"}, TypeError, r"'use_amsgrad' must be a bool"),
        ("use_lazy-int", {"use_lazy": 1}, TypeError, r"'use_lazy' must be a bool"),
        ("unknown-kwarg", {"use_lazzy": True}, KeyError, r"'use_lazzy'.*Did you mean 'use_lazy'"),
        (
            "lazy-and-offload",
            {"use_lazy": True, "use_offload": True},
            ValueError,
            r"'use_lazy' and 'use_offload' cannot both be True",
        ),
        (
            "amsgrad-and-lazy",
            {"use_amsgrad": True, "use_lazy": True},
            ValueError,
            r"'use_amsgrad=True' cannot be combined with use_lazy",
        ),
    ],
    "AdamOffload": [
        ("beta1-one", {"beta1": 1.0}, ValueError, r"'beta1' must be in the range"),
        ("use_locking-int", {"use_locking": 0}, TypeError, r"'use_locking' must be a bool"),
        ("use_nesterov-int", {"use_nesterov": 1}, TypeError, r"'use_nesterov' must be a bool"),
    ],
    "LazyAdam": [
        ("wd-int", {"weight_decay": 1}, TypeError, r"'weight_decay' must be a float"),
        (
            "wd-schedule",
            {"weight_decay": msoptim.ExponentialDecayLR(0.1, 0.9, 4)},
            TypeError,
            r"'weight_decay' must be a float",
        ),
        ("beta2-zero", {"beta2": 0.0}, ValueError, r"'beta2' must be in the range"),
    ],
    "AdamWeightDecay": [
        ("beta2-zero", {"beta2": 0.0}, ValueError, r"'beta2' must be in the range"),
        ("beta1-nan", {"beta1": NAN}, ValueError, r"'beta1' must be in the range"),
        ("eps-int", {"eps": 1}, TypeError, r"'eps' must be a float"),
    ],
    "AdaMax": [
        ("eps-zero", {"eps": 0.0}, ValueError, r"'eps' must be a finite float > 0"),
        ("beta1-int", {"beta1": 1}, TypeError, r"'beta1' must be a float"),
        ("beta2-one", {"beta2": 1.0}, ValueError, r"'beta2' must be in the range"),
    ],
    "Lamb": [
        ("beta1-zero", {"beta1": 0.0}, ValueError, r"'beta1' must be in the range"),
        ("eps-negative", {"eps": -1e-6}, ValueError, r"'eps' must be"),
        ("beta2-str", {"beta2": "0.999"}, TypeError, r"'beta2' must be a float"),
    ],
    "RMSProp": [
        ("decay-int", {"decay": 1}, TypeError, r"'decay' must be .*1\.0"),
        ("decay-negative", {"decay": -0.1}, ValueError, r"'decay' must be"),
        ("momentum-negative", {"momentum": -0.1}, ValueError, r"'momentum' must be"),
        ("epsilon-zero", {"epsilon": 0.0}, ValueError, r"'epsilon' must be a finite float > 0"),
        ("centered-int", {"centered": 1}, TypeError, r"'centered' must be a bool"),
        ("use_locking-str", {"use_locking": "no"}, TypeError, r"'use_locking' must be a bool"),
    ],
    "Adagrad": [
        ("accum-int", {"accum": 1}, TypeError, r"'accum' must be a float"),
        ("accum-negative", {"accum": -0.1}, ValueError, r"'accum' must be"),
        ("update_slots-int", {"update_slots": 1}, TypeError, r"'update_slots' must be a bool"),
    ],
    "ProximalAdagrad": [
        ("l1-negative", {"l1": -0.1}, ValueError, r"'l1' must be"),
        ("l2-nan", {"l2": NAN}, ValueError, r"'l2' must be a finite"),
        ("accum-int", {"accum": 0}, TypeError, r"'accum' must be a float"),
        ("use_locking-int", {"use_locking": 1}, TypeError, r"'use_locking' must be a bool"),
    ],
    "Adadelta": [
        ("rho-above-one", {"rho": 1.5}, ValueError, r"'rho' must be in the range \[0\.0, 1\.0\]"),
        ("rho-negative", {"rho": -0.1}, ValueError, r"'rho' must be in the range"),
        ("rho-int", {"rho": 1}, TypeError, r"'rho' must be a float"),
        ("epsilon-negative", {"epsilon": -1e-6}, ValueError, r"'epsilon' must be"),
    ],
    "FTRL": [
        ("lr-int", {"learning_rate": 1}, TypeError, r"'learning_rate' must be a positive float"),
        ("lr-zero", {"learning_rate": 0.0}, ValueError, r"'learning_rate' must be a finite"),
        ("lr-table", {"learning_rate": [0.1, 0.2]}, ValueError, r"dynamic learning rate"),
        (  # MindSpore takes a NaN tensor, then FTRL refuses any tensor: its TypeError first
            "lr-nan-tensor",
            {"learning_rate": torch.tensor(NAN)},
            TypeError,
            r"'learning_rate' must be a positive float, but got tensor\(nan\)",
        ),
        (  # MindSpore takes the list as a dynamic lr, which FTRL refuses first: its ValueError
            "lr-table-with-a-string",
            {"learning_rate": [0.1, "0.2"]},
            ValueError,
            r"dynamic learning rate .* not supported in FTRL",
        ),
        (
            "lr-schedule",
            {"learning_rate": msoptim.CosineDecayLR(0.01, 0.1, 4)},
            ValueError,
            r"dynamic learning rate",
        ),
        ("initial_accum-negative", {"initial_accum": -0.1}, ValueError, r"'initial_accum'"),
        ("lr_power-positive", {"lr_power": 0.5}, ValueError, r"'lr_power' must be a finite"),
        ("lr_power-int", {"lr_power": -1}, TypeError, r"'lr_power' must be a float"),
        ("l1-negative", {"l1": -1.0}, ValueError, r"'l1' must be"),
        ("use_locking-int", {"use_locking": 1}, TypeError, r"'use_locking' must be a bool"),
    ],
    "ASGD": [
        ("t0-int", {"t0": 1000000}, TypeError, r"'t0' must be a float.*1000000\.0"),
        ("lambd-nan", {"lambd": NAN}, ValueError, r"'lambd' must be a finite float"),
        ("alpha-inf", {"alpha": INF}, ValueError, r"'alpha' must be a finite float"),
        ("t0-nan", {"t0": NAN}, ValueError, r"'t0' must be a float, not NaN"),
        ("lambd-str", {"lambd": "1e-4"}, TypeError, r"'lambd' must be a float"),
    ],
    "Rprop": [
        ("etas-list", {"etas": [0.5, 1.2]}, TypeError, r"'etas' must be a tuple"),
        ("etas-three", {"etas": (0.5, 1.2, 2.0)}, ValueError, r"'etas' must be a tuple of 2"),
        ("step_sizes-list", {"step_sizes": [1e-6, 50.0]}, TypeError, r"'step_sizes' must be"),
        ("step_sizes-reversed", {"step_sizes": (50.0, 1e-6)}, ValueError, r"step_sizes="),
        (
            "etaminus-one",
            {"etas": (1.0, 1.2)},
            ValueError,
            r"'etas\[0\] \(etaminus\)' must be in the range",
        ),
        (
            "etaminus-int",
            {"etas": (0, 1.2)},
            TypeError,
            r"'etas\[0\] \(etaminus\)' must be a float",
        ),
        (
            "etaplus-one",
            {"etas": (0.5, 1.0)},
            ValueError,
            r"'etas\[1\] \(etaplus\)' must be a float > 1\.0",
        ),
        (
            "step-nan",
            {"step_sizes": (NAN, 50.0)},
            ValueError,
            r"'step_sizes\[0\] \(min_step_sizes\)' must be",
        ),
        (
            "max-step-int",
            {"step_sizes": (1e-6, 50)},
            TypeError,
            r"'step_sizes\[1\] \(max_step_sizes\)' must be",
        ),
    ],
    "AdaFactor": [
        (
            "lr-with-relative-step",
            {"learning_rate": 0.01},
            ValueError,
            r"'learning_rate' must be None when relative_step=True",
        ),
        (
            "no-lr-without-relative-step",
            {"relative_step": False},
            ValueError,
            r"'learning_rate' is required when relative_step=False",
        ),
        (
            "warmup-without-relative-step",
            {"learning_rate": 0.01, "relative_step": False, "warmup_init": True},
            ValueError,
            r"'warmup_init=True' needs relative_step=True",
        ),
        ("eps-three", {"eps": (1e-30, 1e-3, 1.0)}, ValueError, r"'eps' must be two floats"),
        ("eps-str", {"eps": "1e-30"}, TypeError, r"'eps' must be a tuple or list"),
        ("eps-negative", {"eps": (-1e-30, 1e-3)}, ValueError, r"'eps\[0\]' must be"),
        ("clip-negative", {"clip_threshold": -1.0}, ValueError, r"'clip_threshold' must be"),
        ("decay_rate-one", {"decay_rate": 1.0}, ValueError, r"'decay_rate' must be in the range"),
        ("wd-one", {"weight_decay": 1.0}, ValueError, r"'weight_decay' must be in the range"),
        ("scale-int", {"scale_parameter": 1}, TypeError, r"'scale_parameter' must be a bool"),
        ("beta1-negative", {"beta1": -0.1}, ValueError, r"'beta1' must be a finite number"),
        ("beta1-str", {"beta1": "0.9"}, TypeError, r"'beta1' must be an int or float"),
    ],
}
for _name, _rows in OWN_ARGUMENTS.items():
    for _desc, _kwargs, _raises, _match in _rows:
        ctor(_name, _desc, _kwargs, _raises, _match)

ctor(
    "SGD",
    "group-wd-schedule",
    {},
    TypeError,
    r"param_groups\[0\]\['weight_decay'\] is a schedule",
    lambda ctx: [
        {"params": ctx.pairs("fc.weight"), "weight_decay": msoptim.ExponentialDecayLR(0.1, 0.9, 4)}
    ],
)
ctor(
    "FTRL",
    "group-lr",
    {},
    ValueError,
    r"group learning rate",
    lambda ctx: [{"params": ctx.pairs("fc.weight"), "lr": 0.1}],
)
case(
    "Momentum-missing-momentum",
    lambda ctx: msoptim.Momentum(ctx.params, 0.1),
    TypeError,
    r"momentum",
)
case("Lamb-missing-lr", lambda ctx: msoptim.Lamb(ctx.params), TypeError, r"learning_rate")

# ---------------------------------------------------------------------------------------- LARS


def _momentum(ctx: Ctx, **kwargs: Any) -> msoptim.Momentum:
    return msoptim.Momentum(ctx.params, **{"learning_rate": 0.1, "momentum": 0.9, **kwargs})


def _lars_twice(ctx: Ctx):
    return msoptim.LARS(ctx.extra["inner"])


def _wrapped_once(ctx: Ctx) -> None:
    ctx.extra["inner"] = _momentum(ctx, weight_decay=0.01)
    ctx.stepped(msoptim.LARS(ctx.extra["inner"]))


LARS_CASES = [
    ("optimizer-None", lambda ctx: msoptim.LARS(None), TypeError, r"'optimizer' must be an msop"),
    (
        "optimizer-torch",
        lambda ctx: msoptim.LARS(torch.optim.SGD([p for _, p in ctx.params], lr=0.1)),
        TypeError,
        r"'optimizer' must be an msoptim optimizer",
    ),
    (
        "lars-of-lars",
        lambda ctx: msoptim.LARS(msoptim.LARS(_momentum(ctx))),
        TypeError,
        r"not a LARS\), but got another LARS",
    ),
    ("epsilon-int", lambda ctx: msoptim.LARS(_momentum(ctx), epsilon=1), TypeError, r"'epsilon'"),
    (
        "epsilon-nan",
        lambda ctx: msoptim.LARS(_momentum(ctx), epsilon=NAN),
        ValueError,
        r"'epsilon' must be a finite float",
    ),
    (
        "coefficient-str",
        lambda ctx: msoptim.LARS(_momentum(ctx), coefficient="0.001"),
        TypeError,
        r"'coefficient' must be a float",
    ),
    (
        "use_clip-int",
        lambda ctx: msoptim.LARS(_momentum(ctx), use_clip=1),
        TypeError,
        r"'use_clip' must be a bool",
    ),
    (
        "foreach-int",
        lambda ctx: msoptim.LARS(_momentum(ctx), foreach=1),
        TypeError,
        r"'foreach' must be None, True or False",
    ),
    (
        "filter-not-callable",
        lambda ctx: msoptim.LARS(_momentum(ctx), lars_filter="bias"),
        TypeError,
        r"'lars_filter' must be a callable",
    ),
    (
        "use_clip-group-and-dynamic",
        lambda ctx: msoptim.LARS(
            msoptim.Momentum(
                [
                    {"params": ctx.pairs("fc.weight"), "lr": [0.1, 0.2]},
                    {"params": ctx.pairs("fc.bias")},
                ],
                0.1,
                0.9,
            ),
            use_clip=True,
        ),
        ValueError,
        r"'use_clip=True' needs an optimizer without both",
    ),
]
for _desc, _act, _raises, _match in LARS_CASES:
    case(f"LARS-{_desc}", _act, _raises, _match)
case(
    "LARS-already-wrapped",
    _lars_twice,
    ValueError,
    r"already wrapped by a LARS",
    setup=_wrapped_once,
)
case(
    "LARS-add_param_group",
    lambda ctx: ctx.opt.add_param_group({"params": [("x", nn.Parameter(torch.ones(2)))]}),
    NotImplementedError,
    r"LARS\.add_param_group",
    setup=_wrapped_once,
)
case(
    "LARS-call-wrong-count",
    lambda ctx: ctx.opt(grads_for(ctx.params)[:2]),
    ValueError,
    r"got 2 gradients for 4 parameters",
    setup=_wrapped_once,
)
case(
    "LARS-load-state-dict-list",
    lambda ctx: ctx.opt.load_state_dict([]),
    TypeError,
    r"LARS\.load_state_dict: expected a dict",
    setup=_wrapped_once,
)

# ------------------------------------------------------------------ an existing optimizer


def _stepped_momentum(ctx: Ctx) -> None:
    ctx.stepped(_momentum(ctx, weight_decay=0.01))


def _stepped_table(ctx: Ctx) -> None:
    ctx.stepped(_momentum(ctx, learning_rate=[0.1, 0.2, 0.3]))


def _stepped_groups(ctx: Ctx) -> None:
    ctx.stepped(
        msoptim.Momentum(
            [
                {"params": ctx.pairs("conv.weight", "bn.gamma"), "lr": 0.05},
                {"params": ctx.pairs("fc.weight", "fc.bias")},
            ],
            0.1,
            0.9,
        )
    )


def _on(setup, id: str, act, raises, match) -> None:
    case(id, act, raises, match, setup=setup)


def _grads_with(ctx: Ctx, index: int, value: Any) -> tuple[Any, ...]:
    grads = list(grads_for(ctx.params))
    grads[index] = value
    return tuple(grads)


CALL_CASES = [
    ("single-tensor", lambda ctx: ctx.opt(torch.ones(3)), TypeError, r"gradients must be a tuple"),
    ("dict", lambda ctx: ctx.opt({"fc.bias": torch.ones(3)}), TypeError, r"must be a tuple"),
    ("None", lambda ctx: ctx.opt(None), TypeError, r"gradients must be a tuple"),
    (
        "generator",
        lambda ctx: ctx.opt(g for g in grads_for(ctx.params)),
        TypeError,
        r"gradients must be a tuple",
    ),
    ("too-few", lambda ctx: ctx.opt(grads_for(ctx.params)[:3]), ValueError, r"got 3 gradients"),
    (
        "too-many",
        lambda ctx: ctx.opt((*grads_for(ctx.params), torch.ones(1))),
        ValueError,
        r"got 5 gradients for 4 parameters",
    ),
    (
        "float-entry",
        lambda ctx: ctx.opt(_grads_with(ctx, 3, 0.5)),
        TypeError,
        r"the gradient of 'fc\.bias' must be a tensor, but got 0\.5",
    ),
    (
        "numpy-entry",
        lambda ctx: ctx.opt(_grads_with(ctx, 3, np.ones(3, np.float32))),
        TypeError,
        r"the gradient of 'fc\.bias' must be a tensor",
    ),
    (
        "list-entry",
        lambda ctx: ctx.opt(_grads_with(ctx, 1, [1.0, 1.0, 1.0, 1.0])),
        TypeError,
        r"the gradient of 'bn\.gamma' must be a tensor",
    ),
    (
        "wrong-shape",
        lambda ctx: ctx.opt(_grads_with(ctx, 2, torch.ones(4, 3))),
        ValueError,
        r"the gradient of 'fc\.weight' has shape \(4, 3\) but the parameter has shape \(3, 4\)",
    ),
    (
        "flattened",
        lambda ctx: ctx.opt(_grads_with(ctx, 0, torch.ones(32))),
        ValueError,
        r"the gradient of 'conv\.weight' has shape \(32,\)",
    ),
    (
        "float64",
        lambda ctx: ctx.opt(_grads_with(ctx, 3, torch.ones(3, dtype=torch.float64))),
        TypeError,
        r"the gradient of 'fc\.bias' is torch\.float64 on cpu but the parameter is torch\.float32",
    ),
    (
        "int",
        lambda ctx: ctx.opt(_grads_with(ctx, 3, torch.ones(3, dtype=torch.int64))),
        TypeError,
        r"the gradient of 'fc\.bias' is torch\.int64",
    ),
    (
        "complex",
        lambda ctx: ctx.opt(_grads_with(ctx, 3, torch.ones(3, dtype=torch.complex64))),
        TypeError,
        r"the gradient of 'fc\.bias' is torch\.complex64",
    ),
    (
        "meta",
        lambda ctx: ctx.opt(_grads_with(ctx, 3, torch.ones(3, device="meta"))),
        TypeError,
        r"the gradient of 'fc\.bias' is torch\.float32 on meta",
    ),
    (
        "sparse",
        lambda ctx: ctx.opt(_grads_with(ctx, 3, torch.ones(3).to_sparse())),
        TypeError,
        r"the gradient of 'fc\.bias' is sparse",
    ),
]
for _desc, _act, _raises, _match in CALL_CASES:
    _on(_stepped_momentum, f"call-{_desc}", _act, _raises, _match)


def _sparse_grads(ctx: Ctx) -> None:
    _stepped_momentum(ctx)
    for _, p in ctx.params:
        p.grad = torch.ones_like(p)
    ctx.p("fc.bias").grad = torch.ones(3).to_sparse()


_on(
    _sparse_grads,
    "step-sparse-grad",
    lambda ctx: ctx.opt.step(),
    TypeError,
    r"parameter 'fc\.bias' has a sparse gradient",
)


def _exhausted(ctx: Ctx) -> None:
    _stepped_table(ctx)
    ctx.opt(grads_for(ctx.params))
    ctx.opt(grads_for(ctx.params))


_on(
    _exhausted,
    "step-past-the-table",
    lambda ctx: ctx.opt(grads_for(ctx.params)),
    LearningRateTableExhaustedError,
    r"table of 3 values \(valid for global_step 0\.\.2\), but global_step is 3",
)
_on(
    _exhausted,
    "get_lr-past-the-table",
    lambda ctx: ctx.opt.get_lr(),
    IndexError,
    r"learning_rate\) is a table of 3 values",
)


def _near_int32_limit(ctx: Ctx) -> None:
    _stepped_momentum(ctx)
    state = ctx.opt.state_dict()
    state["param_groups"][0]["global_step"] = torch.tensor([2**31 - 1], dtype=torch.int32)
    ctx.opt.load_state_dict(state)


_on(
    _near_int32_limit,
    "step-past-int32",
    lambda ctx: ctx.opt(grads_for(ctx.params)),
    OverflowError,
    r"global_step is 2147483647, the largest value of its int32 counter",
)


def _param(shape=(2,), **kwargs) -> nn.Parameter:
    return nn.Parameter(torch.ones(*shape, **kwargs))


ADD_GROUP_CASES = [
    ("not-a-dict", lambda ctx: ctx.opt.add_param_group([_param()]), TypeError, r"'param_group'"),
    (
        "existing-parameter",
        lambda ctx: ctx.opt.add_param_group({"params": ctx.pairs("fc.bias")}),
        ValueError,
        r"parameter 'fc\.bias' is already in this optimizer",
    ),
    (
        "unknown-key",
        lambda ctx: ctx.opt.add_param_group({"params": [("x", _param())], "weight_decai": 0.1}),
        KeyError,
        r"unknown key 'weight_decai'.*Did you mean 'weight_decay'",
    ),
    (
        "empty",
        lambda ctx: ctx.opt.add_param_group({"params": []}),
        ValueError,
        r"param_groups\[0\]\['params'\] must not be empty",
    ),
    (
        "order-params",
        lambda ctx: ctx.opt.add_param_group({"order_params": ctx.params}),
        ValueError,
        r"add_param_group: 'order_params'",
    ),
    (
        "table-into-static",
        lambda ctx: ctx.opt.add_param_group({"params": [("x", _param())], "lr": [0.1, 0.2]}),
        ValueError,
        r"the new group's lr kind \(table\)",
    ),
    (
        "meta-parameter",
        lambda ctx: ctx.opt.add_param_group({"params": [("x", _param(device="meta"))]}),
        ValueError,
        r"'x' is on meta",
    ),
    (
        "shares-memory",
        lambda ctx: ctx.opt.add_param_group(
            {"params": [("fc.alias", nn.Parameter(ctx.p("fc.weight").data))]}
        ),
        DuplicateParameterError,
        r"'fc\.weight' and 'fc\.alias' share memory",
    ),
    (
        "name-taken",
        lambda ctx: ctx.opt.add_param_group({"params": [("fc.bias", _param())]}),
        DuplicateParameterError,
        r"already named 'fc\.bias'",
    ),
    (
        "frozen",
        lambda ctx: ctx.opt.add_param_group(
            {"params": [("x", nn.Parameter(torch.ones(2), requires_grad=False))]}
        ),
        ValueError,
        r"'x'.*requires_grad=False",
    ),
    (
        "lr-nan",
        lambda ctx: ctx.opt.add_param_group({"params": [("x", _param())], "lr": NAN}),
        ValueError,
        r"param_groups\[0\]\['lr'\] must be a finite float",
    ),
    (
        "wd-int-str",
        lambda ctx: ctx.opt.add_param_group({"params": [("x", _param())], "weight_decay": "1"}),
        TypeError,
        r"param_groups\[0\]\['weight_decay'\] must be a float",
    ),
]
for _desc, _act, _raises, _match in ADD_GROUP_CASES:
    _on(_stepped_momentum, f"add_param_group-{_desc}", _act, _raises, _match)
_on(
    _stepped_table,
    "add_param_group-table-length",
    lambda ctx: ctx.opt.add_param_group({"params": [("x", _param())], "lr": [0.1, 0.2]}),
    ValueError,
    r"the new group's lr table has 2 values but this optimizer's tables have 3",
)
_on(
    lambda ctx: ctx.stepped(msoptim.FTRL(ctx.params, learning_rate=0.1)),
    "add_param_group-FTRL-lr",
    lambda ctx: ctx.opt.add_param_group({"params": [("x", _param())], "lr": 0.1}),
    ValueError,
    r"FTRL\.add_param_group: group learning rates are not supported",
)

GET_LR_PARAMETER_CASES = [
    ("tuple", lambda ctx: ctx.opt.get_lr_parameter((ctx.p("fc.bias"),)), TypeError, r"'param'"),
    ("tensor", lambda ctx: ctx.opt.get_lr_parameter(torch.ones(2)), TypeError, r"'param' must"),
    ("None", lambda ctx: ctx.opt.get_lr_parameter(None), TypeError, r"'param' must be"),
    ("name", lambda ctx: ctx.opt.get_lr_parameter("fc.bias"), TypeError, r"'param' must be"),
    (
        "pair",
        lambda ctx: ctx.opt.get_lr_parameter(("fc.bias", ctx.p("fc.bias"))),
        TypeError,
        r"'param' must be a Parameter",
    ),
    (
        "list-with-tensor",
        lambda ctx: ctx.opt.get_lr_parameter([ctx.p("fc.bias"), torch.ones(1)]),
        TypeError,
        r"every item must be a Parameter",
    ),
    (
        "foreign-parameter",
        lambda ctx: ctx.opt.get_lr_parameter(_param((5,))),
        ValueError,
        r"the parameter of shape \(5,\) is not in this optimizer",
    ),
    (
        "list-with-foreign",
        lambda ctx: ctx.opt.get_lr_parameter([ctx.p("fc.bias"), _param((6,))]),
        ValueError,
        r"shape \(6,\) is not in this optimizer",
    ),
]
for _desc, _act, _raises, _match in GET_LR_PARAMETER_CASES:
    _on(_stepped_groups, f"get_lr_parameter-{_desc}", _act, _raises, _match)


def _other_state(cls_name: str, **kwargs: Any):
    def make(ctx: Ctx) -> dict[str, Any]:
        params = named_params()
        other = build(cls_name, params, **kwargs)
        other(grads_for(params))
        return other.state_dict()

    return make


def _edited_state(edit):
    def make(ctx: Ctx) -> dict[str, Any]:
        state = copy.deepcopy(ctx.opt.state_dict())
        edit(state)
        return state

    return make


def _set_group(key: str, value: Any):
    def edit(state: dict[str, Any]) -> None:
        state["param_groups"][0][key] = value

    return edit


def _drop_group_key(key: str):
    def edit(state: dict[str, Any]) -> None:
        del state["param_groups"][0][key]

    return edit


def _reshape_state(state: dict[str, Any]) -> None:
    first = next(iter(state["state"].values()))
    first["moments"] = torch.zeros(7)


def _rename(state: dict[str, Any]) -> None:
    state["msoptim"]["param_names"][0][0] = "encoder.weight"


def _torch_sgd_state(ctx: Ctx) -> dict[str, Any]:
    return torch.optim.SGD([p for _, p in ctx.params], lr=0.1, momentum=0.9).state_dict()


LOAD_CASES = [
    ("list", lambda ctx: [], TypeError, r"load_state_dict: expected a dict from opt\.state_dict"),
    ("no-param-groups", lambda ctx: {"state": {}}, TypeError, r"expected a dict"),
    (
        "param-groups-not-list",
        _edited_state(lambda s: s.update(param_groups=3)),
        TypeError,
        r"'param_groups' must be a list of dicts",
    ),
    (
        "state-not-dict",
        _edited_state(lambda s: s.update(state=[])),
        TypeError,
        r"'state' must be a dict",
    ),
    (
        "torch-sgd",
        _torch_sgd_state,
        ValueError,
        r"param_groups\[0\] has no 'global_step'.*not a checkpoint of an msoptim optimizer",
    ),
    (
        "adam-into-momentum",
        _other_state("Adam", learning_rate=0.01),
        ValueError,
        r"\('conv\.weight'\) has state \['beta1_power'.*\] in the checkpoint but \['moments'\]",
    ),
    (
        "missing-lr",
        _edited_state(_drop_group_key("lr")),
        ValueError,
        r"param_groups\[0\] has no 'lr'",
    ),
    (
        "missing-global-step",
        _edited_state(_drop_group_key("global_step")),
        ValueError,
        r"param_groups\[0\] has no 'global_step'",
    ),
    (
        "negative-global-step",
        _edited_state(_set_group("global_step", torch.tensor([-5], dtype=torch.int32))),
        ValueError,
        r"param_groups\[0\]\['global_step'\] must be one integer in \[0, 2147483647\]",
    ),
    (
        "global-step-past-int32",
        _edited_state(_set_group("global_step", torch.tensor([2**31], dtype=torch.int64))),
        ValueError,
        r"'global_step'\] must be one integer",
    ),
    (
        "float-global-step",
        _edited_state(_set_group("global_step", torch.tensor([1.5]))),
        ValueError,
        r"'global_step'\] must be one integer",
    ),
    (
        "nan-lr",
        _edited_state(_set_group("lr", torch.tensor(NAN))),
        ValueError,
        r"param_groups\[0\]\['lr'\] must be one finite number",
    ),
    (
        "lr-vector",
        _edited_state(_set_group("lr", torch.ones(2))),
        ValueError,
        r"param_groups\[0\]\['lr'\] must be one finite number",
    ),
    (
        "state-shape",
        _edited_state(_reshape_state),
        ValueError,
        r"has state 'moments' of shape \(7,\) in the checkpoint",
    ),
    (
        "renamed",
        _edited_state(_rename),
        ValueError,
        r"'encoder\.weight' in the checkpoint but 'conv\.weight' here",
    ),
]


def _load(make_state):
    return lambda ctx: ctx.opt.load_state_dict(make_state(ctx))


for _desc, _make, _raises, _match in LOAD_CASES:
    _on(_stepped_momentum, f"load_state_dict-{_desc}", _load(_make), _raises, _match)
_on(
    _stepped_groups,
    "load_state_dict-group-count",
    _load(_other_state("Momentum", learning_rate=0.1, momentum=0.9)),
    ValueError,
    r"the checkpoint has 1 parameter groups, this optimizer has 2",
)
_on(
    _stepped_momentum,
    "load_state_dict-table-into-static",
    _load(_other_state("Momentum", learning_rate=[0.1, 0.2], momentum=0.9)),
    ValueError,
    r"param_groups\[0\] has a table learning rate in the checkpoint but a static one here",
)
_on(
    _stepped_table,
    "load_state_dict-other-table-length",
    _load(_other_state("Momentum", learning_rate=[0.1, 0.2], momentum=0.9)),
    ValueError,
    r"the checkpoint's lr table has 2 values, this one 3",
)
_on(
    lambda ctx: ctx.stepped(_momentum(ctx, learning_rate=msoptim.CosineDecayLR(0.01, 0.1, 10))),
    "load_state_dict-other-schedule",
    _load(
        _other_state("Momentum", learning_rate=msoptim.CosineDecayLR(0.01, 0.2, 10), momentum=0.9)
    ),
    ValueError,
    r"the checkpoint's schedule is CosineDecayLR\(.*'max_lr': 0\.2",
)


def _ms_state(edit):
    def act(ctx: Ctx) -> None:
        state = {name: value.clone() for name, value in ctx.opt.ms_state_dict().items()}
        edit(state)
        ctx.opt.load_ms_state_dict(state)

    return act


LOAD_MS_CASES = [
    ("list", lambda ctx: ctx.opt.load_ms_state_dict([]), TypeError, r"expected a dict of name"),
    (
        "unknown-name",
        _ms_state(lambda s: s.update({"moments.encoder.weight": torch.zeros(1)})),
        ValueError,
        r"unknown names \['moments\.encoder\.weight'\]",
    ),
    (
        "missing-name",
        _ms_state(lambda s: s.pop("moments.fc.bias")),
        ValueError,
        r"missing names \['moments\.fc\.bias'\]",
    ),
    (
        "wrong-size",
        _ms_state(lambda s: s.update({"moments.fc.bias": torch.zeros(4)})),
        ValueError,
        r"'moments\.fc\.bias' has shape \(4,\) but this optimizer's has shape \(3,\)",
    ),
    (
        "string-value",
        _ms_state(lambda s: s.update({"moments.fc.bias": "abc"})),
        TypeError,
        r"'moments\.fc\.bias' must be a real numeric array",
    ),
    (
        "None-value",
        _ms_state(lambda s: s.update({"moments.fc.bias": None})),
        TypeError,
        r"'moments\.fc\.bias' must be a real numeric array",
    ),
    (
        "complex-value",
        _ms_state(lambda s: s.update({"moments.fc.bias": np.ones(3, np.complex64)})),
        TypeError,
        r"'moments\.fc\.bias' must be a real numeric array",
    ),
    (
        "negative-global-step",
        _ms_state(lambda s: s.update(global_step=np.array([-1], np.int32))),
        ValueError,
        r"'global_step' must be one integer in \[0, 2147483647\]",
    ),
    (
        "float-global-step",
        _ms_state(lambda s: s.update(global_step=np.array([2.5], np.float32))),
        ValueError,
        r"'global_step' must be one integer",
    ),
]
for _desc, _act, _raises, _match in LOAD_MS_CASES:
    _on(_stepped_momentum, f"load_ms_state_dict-{_desc}", _act, _raises, _match)

# ---------------------------------------------------------------------------------- assign


def _watch_lr(ctx: Ctx) -> None:
    _stepped_momentum(ctx)
    ctx.watched.append(ctx.opt.learning_rate)


ASSIGN_CASES = [
    ("target-float", lambda ctx: msoptim.assign(0.1, 0.2), TypeError, r"'target' must be a tensor"),
    ("target-None", lambda ctx: msoptim.assign(None, 0.2), TypeError, r"'target' must be a tensor"),
    ("value-bool", lambda ctx: msoptim.assign(ctx.opt.learning_rate, True), TypeError, r"'value'"),
    ("value-str", lambda ctx: msoptim.assign(ctx.opt.learning_rate, "0.1"), TypeError, r"'value'"),
    ("value-None", lambda ctx: msoptim.assign(ctx.opt.learning_rate, None), TypeError, r"'value'"),
    (
        "value-list",
        lambda ctx: msoptim.assign(ctx.opt.learning_rate, [0.1]),
        TypeError,
        r"'value' must be a number or a tensor",
    ),
    (
        "value-shape",
        lambda ctx: msoptim.assign(ctx.opt.learning_rate, torch.ones(3)),
        ValueError,
        r"'value' of shape \(3,\) cannot be written into 'target' of shape \(\)",
    ),
    (
        "value-complex",
        lambda ctx: msoptim.assign(ctx.opt.learning_rate, torch.tensor(1j)),
        TypeError,
        r"'value' is a torch\.complex64 tensor",
    ),
]
for _desc, _act, _raises, _match in ASSIGN_CASES:
    _on(_watch_lr, f"assign-{_desc}", _act, _raises, _match)

# --------------------------------------------------------------------------- trainable_params
for _desc, _value in [
    ("None", None),
    ("list", [nn.Parameter(torch.ones(1))]),
    ("parameter", nn.Parameter(torch.ones(1))),
    ("str", "model"),
    ("state-dict", {"weight": torch.ones(1)}),
]:
    case(
        f"trainable_params-{_desc}",
        lambda ctx, value=_value: msoptim.trainable_params(value),
        TypeError,
        r"trainable_params: 'module' must be a torch\.nn\.Module",
    )

# ------------------------------------------------------------------------------ LR functions
LR_FUNCTION_CASES = [
    (
        "piecewise_constant_lr",
        "milestone-int",
        (3, [0.1]),
        TypeError,
        r"'milestone' must be a list",
    ),
    ("piecewise_constant_lr", "rates-str", ([3], "0.1"), TypeError, r"'learning_rates' must be"),
    (
        "piecewise_constant_lr",
        "milestone-generator",
        ((m for m in [3]), [0.1]),
        TypeError,
        r"'milestone' must be a list or tuple",
    ),
    ("piecewise_constant_lr", "lengths", ([2, 5], [0.1]), ValueError, r"'learning_rates'.*2 entr"),
    ("piecewise_constant_lr", "zero", ([0, 2], [0.1, 0.2]), ValueError, r"'milestone\[0\]'"),
    ("piecewise_constant_lr", "float", ([2.0], [0.1]), TypeError, r"'milestone\[0\]' must be"),
    ("piecewise_constant_lr", "bool", ([2, True], [0.1, 0.2]), TypeError, r"'milestone\[1\]'"),
    ("piecewise_constant_lr", "decreasing", ([5, 2], [0.1, 0.2]), ValueError, r"non-decreasing"),
    ("piecewise_constant_lr", "int-rate", ([2], [1]), TypeError, r"'learning_rates\[0\]'.*1\.0"),
    ("piecewise_constant_lr", "nan-rate", ([2], [NAN]), ValueError, r"'learning_rates\[0\]'"),
    ("piecewise_constant_lr", "nested", ([[2]], [0.1]), TypeError, r"'milestone\[0\]' must be"),
    ("exponential_decay_lr", "lr-int", (1, 0.9, 6, 2, 1), TypeError, r"'learning_rate'.*1\.0"),
    ("exponential_decay_lr", "lr-nan", (NAN, 0.9, 6, 2, 1), ValueError, r"'learning_rate'"),
    ("exponential_decay_lr", "lr-inf", (INF, 0.9, 6, 2, 1), ValueError, r"'learning_rate'"),
    ("exponential_decay_lr", "rate-zero", (0.1, 0.0, 6, 2, 1), ValueError, r"'decay_rate'"),
    ("exponential_decay_lr", "total-zero", (0.1, 0.9, 0, 2, 1), ValueError, r"'total_step'"),
    ("exponential_decay_lr", "spe-float", (0.1, 0.9, 6, 2.0, 1), TypeError, r"'step_per_epoch'"),
    ("exponential_decay_lr", "epoch-neg", (0.1, 0.9, 6, 2, -1), ValueError, r"'decay_epoch'"),
    (
        "exponential_decay_lr",
        "total-numpy",
        (0.1, 0.9, np.int64(6), 2, 1),
        TypeError,
        r"'total_step' must be a positive int",
    ),
    ("exponential_decay_lr", "stair-int", (0.1, 0.9, 6, 2, 1, 1), TypeError, r"'is_stair'"),
    ("natural_exp_decay_lr", "rate-neg", (0.1, -1.0, 6, 2, 1), ValueError, r"'decay_rate'"),
    ("natural_exp_decay_lr", "total-None", (0.1, 0.9, None, 2, 1), TypeError, r"'total_step'"),
    ("natural_exp_decay_lr", "lr-str", ("0.1", 0.9, 6, 2, 1), TypeError, r"'learning_rate'"),
    ("inverse_decay_lr", "rate-zero", (0.1, 0.0, 6, 2, 1), ValueError, r"'decay_rate'"),
    ("inverse_decay_lr", "epoch-bool", (0.1, 0.5, 6, 2, True), TypeError, r"'decay_epoch'"),
    ("cosine_decay_lr", "min-int", (0, 0.1, 6, 2, 2), TypeError, r"'min_lr' must be.*0\.0"),
    ("cosine_decay_lr", "min-neg", (-0.1, 0.1, 6, 2, 2), ValueError, r"'min_lr'"),
    ("cosine_decay_lr", "equal", (0.1, 0.1, 6, 2, 2), ValueError, r"'max_lr' must be greater"),
    ("cosine_decay_lr", "max-nan", (0.0, NAN, 6, 2, 2), ValueError, r"'max_lr'"),
    ("cosine_decay_lr", "epoch-zero", (0.0, 0.1, 6, 2, 0), ValueError, r"'decay_epoch'"),
    ("polynomial_decay_lr", "end-int", (0.1, 0, 6, 2, 2, 0.5), TypeError, r"'end_learning_rate'"),
    ("polynomial_decay_lr", "power-zero", (0.1, 0.01, 6, 2, 2, 0.0), ValueError, r"'power'"),
    ("polynomial_decay_lr", "power-int", (0.1, 0.01, 6, 2, 2, 1), TypeError, r"'power'"),
    ("polynomial_decay_lr", "lr-neg", (-0.1, 0.01, 6, 2, 2, 0.5), ValueError, r"'learning_rate'"),
    (
        "polynomial_decay_lr",
        "update-int",
        (0.1, 0.01, 6, 2, 2, 0.5, 1),
        TypeError,
        r"'update_decay_epoch' must be a bool",
    ),
    ("warmup_lr", "lr-int", (1, 6, 2, 2), TypeError, r"'learning_rate'.*1\.0"),
    ("warmup_lr", "lr-neg", (-1.0, 6, 2, 2), ValueError, r"'learning_rate'"),
    ("warmup_lr", "warmup-zero", (0.1, 6, 2, 0), ValueError, r"'warmup_epoch'"),
    ("warmup_lr", "spe-bool", (0.1, 6, True, 2), TypeError, r"'step_per_epoch'"),
]
for _fn, _desc, _args, _raises, _match in LR_FUNCTION_CASES:
    case(
        f"{_fn}-{_desc}",
        lambda ctx, fn=_fn, args=_args: getattr(msoptim, fn)(*args),
        _raises,
        rf"^{_fn}: .*{_match}",
    )

# --------------------------------------------------------------------------------- schedules
SCHEDULE_CASES = [
    ("ExponentialDecayLR", "lr-int", (1, 0.9, 4), TypeError, r"'learning_rate'.*1\.0"),
    ("ExponentialDecayLR", "lr-zero", (0.0, 0.9, 4), ValueError, r"'learning_rate'"),
    ("ExponentialDecayLR", "lr-nan", (NAN, 0.9, 4), ValueError, r"'learning_rate'"),
    ("ExponentialDecayLR", "rate-neg", (0.1, -0.9, 4), ValueError, r"'decay_rate'"),
    ("ExponentialDecayLR", "steps-zero", (0.1, 0.9, 0), ValueError, r"'decay_steps'"),
    ("ExponentialDecayLR", "steps-float", (0.1, 0.9, 4.0), TypeError, r"'decay_steps'"),
    ("ExponentialDecayLR", "stair-int", (0.1, 0.9, 4, 1), TypeError, r"'is_stair'"),
    ("NaturalExpDecayLR", "rate-int", (0.1, 1, 4), TypeError, r"'decay_rate'"),
    ("NaturalExpDecayLR", "steps-None", (0.1, 0.9, None), TypeError, r"'decay_steps'"),
    ("NaturalExpDecayLR", "lr-inf", (INF, 0.9, 4), ValueError, r"'learning_rate'"),
    ("InverseDecayLR", "rate-zero", (0.1, 0.0, 4), ValueError, r"'decay_rate'"),
    ("InverseDecayLR", "steps-neg", (0.1, 0.5, -4), ValueError, r"'decay_steps'"),
    ("InverseDecayLR", "lr-numpy", (np.float32(0.1), 0.5, 4), TypeError, r"'learning_rate'"),
    ("CosineDecayLR", "min-int", (0, 0.1, 4), TypeError, r"'min_lr'.*0\.0"),
    ("CosineDecayLR", "min-neg", (-0.01, 0.1, 4), ValueError, r"'min_lr'"),
    ("CosineDecayLR", "equal", (0.1, 0.1, 4), ValueError, r"'max_lr' must be greater"),
    ("CosineDecayLR", "max-zero", (0.0, 0.0, 4), ValueError, r"'max_lr'"),
    ("CosineDecayLR", "steps-bool", (0.0, 0.1, True), TypeError, r"'decay_steps'"),
    ("PolynomialDecayLR", "power-zero", (0.1, 0.01, 4, 0.0), ValueError, r"'power'"),
    ("PolynomialDecayLR", "end-neg", (0.1, -0.01, 4, 0.5), ValueError, r"'end_learning_rate'"),
    ("PolynomialDecayLR", "update-int", (0.1, 0.01, 4, 0.5, 1), TypeError, r"'update_decay_st"),
    ("PolynomialDecayLR", "lr-inf", (INF, 0.01, 4, 0.5), ValueError, r"'learning_rate'"),
    ("WarmUpLR", "lr-int", (1, 4), TypeError, r"'learning_rate'.*1\.0"),
    ("WarmUpLR", "lr-neg", (-0.1, 4), ValueError, r"'learning_rate'"),
    ("WarmUpLR", "steps-zero", (0.1, 0), ValueError, r"'warmup_steps'"),
    ("WarmUpLR", "steps-None", (0.1, None), TypeError, r"'warmup_steps'"),
]
for _cls, _desc, _args, _raises, _match in SCHEDULE_CASES:
    case(
        f"{_cls}-{_desc}",
        lambda ctx, cls=_cls, args=_args: getattr(msoptim, cls)(*args),
        _raises,
        rf"^{_cls}: .*{_match}",
    )

STEP_CASES = [
    ("float", 1.5, TypeError, r"'global_step' must be an int or an integer tensor"),
    ("bool", True, TypeError, r"'global_step' must be an int"),
    ("str", "3", TypeError, r"'global_step' must be an int"),
    ("None", None, TypeError, r"'global_step' must be an int"),
    ("float-tensor", torch.tensor(1.0), TypeError, r"Its dtype is torch\.float32"),
    ("bool-tensor", torch.tensor(True), TypeError, r"Its dtype is torch\.bool"),
    ("complex-tensor", torch.tensor(1j), TypeError, r"Its dtype is torch\.complex64"),
    ("vector", torch.tensor([1, 2]), ValueError, r"'global_step' must be a single step"),
    ("past-int64", 2**70, ValueError, r"'global_step' must be an int that fits in int64"),
]
_SCHEDULES = {
    "CosineDecayLR": (0.01, 0.1, 10),
    "ExponentialDecayLR": (0.1, 0.9, 4),
    "WarmUpLR": (0.1, 4),
}
for _cls, _args in _SCHEDULES.items():
    for _desc, _step, _raises, _match in STEP_CASES:
        case(
            f"{_cls}-call-{_desc}",
            lambda ctx, cls=_cls, args=_args, step=_step: getattr(msoptim, cls)(*args)(step),
            _raises,
            rf"^{_cls}: .*{_match}",
        )


def _set_frozen(ctx: Ctx) -> None:
    msoptim.CosineDecayLR(0.01, 0.1, 10).max_lr = 0.2


case(
    "CosineDecayLR-set-frozen",
    _set_frozen,
    AttributeError,
    r"CosineDecayLR: 'max_lr' is fixed at construction",
)

# ------------------------------------------------------------------ LearningRateScheduler
case(
    "LearningRateScheduler-None",
    lambda ctx: msoptim.LearningRateScheduler(None),
    TypeError,
    r"'learning_rate_function' must be callable",
)
case(
    "LearningRateScheduler-float",
    lambda ctx: msoptim.LearningRateScheduler(0.1),
    TypeError,
    r"'learning_rate_function' must be callable",
)


def _scheduler(fn):
    return msoptim.LearningRateScheduler(fn)


SCHEDULER_CASES = [
    (
        "returns-nan",
        lambda lr, step: NAN,
        1,
        ValueError,
        r"the learning-rate function returned nan at step 1",
    ),
    ("returns-inf", lambda lr, step: INF, 2, ValueError, r"returned inf at step 2"),
    ("returns-str", lambda lr, step: "0.1", 1, TypeError, r"must return a float.*'0\.1'"),
    ("returns-None", lambda lr, step: None, 1, TypeError, r"must return a float.*None"),
    ("returns-bool", lambda lr, step: True, 1, TypeError, r"must return a float.*True"),
    (
        "returns-vector",
        lambda lr, step: torch.ones(3),
        1,
        TypeError,
        r"must return a float, but returned tensor",
    ),
    ("step-str", lambda lr, step: lr, "1", TypeError, r"'step' must be an int"),
    ("step-float", lambda lr, step: lr, 1.0, TypeError, r"'step' must be an int"),
    ("step-bool", lambda lr, step: lr, True, TypeError, r"'step' must be an int"),
]
for _desc, _fn, _step, _raises, _match in SCHEDULER_CASES:
    _on(
        _watch_lr,
        f"LearningRateScheduler-{_desc}",
        lambda ctx, fn=_fn, step=_step: _scheduler(fn).step_end(ctx.opt, step),
        _raises,
        rf"^LearningRateScheduler: .*{_match}",
    )
for _setup, _desc, _match in [
    (_stepped_groups, "group-lr", r"per-group"),
    (_stepped_table, "table-lr", r"dynamic \(table or schedule\)"),
]:
    _on(
        _setup,
        f"LearningRateScheduler-{_desc}",
        lambda ctx: _scheduler(lambda lr, step: lr * 0.5).step_end(ctx.opt, 1),
        UnsupportedLrKindError,
        rf"LearningRateScheduler: the optimizer's learning rate is {_match}",
    )
case(
    "LearningRateScheduler-not-an-optimizer",
    lambda ctx: _scheduler(lambda lr, step: lr).step_end(torch.optim.SGD([ctx.p("fc.bias")]), 1),
    TypeError,
    r"expected an msoptim optimizer with a static learning rate, but got SGD",
)

# -------------------------------------------------------------------------- ReduceLROnPlateau


def _plateau_cls():
    return msoptim.ReduceLROnPlateau


PLATEAU_ARGUMENT_CASES = [
    ("monitor-None", {"monitor": None}, TypeError, r"'monitor' must be a str"),
    ("factor-int", {"factor": 1}, TypeError, r"'factor' must be a float"),
    ("factor-bool", {"factor": True}, TypeError, r"'factor' must be a float"),
    ("factor-one", {"factor": 1.0}, ValueError, r"'factor' must be in the range \(0\.0, 1\.0\)"),
    ("factor-nan", {"factor": NAN}, ValueError, r"'factor' must be in the range"),
    ("patience-negative", {"patience": -1}, ValueError, r"'patience' must be a non-negative"),
    ("patience-float", {"patience": 2.0}, TypeError, r"'patience' must be a non-negative int"),
    ("verbose-int", {"verbose": 1}, TypeError, r"'verbose' must be a bool"),
    ("mode-unknown", {"mode": "up"}, ValueError, r"'mode' must be 'auto', 'min' or 'max'"),
    ("mode-int", {"mode": 1}, TypeError, r"'mode' must be a str"),
    ("min_delta-str", {"min_delta": "0"}, TypeError, r"'min_delta' must be a float or int"),
    ("min_delta-nan", {"min_delta": NAN}, ValueError, r"'min_delta' must be a number, not NaN"),
    ("cooldown-negative", {"cooldown": -1}, ValueError, r"'cooldown' must be a non-negative"),
    ("min_lr-None", {"min_lr": None}, TypeError, r"'min_lr' must be a float or int"),
    ("min_lr-nan", {"min_lr": NAN}, ValueError, r"'min_lr' must be a number, not NaN"),
]
for _desc, _kwargs, _raises, _match in PLATEAU_ARGUMENT_CASES:
    case(
        f"ReduceLROnPlateau-{_desc}",
        lambda ctx, kwargs=_kwargs: _plateau_cls()(**kwargs),
        _raises,
        rf"^ReduceLROnPlateau: {_match}",
    )
PLATEAU_CALL_CASES = [
    (_watch_lr, "metric-str", "x", TypeError, r"must be a number"),
    (_watch_lr, "metric-vector", torch.ones(3), ValueError, r"must be a scalar.*shape \(3,\)"),
    (_watch_lr, "metric-array", np.ones(2), ValueError, r"must be a scalar.*shape \(2,\)"),
    (_stepped_table, "table-lr", 1.0, ValueError, r"learning rate is dynamic"),
    (_stepped_groups, "group-lr", 1.0, UnsupportedLrKindError, r"learning rate is per-group"),
]
for _setup, _desc, _metric, _raises, _match in PLATEAU_CALL_CASES:
    _on(
        _setup,
        f"ReduceLROnPlateau-epoch_end-{_desc}",
        lambda ctx, metric=_metric: _plateau_cls()().epoch_end(ctx.opt, metric),
        _raises,
        rf"^ReduceLROnPlateau: .*{_match}",
    )
case(
    "ReduceLROnPlateau-load_state_dict-partial",
    lambda ctx: _plateau_cls()().load_state_dict({"wait": 3}),
    ValueError,
    r"ReduceLROnPlateau\.load_state_dict: expected the dict from state_dict\(\)",
)

# ------------------------------------------------------------------------ checkpoint import


def _checkpoint_loader():
    return msoptim.load_mindspore_checkpoint


def _checkpoint_bytes(tmp_dir: str, crc: bool = False) -> bytes:
    path = os.path.join(tmp_dir, "good.ckpt")
    msoptim.save_mindspore_checkpoint(
        {
            "fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
            "moments.fc.weight": np.ones((2, 3), np.float32),
            "global_step": np.array([3], np.int32),
        },
        path,
        crc_check=crc,
    )
    with open(path, "rb") as file:
        return file.read()


def _bad_file(make_bytes):
    def act(ctx: Ctx) -> Any:
        tmp_dir = ctx.extra["tmp_path"]
        path = os.path.join(tmp_dir, "bad.ckpt")
        with open(path, "wb") as file:
            file.write(make_bytes(tmp_dir))
        return _checkpoint_loader()(path)

    return act


def _flip_in_crc_file(tmp_dir: str) -> bytes:
    data = bytearray(_checkpoint_bytes(tmp_dir, crc=True))
    data[len(data) // 3] ^= 0xFF
    return bytes(data)


CHECKPOINT_CASES = [
    ("truncated-1-byte", lambda d: _checkpoint_bytes(d)[:1], r"not a readable MindSpore"),
    ("truncated-half", lambda d: _checkpoint_bytes(d)[:40], r"not a readable MindSpore"),
    ("truncated-last-byte", lambda d: _checkpoint_bytes(d)[:-1], r"not a readable MindSpore"),
    ("garbage", lambda d: b"\x00\xff" * 64, r"not a readable MindSpore checkpoint"),
    ("text", lambda d: b"this is not a checkpoint\n", r"not a readable MindSpore checkpoint"),
    ("pickle", lambda d: __import__("pickle").dumps({"a": 1}), r"not a readable MindSpore"),
    ("empty", lambda d: b"", r"is empty"),
    ("crc-mismatch", _flip_in_crc_file, r"CRC-32 .* does not match"),
]
for _desc, _bytes, _match in CHECKPOINT_CASES:
    case(
        f"load_mindspore_checkpoint-{_desc}",
        _bad_file(_bytes),
        ValueError,
        rf"^load_mindspore_checkpoint: .*{_match}",
    )
case(
    "load_mindspore_checkpoint-int-path",
    lambda ctx: _checkpoint_loader()(3),
    TypeError,
    r"'path' must be a str or os\.PathLike",
)
case(
    "load_mindspore_checkpoint-None-path",
    lambda ctx: _checkpoint_loader()(None),
    TypeError,
    r"'path' must be a str or os\.PathLike",
)
case(
    "load_mindspore_checkpoint-missing-file",
    lambda ctx: _checkpoint_loader()(os.path.join(ctx.extra["tmp_path"], "missing.ckpt")),
    FileNotFoundError,
    r"missing\.ckpt",
)
case(
    "load_mindspore_checkpoint-directory",
    lambda ctx: _checkpoint_loader()(ctx.extra["tmp_path"]),
    IsADirectoryError,
    r"Is a directory",
)

# ------------------------------------------------------------------------------------ tests

ENTRY_POINTS = (
    "constructor",
    "LARS",
    "call",
    "step",
    "get_lr",
    "add_param_group",
    "get_lr_parameter",
    "load_state_dict",
    "load_ms_state_dict",
    "assign",
    "trainable_params",
    "lr function",
    "schedule",
    "LearningRateScheduler",
    "ReduceLROnPlateau",
    "load_mindspore_checkpoint",
)


def entry_point(case_id: str) -> str:
    """The public entry point a row exercises (for the per-entry-point count)."""
    head = case_id.split("-")[0]
    if head in OPTIMIZERS:
        return "constructor"
    if head in ("LARS", "LearningRateScheduler", "ReduceLROnPlateau", "trainable_params"):
        return head
    if head in ("call", "step", "get_lr", "add_param_group", "get_lr_parameter", "assign"):
        return head
    if head in ("load_state_dict", "load_ms_state_dict", "load_mindspore_checkpoint"):
        return head
    if head in msoptim.lr_functions.__all__:
        return "lr function"
    return "schedule"


@pytest.mark.parametrize("row", CASES, ids=[row.id for row in CASES])
def test_bad_input_raises_names_the_culprit_and_changes_nothing(row: Case, tmp_path) -> None:
    ctx = Ctx()
    ctx.extra["tmp_path"] = str(tmp_path)
    if row.setup is not None:
        row.setup(ctx)
    before = ctx.snapshot()
    with pytest.raises(row.raises, match=row.match):
        row.act(ctx)
    assert_same(before, ctx.snapshot())


def test_the_matrix_is_large_and_covers_every_entry_point() -> None:
    ids = [row.id for row in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 150
    counts = {name: 0 for name in ENTRY_POINTS}
    for row in CASES:
        counts[entry_point(row.id)] += 1
    assert all(counts.values()), counts
    constructors = {row.id.split("-")[0] for row in CASES if entry_point(row.id) == "constructor"}
    assert constructors == set(OPTIMIZERS)


# ----------------------------------------------------------- accepted on purpose, decisions


def test_generators_are_read_exactly_once() -> None:
    """A generator (params, group params, order_params, an lr table) is consumed once and works."""

    class Once:
        def __init__(self, items):
            self.items, self.reads = list(items), 0

        def __iter__(self):
            self.reads += 1
            assert self.reads == 1, "iterated twice"
            return iter(self.items)

    params = named_params()
    top, lr = Once(params), Once([0.1, 0.2])
    opt = msoptim.Momentum(top, lr, 0.9)
    assert opt.parameter_names == tuple(name for name, _ in params)
    assert (top.reads, lr.reads) == (1, 1)
    params = named_params()
    first, order, group_lr = Once(params[:2]), Once(reversed(params)), Once([0.3, 0.4])
    opt = msoptim.Momentum(
        [{"params": first, "lr": group_lr}, {"params": params[2:]}, {"order_params": order}],
        [0.1, 0.2],
        0.9,
    )
    assert opt.parameter_names == tuple(name for name, _ in reversed(params))
    assert (first.reads, order.reads, group_lr.reads) == (1, 1, 1)
    opt(grads_for(list(reversed(params))))
    assert int(opt.global_step) == 1


def test_none_gradients_skip_the_parameter_for_that_step() -> None:
    """torch's convention, kept: a parameter without a gradient is not updated, not decayed, and
    its state does not move; the other parameters step normally and global_step advances.

    MindSpore never sees a missing gradient (its autodiff gives an unused parameter zeros, which
    still decay it and move its moments); to reproduce that exactly, pass zeros.
    """
    for call_style in ("step", "call"):
        params = named_params()
        opt = msoptim.Adam(params, learning_rate=0.01, weight_decay=0.1)
        skipped = params[3][1]
        state_before = copy.deepcopy(opt.state[skipped])
        value_before = skipped.detach().clone()
        grads = list(grads_for(params))
        grads[3] = None
        if call_style == "step":
            for (_, p), grad in zip(params, grads):
                p.grad = grad
            opt.step()
        else:
            opt(tuple(grads))
        assert torch.equal(skipped, value_before)
        assert_same(state_before, opt.state[skipped])
        assert not torch.equal(params[0][1], named_params()[0][1])
        assert int(opt.global_step) == 1
    opt((None, None, None, None))
    assert int(opt.global_step) == 2

    # Zeros instead of None: MindSpore's behaviour (weight decay and the moments act).
    params = named_params()
    opt = msoptim.Adam(params, learning_rate=0.01, weight_decay=0.1)
    grads = list(grads_for(params))
    grads[3] = torch.zeros(3)
    opt(tuple(grads))
    assert not torch.equal(params[3][1], named_params()[3][1])


@pytest.mark.parametrize(
    ("desc", "lr", "group_lr", "error"),
    [
        ("nested list", [[0.1], [0.2]], None, ValueError),
        ("empty list", [], None, RuntimeError),
        ("empty tuple", (), None, RuntimeError),
        ("empty 1-D tensor", torch.zeros(0), None, RuntimeError),
        ("empty group list", 0.1, [], RuntimeError),
    ],
)
def test_tables_mindspore_accepts_but_cannot_step_warn_then_the_first_step_raises(
    desc, lr, group_lr, error
) -> None:
    """MindSpore accepts these at construction and fails at step 1 (``ValueError`` "not
    callable"; ``RuntimeError`` from its ``Gather``). msoptim: a warning now, that error at the
    first step and from ``get_lr()``, before anything changes."""
    params = named_params()
    spec = params if group_lr is None else [{"params": params, "lr": group_lr}]
    with pytest.warns(UserWarning, match="first step raises"):
        opt = msoptim.Momentum(spec, lr, 0.9)
    before = [p.detach().clone() for _, p in params]
    with pytest.raises(error, match="Nothing was updated"):
        opt(grads_for(params))
    with pytest.raises(error):
        opt.get_lr()
    assert all(torch.equal(p, b) for (_, p), b in zip(params, before))
    assert int(opt.global_step) == 0


def test_the_last_of_two_order_params_dicts_wins_with_a_warning() -> None:
    """MindSpore accepts two 'order_params' dicts and silently takes the last; msoptim warns."""
    params = named_params()
    groups = [{"params": params}, {"order_params": params}, {"order_params": params[::-1]}]
    with pytest.warns(UserWarning, match=r"param_groups\[2\] is a second 'order_params' dict"):
        opt = msoptim.Momentum(groups, 0.1, 0.9)
    assert opt.parameter_names == tuple(name for name, _ in params[::-1])


def test_the_entries_of_an_earlier_order_params_dict_are_never_read() -> None:
    """MindSpore reads only the last 'order_params' dict's entries: an earlier one may hold
    anything iterable (a name, a string), as long as its keys and value type are right."""
    params = named_params()
    for stale in (["fc.unknown", *params[1:]], "not a list"):
        groups = [{"params": params}, {"order_params": stale}, {"order_params": params[::-1]}]
        with pytest.warns(UserWarning, match=r"param_groups\[2\] is a second 'order_params'"):
            opt = msoptim.Momentum(groups, 0.1, 0.9)
        assert opt.parameter_names == tuple(name for name, _ in params[::-1])
    with pytest.raises(TypeError, match=r"param_groups\[1\]\['order_params'\] must be a list"):
        msoptim.Momentum(
            [{"params": params}, {"order_params": 3}, {"order_params": params}], 0.1, 0.9
        )


def test_a_group_mistake_comes_before_a_bad_top_level_weight_decay() -> None:
    """MindSpore checks the optimizer's own weight_decay after the groups (``_init_opt_attrs``)."""
    params = named_params()
    with pytest.raises(KeyError, match=r"param_groups\[0\] has unknown key 'foo'"):
        msoptim.Momentum([{"params": params, "foo": 1}], 0.1, 0.9, weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"'weight_decay' must be a finite float >= 0"):
        msoptim.Momentum([{"params": params}], 0.1, 0.9, weight_decay=-1.0)


def test_disjoint_views_of_one_buffer_are_accepted() -> None:
    """Contiguous-memory parameters (views of one flat buffer that do not overlap) are fine."""
    flat = torch.zeros(10)
    first, second = nn.Parameter(flat[:4]), nn.Parameter(flat[4:].view(2, 3))
    opt = msoptim.Momentum([("a", first), ("b", second)], 0.1, 0.9)
    opt((torch.ones(4), torch.ones(2, 3)))
    assert torch.allclose(flat, torch.full((10,), -0.1))


@pytest.mark.parametrize(
    ("desc", "make"),
    [
        ("int static lr (MindSpore float()s it)", lambda p: msoptim.Momentum(p, 1, 0.9)),
        ("bool static lr", lambda p: msoptim.Momentum(p, True, 0.9)),
        ("int loss_scale", lambda p: msoptim.Momentum(p, 0.1, 0.9, loss_scale=2)),
        ("bool loss_scale True", lambda p: msoptim.Momentum(p, 0.1, 0.9, loss_scale=True)),
        ("int weight_decay", lambda p: msoptim.Momentum(p, 0.1, 0.9, weight_decay=1)),
        ("numpy float64 momentum", lambda p: msoptim.Momentum(p, 0.1, np.float64(0.9))),
        ("negative values in a table", lambda p: msoptim.Momentum(p, [0.1, -0.1], 0.9)),
        ("int tensor table", lambda p: msoptim.Momentum(p, torch.tensor([1, 0]), 0.9)),
        ("one-entry table (warns)", lambda p: msoptim.Momentum(p, [0.1], 0.9)),
        ("SGD int momentum", lambda p: msoptim.SGD(p, momentum=1)),
        (
            "SGD bool momentum and dampening",
            lambda p: msoptim.SGD(p, momentum=True, dampening=False),
        ),
        ("negative 0-d tensor lr", lambda p: msoptim.Momentum(p, torch.tensor(-0.1), 0.9)),
        (
            "negative 0-d tensor group lr",
            lambda p: msoptim.Momentum([{"params": p, "lr": torch.tensor(-0.1)}], 0.1, 0.9),
        ),
        ("ASGD t0=inf", lambda p: msoptim.ASGD(p, t0=INF)),
        ("AdaFactor beta1=None", lambda p: msoptim.AdaFactor(p, beta1=None)),
        (
            "empty order_params",
            lambda p: msoptim.Momentum([{"params": p}, {"order_params": []}], 0.1, 0.9),
        ),
    ],
)
def test_values_mindspore_accepts_are_accepted(desc, make) -> None:
    params = named_params()
    expected = (
        pytest.warns(UserWarning, match="single value")
        if "warns" in desc
        else contextlib.nullcontext()
    )
    with expected:
        opt = make(params)
    opt(grads_for(params))
    assert int(opt.global_step) == 1


def test_every_entry_point_count_is_reported(capsys) -> None:
    """Print the number of bad inputs per entry point (``pytest -s`` shows it)."""
    counts: dict[str, int] = {}
    for row in CASES:
        counts[entry_point(row.id)] = counts.get(entry_point(row.id), 0) + 1
    print({**counts, "total": len(CASES)})
    assert sum(counts.values()) == len(CASES)


def test_a_checkpoint_missing_a_hyper_parameter_key_loads_with_this_optimizers_value() -> None:
    """Backward compatibility: a group key added since the checkpoint was written keeps ours."""
    params = named_params()
    opt = msoptim.Momentum(params, 0.1, 0.9, use_nesterov=True)
    opt(grads_for(params))
    state = opt.state_dict()
    for group in state["param_groups"]:
        del group["use_nesterov"], group["foreach"]
    fresh_params = named_params()
    fresh = msoptim.Momentum(fresh_params, 0.1, 0.9, use_nesterov=True)
    fresh.load_state_dict(state)
    assert fresh.param_groups[0]["use_nesterov"] is True
    assert "foreach" in fresh.param_groups[0]
    fresh(grads_for(fresh_params))
    assert int(fresh.global_step) == 2
