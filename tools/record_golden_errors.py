"""Record randomized ``arg_error`` / ``group_error`` golden cases from real MindSpore 2.10.

Each case is one optimizer construction in MindSpore (PyNative, CPU): an otherwise valid call with
one argument corrupted (``arg_error``), or ``nn.Momentum(groups, learning_rate=0.1, momentum=0.9)``
with a randomly broken group list (``group_error``). Whatever MindSpore does at construction is
recorded in the schema of ``tests/golden/README.md``: the exception as ``error`` (type, first line,
full message without C++ call stacks), or ``"error": null`` when MindSpore accepted the input
(group cases then also carry ``result.param_order``, the order of ``opt._parameters``).

Run with the MindSpore environment (no torch needed)::

    /tmp/msvenv/bin/python tools/record_golden_errors.py --seed 1 --count 150 --out /tmp/fuzz_err/s1

and replay the directory against msoptim::

    PYTHONPATH=src .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_golden.py \\
        --golden-dir /tmp/fuzz_err/s1 -k "arg_error or group_error"

``--arg-mistakes N`` corrupts N arguments of each ``arg_error`` call (the replay then also checks
that msoptim names the argument MindSpore names). ``--count`` is per family. Ids are ``fuzz-err-<seed>-<n>``; the same seed gives the same cases.
The replay takes the six standard parameters from an optimizer-family case
(``golden_replay.standard_param_specs``), so the sample's ``optimizer_error.json`` is copied next to
the output; the six parameters built here come from that same file.

``--rerecord tests/golden`` instead re-runs the sample's own ``arg_error`` / ``group_error`` cases
through MindSpore and prints every case whose recorded error type or message differs (a check that
this recorder builds the calls exactly as the sample's recorder did).
"""

from __future__ import annotations

import argparse
import builtins
import json
import math
import os
import random
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ logging: errors only

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO / "tests" / "golden"
PARAM_SOURCE = "optimizer_error.json"
NOT_A_PARAMETER = "NOT_A_PARAMETER"
GROUP_NOTE = (
    "names in 'params'/'order_params' refer to Parameters built from the optimizer param specs; "
    "'NOT_A_PARAMETER' is a plain Tensor(np.ones(3)); lr dicts are lr specs"
)

# -------------------------------------------------------------------------------------------------
# The optimizers and their valid arguments (the defaults of MindSpore 2.10's signatures)

COMMON_LR = {"learning_rate": 0.01}
ADAM_LIKE = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "use_locking": False, "use_nesterov": False}
SCALED = {"weight_decay": 0.0, "loss_scale": 1.0}

# name -> (arguments always passed, arguments that may be corrupted, with their valid values)
OPTIMIZERS: dict[str, tuple[dict, dict]] = {
    "Momentum": (
        {"learning_rate": 0.1, "momentum": 0.9},
        {**SCALED, "use_nesterov": False},
    ),
    "SGD": (
        {"learning_rate": 0.1},
        {"momentum": 0.0, "dampening": 0.0, "nesterov": False, **SCALED},
    ),
    "Adam": (
        COMMON_LR,
        {**ADAM_LIKE, **SCALED, "use_amsgrad": False, "use_lazy": False, "use_offload": False},
    ),
    "AdamWeightDecay": (
        COMMON_LR,
        {"beta1": 0.9, "beta2": 0.999, "eps": 1e-6, "weight_decay": 0.0},
    ),
    "LazyAdam": (COMMON_LR, {**ADAM_LIKE, **SCALED}),
    "AdamOffload": (COMMON_LR, {**ADAM_LIKE, **SCALED}),
    "FTRL": (
        COMMON_LR,
        {
            "initial_accum": 0.1,
            "lr_power": -0.5,
            "l1": 0.0,
            "l2": 0.0,
            "use_locking": False,
            **SCALED,
        },
    ),
    "RMSProp": (
        COMMON_LR,
        {"decay": 0.9, "momentum": 0.0, "epsilon": 1e-10, "use_locking": False, "centered": False}
        | SCALED,
    ),
    "ProximalAdagrad": (
        COMMON_LR,
        {"accum": 0.1, "l1": 0.0, "l2": 0.0, "use_locking": False, **SCALED},
    ),
    "Adagrad": (COMMON_LR, {"accum": 0.1, "update_slots": True, **SCALED}),
    "Adadelta": (COMMON_LR, {"rho": 0.9, "epsilon": 1e-6, **SCALED}),
    "AdaMax": (COMMON_LR, {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, **SCALED}),
    "ASGD": (COMMON_LR, {"lambd": 1e-4, "alpha": 0.75, "t0": 1e6, "weight_decay": 0.0}),
    "Rprop": (
        COMMON_LR,
        {"etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0), "weight_decay": 0.0},
    ),
    "AdaFactor": (
        {},
        {
            "eps": (1e-30, 1e-3),
            "clip_threshold": 1.0,
            "decay_rate": 0.8,
            "beta1": 0.9,
            "scale_parameter": True,
            "relative_step": True,
            "warmup_init": False,
            "compression": False,
            **SCALED,
        },
    ),
    "Lamb": (COMMON_LR, {"beta1": 0.9, "beta2": 0.999, "eps": 1e-6, "weight_decay": 0.0}),
}
# AdaFactor's fixed-lr mode: an explicit learning_rate requires relative_step=False.
ADAFACTOR_FIXED_LR = {"learning_rate": 0.01, "relative_step": False}

NAN, INF = float("nan"), float("inf")
SCHEDULE = {
    "kind": "schedule",
    "class": "CosineDecayLR",
    "kwargs": {"min_lr": 0.001, "max_lr": 0.1, "decay_steps": 4},
}
WEIRD_KEYS = ("use_foo", "weight_deacy", "lr", "learningrate", "momentum_", "eps_")

# -------------------------------------------------------------------------------------------------
# Corruptions of one argument (values in JSON form: tuples are marked, lr specs are dicts)


def tensor_scalar(value: float) -> dict:
    return {"kind": "tensor_scalar", "value": value}


def tensor_list(values: list) -> dict:
    return {"kind": "tensor_list", "values": values}


def float_corruptions(valid: float) -> list:
    """Wrong type, sign, range or finiteness for a float argument."""
    return [
        round(valid) if valid == round(valid) else 1,
        0,
        2,
        True,
        False,
        str(valid),
        None,
        -abs(valid) if valid else -0.5,
        -0.0,
        0.0,
        1.0,
        1.5,
        10.0,
        NAN,
        INF,
        -INF,
        1e30,
        -1e30,
        [valid],
        tensor_scalar(valid),
    ]


def bool_corruptions(valid: bool) -> list:
    return [1, 0, int(not valid), "True", "False", None, 1.0, 0.0, not valid, [valid]]


def tuple_corruptions(valid: tuple) -> list:
    """Wrong length, a list instead of a tuple, bad elements; tuples stay marked as tuples."""
    first, second = valid
    return [
        ("tuple", (first,)),
        ("tuple", (first, second, second)),
        ("tuple", ()),
        list(valid),
        ("tuple", (second, first)),
        ("tuple", (-abs(first) or -0.5, second)),
        ("tuple", (first, -abs(second))),
        ("tuple", (0.0, second)),
        ("tuple", (first, 0.0)),
        ("tuple", (NAN, second)),
        ("tuple", (first, INF)),
        ("tuple", (int(first) or 1, second)),
        ("tuple", (first, int(second) or 1)),
        ("tuple", (first, None)),
        ("tuple", (True, second)),
        ("tuple", (str(first), second)),
        ("tuple", (1.0, second)),
        ("tuple", (first, 1.0)),
        ("tuple", (1.5, second)),
        ("tuple", (first, 1e30)),
        first,
        None,
        str(valid),
    ]


LR_CORRUPTIONS: list = [
    -0.1,
    0.0,
    -0.0,
    1,
    0,
    True,
    "0.1",
    None,
    NAN,
    INF,
    1e30,
    [0.1, -0.2],
    [-0.1],
    [[0.1, 0.2]],
    [[0.1], [0.2]],
    [],
    [0.1, 1],
    [1, 2],
    [0.1, "0.2"],
    [0.1, None],
    [0.1, NAN],
    ("tuple", (0.1, 0.2)),
    tensor_scalar(0.1),
    tensor_scalar(-0.1),
    tensor_scalar(NAN),
    tensor_list([0.1, 0.05]),
    tensor_list([0.1, -0.05]),
    tensor_list([[0.1, 0.05]]),
    tensor_list([[0.1], [0.05]]),
    tensor_list([]),
    tensor_list([0.1]),
    SCHEDULE,
    {"kind": "dynamic", "values": [0.1, 0.05]},
]

LOSS_SCALE_CORRUPTIONS: list = [
    2,
    1,
    0,
    0.0,
    -1.0,
    -0.0,
    0.5,
    True,
    "1.0",
    None,
    NAN,
    INF,
    1e30,
    1024.0,
    tensor_scalar(2.0),
]

WEIGHT_DECAY_CORRUPTIONS: list = [
    -0.1,
    -1e-8,
    0,
    1,
    True,
    False,
    "0.1",
    None,
    NAN,
    INF,
    1.0,
    1.5,
    1e30,
    -0.0,
    tensor_scalar(0.01),
    [0.01, 0.02],
    SCHEDULE,
]


def corruptions(name: str, valid: Any) -> list:
    """Candidate bad (or borderline) values for argument ``name`` whose valid value is ``valid``."""
    if name == "learning_rate":
        return LR_CORRUPTIONS
    if name == "loss_scale":
        return LOSS_SCALE_CORRUPTIONS
    if name == "weight_decay":
        return WEIGHT_DECAY_CORRUPTIONS
    if isinstance(valid, bool):
        return bool_corruptions(valid)
    if isinstance(valid, tuple):
        return tuple_corruptions(valid)
    return float_corruptions(valid)


def unmark(value: Any) -> tuple[Any, bool]:
    """A candidate value as its JSON form, and whether it is passed as a tuple."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "tuple":
        return list(value[1]), True
    return value, False


def random_arg_case(rng: random.Random, mistakes: int = 1) -> tuple[str, dict, list[str]]:
    """``(optimizer, kwargs in JSON form, tuple_args)`` with ``mistakes`` draws of a corrupted
    argument (two draws may corrupt the same argument: the last one stays)."""
    optimizer, kwargs, tuple_args = _one_mistake(rng, rng.choice(sorted(OPTIMIZERS)))
    for _ in range(mistakes - 1):
        _, more, more_tuples = _one_mistake(rng, optimizer)
        for key in [key for key in more if more[key] != kwargs.get(key, _ABSENT)]:
            kwargs[key] = more[key]
            tuple_args = [name for name in tuple_args if name != key]
            tuple_args += [key] if key in more_tuples else []
    return optimizer, kwargs, tuple_args


_ABSENT = object()


def _one_mistake(rng: random.Random, optimizer: str) -> tuple[str, dict, list[str]]:
    fixed, optional = OPTIMIZERS[optimizer]
    fixed = dict(fixed)
    if optimizer == "AdaFactor" and rng.random() < 0.5:
        fixed.update(ADAFACTOR_FIXED_LR)
    valids = {"learning_rate": fixed.get("learning_rate", 0.01), **optional, **fixed}
    if rng.random() < 0.05:
        name, value = rng.choice(WEIRD_KEYS), rng.choice([True, 0.1, 1])
    else:
        name = rng.choice(sorted(valids))
        value = rng.choice(corruptions(name, valids[name]))
    kwargs = {key: list(v) if isinstance(v, tuple) else v for key, v in fixed.items()}
    tuple_args = [key for key, v in fixed.items() if isinstance(v, tuple)]
    kwargs[name], is_tuple = unmark(value)
    tuple_args = [key for key in tuple_args if key != name] + ([name] if is_tuple else [])
    return optimizer, kwargs, tuple_args


# -------------------------------------------------------------------------------------------------
# Random group lists over the six parameters


def random_lr(rng: random.Random) -> Any:
    return rng.choice(
        [
            {"kind": "static", "value": 0.05},
            {"kind": "dynamic", "values": [0.1, 0.05, 0.01]},
            tensor_scalar(0.05),
            SCHEDULE,
        ]
    )


def valid_groups(rng: random.Random, names: Sequence[str]) -> list[dict]:
    """A valid partition of the parameters into 1-3 groups, maybe with ``order_params``."""
    shuffled = list(names)
    rng.shuffle(shuffled)
    cuts = sorted(rng.sample(range(1, len(names)), rng.randint(0, 2)))
    groups = []
    for start, stop in zip([0, *cuts], [*cuts, len(names)]):
        group: dict[str, Any] = {"params": shuffled[start:stop]}
        if rng.random() < 0.4:
            group["lr"] = random_lr(rng)
        if rng.random() < 0.4:
            group["weight_decay"] = rng.choice([0.0, 0.01])
        if rng.random() < 0.2:
            group["grad_centralization"] = rng.choice([False, True])
        groups.append(group)
    if rng.random() < 0.4:
        order = list(names)
        rng.shuffle(order)
        groups.append({"order_params": order})
    return groups


def param_groups(groups: list) -> list[dict]:
    """The groups whose ``params`` is still a non-empty list (earlier mutations may break it)."""
    return [
        g
        for g in groups
        if isinstance(g, dict) and isinstance(g.get("params"), list) and g["params"]
    ]


def names_in(values: Any) -> list[str]:
    return [n for n in values if isinstance(n, str)] if isinstance(values, list) else []


def order_group(groups: list, names: Sequence[str]) -> dict:
    """The ``order_params`` group, added (covering every grouped name) when there is none."""
    for group in groups:
        if isinstance(group, dict) and "order_params" in group:
            return group
    grouped = [n for g in param_groups(groups) for n in names_in(g["params"])]
    group = {"order_params": grouped or list(names)}
    groups.append(group)
    return group


def mutate_duplicate(rng, groups, names):
    source = rng.choice(param_groups(groups))
    target = rng.choice(param_groups(groups))
    target["params"].append(rng.choice(names_in(source["params"]) or list(names)))


def mutate_empty_params(rng, groups, names):
    groups.insert(rng.randint(0, len(groups)), {"params": []} | rng.choice([{}, {"lr": 0.1}]))


def mutate_unknown_key(rng, groups, names):
    key = rng.choice(
        [
            "weight_deacy",
            "lr_rate",
            "param",
            "Params",
            "order_param",
            "grad_centralisation",
            "LR",
            "momentum",
            "learning_rate",
            "weightdecay",
        ]
    )
    dicts = [g for g in groups if isinstance(g, dict)]  # an earlier mutation may leave others
    if dicts:
        rng.choice(dicts)[key] = rng.choice([0.1, True, ["fc.weight"], 0])


def mutate_not_parameter(rng, groups, names):
    bad = rng.choice([NOT_A_PARAMETER, "fc.unknown", 3, None, 0.5, [rng.choice(names)]])
    group = rng.choice(param_groups(groups))
    group["params"].insert(rng.randint(0, len(group["params"])), bad)


def mutate_params_value(rng, groups, names):
    group = rng.choice(param_groups(groups))
    group["params"] = rng.choice([group["params"][0], None, 3, {"kind": "static", "value": 0.1}])


def mutate_order(rng, groups, names):
    group = order_group(groups, names)
    order = group["order_params"] if isinstance(group["order_params"], list) else []
    change = rng.choice(
        [
            "missing",
            "extra",
            "duplicate",
            "unknown",
            "tensor",
            "empty",
            "other_key",
            "not_list",
            "second_order",
        ]
    )
    if change == "missing" and order:
        order.pop(rng.randrange(len(order)))
    elif change == "extra":
        grouped = {n for g in param_groups(groups) for n in names_in(g["params"])}
        order.append(rng.choice([n for n in names if n not in grouped] or list(names)))
    elif change == "duplicate":
        order.append(rng.choice(names_in(order) or list(names)))
    elif change == "unknown" and order:
        order[rng.randrange(len(order))] = "fc.unknown"
    elif change == "tensor" and order:
        order[rng.randrange(len(order))] = NOT_A_PARAMETER
    elif change == "empty":
        group["order_params"] = []
    elif change == "other_key":
        key = rng.choice(["lr", "weight_decay", "params"])
        group[key] = [rng.choice(names)] if key == "params" else 0.1
    elif change == "not_list":
        group["order_params"] = rng.choice([None, 3, rng.choice(names)])
    else:
        second = list(order)
        if rng.random() < 0.5:
            rng.shuffle(second)
        groups.append({"order_params": second})


def mutate_lr(rng, groups, names):
    rng.choice(param_groups(groups))["lr"] = rng.choice(
        [
            1,
            0,
            True,
            "0.1",
            None,
            -0.1,
            NAN,
            INF,
            [[0.1, 0.2]],
            [0.1, -0.2],
            [],
            [1, 2],
            {"kind": "static", "value": -0.1},
            {"kind": "dynamic", "values": [0.1, 0.2, 0.3, 0.4]},
            {"kind": "dynamic", "values": [0.2]},
            tensor_scalar(-0.1),
            tensor_list([0.1, 0.2]),
            tensor_list([[0.1, 0.2]]),
            [{"params": [rng.choice(names)]}],
            ("tuple", (0.1, 0.2)),
        ]
    )


def mutate_weight_decay(rng, groups, names):
    rng.choice(param_groups(groups))["weight_decay"] = rng.choice(
        [
            0,
            1,
            -0.1,
            "0.01",
            None,
            True,
            NAN,
            INF,
            1.5,
            [0.01],
            tensor_scalar(0.01),
            SCHEDULE,
            {"kind": "static", "value": 0.01},
        ]
    )


def mutate_grad_centralization(rng, groups, names):
    rng.choice(param_groups(groups))["grad_centralization"] = rng.choice(
        [1, 0, "True", None, 1.0, [True], True]
    )


def mutate_nested(rng, groups, names):
    group = rng.choice(param_groups(groups))
    inner = group["params"].pop()
    group["params"].append({"params": [inner]})


def mutate_uncovered(rng, groups, names):
    candidates = param_groups(groups)
    if len(candidates) > 1:
        groups.remove(rng.choice(candidates))
    else:
        candidates[0]["params"] = candidates[0]["params"][:1]


def mutate_not_dict(rng, groups, names):
    groups.insert(
        rng.randint(0, len(groups)),
        rng.choice([rng.choice(names), [rng.choice(names)], None, 3, NOT_A_PARAMETER]),
    )


def mutate_empty_list(rng, groups, names):
    groups.clear()
    if rng.random() < 0.5:
        groups.append({"params": []})


MUTATIONS: tuple[Callable, ...] = (
    mutate_duplicate,
    mutate_empty_params,
    mutate_unknown_key,
    mutate_not_parameter,
    mutate_params_value,
    mutate_order,
    mutate_order,
    mutate_lr,
    mutate_lr,
    mutate_weight_decay,
    mutate_grad_centralization,
    mutate_nested,
    mutate_uncovered,
    mutate_not_dict,
    mutate_empty_list,
)


def random_groups(
    rng: random.Random, names: Sequence[str], mistakes: int = 0
) -> tuple[list, list[str]]:
    """A group list with one mutation (now and then two), or ``mistakes`` of them; tuples marked
    as in ``unmark``. Several mistakes show which one MindSpore reports first."""
    groups = valid_groups(rng, names)
    count = mistakes or (2 if rng.random() < 0.15 else 1)
    for mutate in rng.sample(MUTATIONS, count):
        if param_groups(groups) or mutate in (mutate_not_dict, mutate_empty_list):
            mutate(rng, groups, names)
    return json_groups(groups)


def json_groups(value: Any) -> Any:
    """Marked tuples to lists (group values have no ``tuple_args``: a tuple lr becomes a list)."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == "tuple":
        return list(value[1])
    if isinstance(value, dict):
        return {key: json_groups(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_groups(item) for item in value]
    return value


# -------------------------------------------------------------------------------------------------
# MindSpore: building the recorded values and running the constructor


class MindSpore:
    """The MindSpore side: the six Parameters and the JSON-to-MindSpore value mapping."""

    def __init__(self, param_specs: Sequence[Mapping]):
        import mindspore  # slow, and only the recording needs it

        mindspore.set_context(mode=mindspore.PYNATIVE_MODE, device_target="CPU")
        self.ms = mindspore
        self.nn = mindspore.nn
        self.param_specs = list(param_specs)

    def parameters(self) -> dict[str, Any]:
        """Fresh ``{name: Parameter}`` (every case gets its own)."""
        out = {}
        for spec in self.param_specs:
            data = np.asarray(spec["init"], dtype=np.float32).reshape(spec["shape"])
            out[spec["name"]] = self.ms.Parameter(self.ms.Tensor(data), name=spec["name"])
        return out

    def lr(self, spec: Mapping) -> Any:
        kind = spec["kind"]
        if kind == "static":
            return spec["value"]
        if kind == "dynamic":
            return list(spec["values"])
        if kind in ("tensor_scalar", "tensor_list"):
            values = spec["value"] if kind == "tensor_scalar" else spec["values"]
            return self.ms.Tensor(np.asarray(values, dtype=np.float32), self.ms.float32)
        if kind == "schedule":
            return getattr(self.nn, spec["class"])(**spec["kwargs"])
        raise ValueError(f"unknown lr spec kind {kind!r}")

    def kwargs(self, kwargs: Mapping, tuple_args: Sequence[str]) -> dict:
        return {
            key: tuple(value) if key in tuple_args else self.value(value, {})
            for key, value in kwargs.items()
        }

    def value(self, value: Any, params: Mapping) -> Any:
        """Mirror of ``golden_replay.build_value``."""
        if isinstance(value, Mapping) and "kind" in value:
            return self.lr(value)
        if isinstance(value, Mapping):
            return self.group(value, params)
        if isinstance(value, list):
            return [self.value(item, params) for item in value]
        return value

    def group(self, group: Any, params: Mapping) -> Any:
        """Mirror of ``golden_replay.build_group`` (a non-dict group is passed as it is)."""
        if not isinstance(group, Mapping):
            return self.item(group, params)
        out = {}
        for key, value in group.items():
            if key in ("params", "order_params") and isinstance(value, list):
                out[key] = [self.item(name, params) for name in value]
            else:
                out[key] = self.value(value, params)
        return out

    def item(self, name: Any, params: Mapping) -> Any:
        if name == NOT_A_PARAMETER:
            return self.ms.Tensor(np.ones(3))
        if isinstance(name, str) and name in params:
            return params[name]
        return name

    def construct_with_args(self, optimizer: str, kwargs: Mapping, tuple_args: Sequence[str]):
        params = self.parameters()
        return getattr(self.nn, optimizer)(list(params.values()), **self.kwargs(kwargs, tuple_args))

    def construct_with_groups(self, groups: list):
        params = self.parameters()
        built = [self.group(group, params) for group in groups]
        return self.nn.Momentum(built, learning_rate=0.1, momentum=0.9)


CALL_STACK = re.compile(r"^(-{8,}|- C\+\+ Call Stack|- Framework Unexpected Exception|\(C\+\+)")


def error_record(exc: BaseException) -> dict:
    """``{type, message, full_message}`` as in the sample (str(exc), call stacks cut off)."""
    text = str(exc)
    lines = text.splitlines()
    kept = []
    for line in lines:
        if CALL_STACK.match(line.strip()):
            break
        kept.append(line)
    full = "\n".join(kept).rstrip()
    return {
        "type": builtin_type_name(exc),
        "message": lines[0] if lines else "",
        "full_message": full,
    }


def builtin_type_name(exc: BaseException) -> str:
    """The exception class name; a MindSpore-specific class is named by its first builtin base."""
    for cls in type(exc).__mro__:
        if getattr(builtins, cls.__name__, None) is cls:
            return cls.__name__
    return type(exc).__name__


def run(construct: Callable[[], Any]) -> tuple[Any, dict | None]:
    """``(optimizer or None, error record or None)``."""
    try:
        return construct(), None
    except Exception as exc:  # every construction failure is the recorded result
        return None, error_record(exc)


# -------------------------------------------------------------------------------------------------
# Case records


def source(value: Any, is_tuple: bool = False) -> str:
    """A JSON-form value as the Python source of what MindSpore received."""
    if is_tuple:
        inner = ", ".join(source(item) for item in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float('{value}')"
    if isinstance(value, Mapping) and "kind" in value:
        return lr_source(value)
    if isinstance(value, list):
        return "[" + ", ".join(source(item) for item in value) + "]"
    return repr(value)


def lr_source(spec: Mapping) -> str:
    kind = spec["kind"]
    if kind == "static":
        return source(spec["value"])
    if kind == "dynamic":
        return source(spec["values"])
    if kind in ("tensor_scalar", "tensor_list"):
        values = spec["value"] if kind == "tensor_scalar" else spec["values"]
        return f"Tensor(np.array({source(values)}, np.float32))"
    args = ", ".join(f"{k}={source(v)}" for k, v in spec["kwargs"].items())
    return f"nn.{spec['class']}({args})"


def arg_call(optimizer: str, kwargs: Mapping, tuple_args: Sequence[str]) -> str:
    args = ", ".join(f"{k}={source(v, k in tuple_args)}" for k, v in kwargs.items())
    return f"nn.{optimizer}([all params], {args})"


def arg_case(ms: MindSpore, case_id: str, optimizer: str, kwargs: dict, tuple_args: list) -> dict:
    _, error = run(lambda: ms.construct_with_args(optimizer, kwargs, tuple_args))
    return {
        "family": "arg_error",
        "id": case_id,
        "optimizer": optimizer,
        "kwargs": kwargs,
        "tuple_args": tuple_args,
        "call": arg_call(optimizer, kwargs, tuple_args),
        "error": error,
        "mindspore_version": ms.ms.__version__,
    }


def group_case(ms: MindSpore, case_id: str, groups: list) -> dict:
    opt, error = run(lambda: ms.construct_with_groups(groups))
    case = {
        "family": "group_error",
        "id": case_id,
        "groups": groups,
        "call": f"nn.Momentum({json.dumps(groups)}, learning_rate=0.1, momentum=0.9)",
        "note": GROUP_NOTE,
        "error": error,
        "mindspore_version": ms.ms.__version__,
    }
    if error is None:
        case["result"] = {"param_order": [p.name for p in opt._parameters]}
    return case


# -------------------------------------------------------------------------------------------------
# Driver


def load_cases(directory: Path, family: str) -> list[dict]:
    path = directory / f"{family}.json"
    return json.loads(path.read_text())["cases"] if path.exists() else []


def standard_param_specs() -> list[dict]:
    return load_cases(SAMPLE_DIR, PARAM_SOURCE.removesuffix(".json"))[0]["params"]


def meta(ms: MindSpore, seed: int | None) -> dict:
    return {
        "mindspore": ms.ms.__version__,
        "numpy": np.__version__,
        "mode": "PYNATIVE_MODE",
        "device": "CPU",
        "generator": "tools/record_golden_errors.py",
        "seed": seed,
        "float_encoding": "Python floats as written by json (NaN/Infinity for non-finite values)",
    }


def record(
    ms: MindSpore, seed: int, count: int, mistakes: int = 0, arg_mistakes: int = 1
) -> dict[str, list[dict]]:
    """``count`` distinct cases per family (distinct by call), in generation order; group
    cases with ``mistakes`` mutations each (0: one, now and then two), arg cases with
    ``arg_mistakes`` corrupted arguments."""
    rng = random.Random(seed)
    names = [spec["name"] for spec in ms.param_specs]
    out: dict[str, list[dict]] = {"arg_error": [], "group_error": []}
    seen: set[str] = set()
    serial = 0
    makers = {
        "arg_error": lambda: ("arg", random_arg_case(rng, arg_mistakes)),
        "group_error": lambda: ("group", random_groups(rng, names, mistakes)),
    }
    for family, make in makers.items():
        attempts = 0
        while len(out[family]) < count and attempts < 50 * count:
            attempts += 1
            kind, drawn = make()
            key = json.dumps([kind, drawn])
            if key in seen:
                continue
            seen.add(key)
            serial += 1
            case_id = f"fuzz-err-{seed}-{serial}"
            if kind == "arg":
                out[family].append(arg_case(ms, case_id, *drawn))
            else:
                out[family].append(group_case(ms, case_id, drawn))
    return out


def write(out_dir: Path, ms: MindSpore, seed: int | None, by_family: Mapping[str, list]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for family, family_cases in by_family.items():
        document = {"meta": meta(ms, seed), "family": family, "cases": family_cases}
        (out_dir / f"{family}.json").write_text(json.dumps(document, indent=1) + "\n")
    shutil.copyfile(SAMPLE_DIR / PARAM_SOURCE, out_dir / PARAM_SOURCE)


def rerecord(ms: MindSpore, golden: Path) -> dict[str, list[dict]]:
    """The sample's cases re-run here; prints each whose error differs from the recording."""
    out: dict[str, list[dict]] = {}
    for family in ("arg_error", "group_error"):
        out[family] = []
        for old in load_cases(golden, family):
            if family == "arg_error":
                tuple_args = old.get("tuple_args") or []
                new = arg_case(ms, old["id"], old["optimizer"], old["kwargs"], tuple_args)
            else:
                new = group_case(ms, old["id"], old["groups"])
            if (old["error"] or {}).get("message") != (new["error"] or {}).get("message") or (
                old["error"] or {}
            ).get("type") != (new["error"] or {}).get("type"):
                print(f"DIFF {old['id']}: recorded {old['error']}\n  now {new['error']}")
            out[family].append(new)
        print(f"{family}: {len(out[family])} re-recorded")
    return out


def summary(by_family: Mapping[str, list]) -> str:
    lines = []
    for family, family_cases in by_family.items():
        kinds: dict[str, int] = {}
        for case in family_cases:
            kind = (case["error"] or {}).get("type", "accepted")
            kinds[kind] = kinds.get(kind, 0) + 1
        lines.append(f"{family}: {len(family_cases)} cases {dict(sorted(kinds.items()))}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=100, help="cases per family")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--rerecord", type=Path, help="re-record this golden directory's cases instead"
    )
    parser.add_argument(
        "--mistakes", type=int, default=0, help="group mistakes per case (default: 1, or 2)"
    )
    parser.add_argument(
        "--arg-mistakes",
        type=int,
        default=1,
        help="corrupted arguments per arg_error case (several: which one MindSpore reports first)",
    )
    args = parser.parse_args(argv)
    ms = MindSpore(standard_param_specs())
    if args.rerecord:
        by_family = rerecord(ms, args.rerecord)
        write(args.out, ms, None, by_family)
    else:
        by_family = record(ms, args.seed, args.count, args.mistakes, args.arg_mistakes)
        write(args.out, ms, args.seed, by_family)
    print(summary(by_family))
    return 0


if __name__ == "__main__":
    sys.exit(main())
