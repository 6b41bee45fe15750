"""The optimizer test database: one record per optimizer (torch ``optim_db`` in a tenth of the size).

Generic tests (``test_optimizers_generic.py``) iterate over ``OPTIMIZER_CASES``; adding an optimizer
means adding one record here. A record lists constructor configs worth exercising, bad inputs with
the exception type and a message regex, and capabilities that decide which generic tests apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msoptim


@dataclass(frozen=True)
class Config:
    """Keyword arguments for the constructor (besides ``params``), and a short id."""

    desc: str
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class ErrorInput:
    """Constructor kwargs that must raise ``raises`` with a message matching ``match``."""

    desc: str
    kwargs: dict[str, Any]
    raises: type[Exception]
    match: str


@dataclass(frozen=True)
class OptimizerCase:
    """Everything the generic tests need to know about one optimizer."""

    name: str
    configs: tuple[Config, ...]
    error_inputs: tuple[ErrorInput, ...] = ()
    #: "dynamic_lr": accepts tables/schedules; "groups": accepts per-group lrs;
    #: "foreach": has a foreach kernel to compare with the reference.
    supports: frozenset[str] = field(
        default_factory=lambda: frozenset({"dynamic_lr", "groups", "foreach"})
    )

    @property
    def cls(self) -> type:
        return getattr(msoptim, self.name)


def _configs(*items: tuple[str, dict[str, Any]]) -> tuple[Config, ...]:
    return tuple(Config(desc, kwargs) for desc, kwargs in items)


OPTIMIZER_CASES: tuple[OptimizerCase, ...] = (
    OptimizerCase(
        "Momentum",
        _configs(
            ("plain", {"learning_rate": 0.1, "momentum": 0.9}),
            (
                "nesterov-wd-ls",
                {
                    "learning_rate": 0.1,
                    "momentum": 0.9,
                    "use_nesterov": True,
                    "weight_decay": 0.01,
                    "loss_scale": 8.0,
                },
            ),
        ),
        (
            ErrorInput(
                "int momentum",
                {"learning_rate": 0.1, "momentum": 1},
                TypeError,
                r"'momentum' must be",
            ),
            ErrorInput(
                "negative momentum",
                {"learning_rate": 0.1, "momentum": -0.1},
                ValueError,
                r"'momentum'",
            ),
            ErrorInput(
                "nesterov not bool",
                {"learning_rate": 0.1, "momentum": 0.9, "use_nesterov": 1},
                TypeError,
                r"'use_nesterov'",
            ),
        ),
    ),
    OptimizerCase(
        "SGD",
        _configs(
            ("plain", {"learning_rate": 0.1}),
            ("momentum-dampening", {"learning_rate": 0.1, "momentum": 0.9, "dampening": 0.1}),
            (
                "nesterov-wd-ls",
                {
                    "learning_rate": 0.1,
                    "momentum": 0.9,
                    "nesterov": True,
                    "weight_decay": 0.01,
                    "loss_scale": 4.0,
                },
            ),
        ),
        (
            ErrorInput("nesterov without momentum", {"nesterov": True}, ValueError, r"nesterov"),
            ErrorInput(
                "negative dampening",
                {"momentum": 0.9, "dampening": -1.0},
                ValueError,
                r"'dampening'",
            ),
            ErrorInput(
                "infinite momentum",
                {"momentum": float("inf")},
                ValueError,
                r"'momentum' must be a finite float",
            ),
        ),
    ),
    OptimizerCase(
        "Adam",
        _configs(
            ("plain", {"learning_rate": 0.01}),
            (
                "nesterov-wd-ls",
                {
                    "learning_rate": 0.01,
                    "use_nesterov": True,
                    "weight_decay": 0.01,
                    "loss_scale": 4.0,
                },
            ),
            ("amsgrad", {"learning_rate": 0.01, "use_amsgrad": True}),
        ),
        (
            ErrorInput("beta1 = 1", {"beta1": 1.0}, ValueError, r"'beta1'"),
            ErrorInput("int eps", {"eps": 1}, TypeError, r"'eps'"),
            ErrorInput("unknown kwarg", {"use_foo": True}, KeyError, r"use_foo"),
        ),
    ),
    OptimizerCase(
        "AdamWeightDecay",
        _configs(
            ("plain", {"learning_rate": 0.01}),
            ("wd", {"learning_rate": 0.01, "weight_decay": 0.05}),
        ),
        (ErrorInput("beta2 = 0", {"beta2": 0.0}, ValueError, r"'beta2'"),),
    ),
    OptimizerCase(
        "AdamOffload",
        _configs(
            ("plain", {"learning_rate": 0.01}),
        ),
    ),
    OptimizerCase(
        "LazyAdam",
        _configs(
            ("plain", {"learning_rate": 0.01}),
        ),
        (ErrorInput("int weight decay", {"weight_decay": 1}, TypeError, r"weight_d"),),
    ),
    OptimizerCase(
        "AdaMax",
        _configs(
            ("plain", {"learning_rate": 0.01}),
            ("wd-ls", {"learning_rate": 0.01, "weight_decay": 0.01, "loss_scale": 2.0}),
        ),
        (ErrorInput("eps = 0", {"eps": 0.0}, ValueError, r"'eps'"),),
    ),
    OptimizerCase(
        "RMSProp",
        _configs(
            ("plain", {"learning_rate": 0.01}),
            ("centered-momentum", {"learning_rate": 0.01, "centered": True, "momentum": 0.9}),
        ),
        (ErrorInput("int decay", {"learning_rate": 0.01, "decay": 1}, TypeError, r"'decay'"),),
    ),
    OptimizerCase(
        "Adagrad",
        _configs(
            ("plain", {"learning_rate": 0.1}),
            ("frozen slots", {"learning_rate": 0.1, "update_slots": False}),
        ),
        (ErrorInput("int accum", {"accum": 1}, TypeError, r"'accum'"),),
    ),
    OptimizerCase(
        "ProximalAdagrad",
        _configs(
            ("plain", {"learning_rate": 0.1}),
            ("l1-l2", {"learning_rate": 0.1, "l1": 0.01, "l2": 0.01}),
        ),
        (ErrorInput("negative l1", {"l1": -0.1}, ValueError, r"'l1'"),),
    ),
    OptimizerCase(
        "Adadelta",
        _configs(
            ("plain", {"learning_rate": 1.0}),
        ),
        (ErrorInput("rho > 1", {"rho": 1.5}, ValueError, r"'rho'"),),
    ),
    OptimizerCase(
        "FTRL",
        _configs(
            ("plain", {"learning_rate": 0.1}),
            ("l1-l2", {"learning_rate": 0.1, "l1": 0.01, "l2": 0.01}),
        ),
        (ErrorInput("int lr", {"learning_rate": 1}, TypeError, r"'learning_rate'"),),
        supports=frozenset({"foreach"}),
    ),
    OptimizerCase(
        "ASGD",
        _configs(
            ("plain", {"learning_rate": 0.1}),
        ),
        (
            ErrorInput("int t0", {"t0": 1000000}, TypeError, r"'t0'"),
            ErrorInput("NaN lambd", {"lambd": float("nan")}, ValueError, r"'lambd'"),
        ),
    ),
    OptimizerCase(
        "Rprop",
        _configs(
            ("plain", {"learning_rate": 0.01}),
        ),
        (
            ErrorInput("etas as list", {"etas": [0.5, 1.2]}, TypeError, r"'etas'"),
            ErrorInput(
                "NaN step size",
                {"step_sizes": (float("nan"), 50.0)},
                ValueError,
                r"'step_sizes\[0\] \(min_step_sizes\)'",
            ),
        ),
    ),
    OptimizerCase(
        "AdaFactor",
        _configs(
            ("relative-step", {}),
            ("fixed-lr", {"learning_rate": 0.01, "relative_step": False, "scale_parameter": False}),
        ),
        (
            ErrorInput(
                "lr with relative_step", {"learning_rate": 0.01}, ValueError, r"relative_step"
            ),
        ),
        supports=frozenset({"dynamic_lr", "foreach"}),  # one lr for every group, as in MindSpore
    ),
    OptimizerCase(
        "Lamb",
        _configs(
            ("plain", {"learning_rate": 0.01}),
            ("wd", {"learning_rate": 0.01, "weight_decay": 0.01}),
        ),
        (ErrorInput("beta1 = 0", {"learning_rate": 0.01, "beta1": 0.0}, ValueError, r"'beta1'"),),
    ),
)

CASES_BY_NAME = {case.name: case for case in OPTIMIZER_CASES}
