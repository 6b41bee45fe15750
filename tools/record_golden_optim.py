"""Record random ``optimizer`` / ``optimizer_error`` golden cases from real MindSpore 2.10 (fuzzing).

Runs in MindSpore's own environment, never in msoptim's (``make test`` does not need MindSpore)::

    python3 -m venv /tmp/msvenv
    /tmp/msvenv/bin/pip install mindspore==2.10.0 'numpy<2'
    /tmp/msvenv/bin/python tools/record_golden_optim.py --seed 1 --count 100 --out /tmp/fuzz/s1

and replay what it wrote against msoptim with the unchanged golden harness::

    PYTHONPATH=src .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_golden.py \\
        --golden-dir /tmp/fuzz/s1 -k optimizer

(``test_every_family_is_present_and_replayed`` fails on such a partial directory: ignore it.)

Each case is a random configuration over the fixed six parameters of ``tests/golden/README.md``:
an optimizer that runs on MindSpore's CPU (Lamb and LARS are left out), hyper-parameters of the
right Python types over their valid ranges, weight decay and loss scale, an lr spec (static float,
dynamic list, sometimes shorter than the run, 0-d / 1-D Tensor, or a schedule Cell), sometimes
parameter groups (per-group lr / weight decay / grad centralization, ``order_params``) or a mid-run
``ops.assign`` of a static lr, 3-8 steps of random gradients with exact zeros. About a fifth of the
cases are mutated into invalid calls (wrong types, out-of-range values, bad groups). MindSpore is
run on each and the result is written in the README's schema: construction or step 1 failed ->
``optimizer_error``; otherwise -> ``optimizer`` (a later failing step ends its trajectory).
``--gc-emulated`` draws groups for every case, with ``grad_centralization`` on any parameter, and
replaces MindSpore's Ascend-only ``Centralization`` by ``g - ReduceMean(g, axes 1..)`` (the
shared sample's emulation): cases where a gradient was centralized are written as
``optimizer_gc_emulated``.

``--resample FILE`` re-records the configurations (and parameters and gradients) of an existing
golden file instead, to check that this recorder reproduces it: the output must equal its
``expect``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

FLOAT_ENCODING = (
    "float32 values are the shortest decimal that round-trips through float32: parse as float64 "
    "then cast to float32 to get the exact bits; lr lists and kwargs are python float64 values"
)
SECTION = re.compile(r"\n*-{20,}\n- ([^\n]*)\n-{20,}\n")
STEP_CALL = "opt(tuple(Tensor(grads[t][name]) for name in param_order))"

# The fixed six parameters (golden README): name, shape.
PARAMS = (
    ("conv1.weight", (2, 16, 1, 1)),
    ("conv2.weight", (2, 3, 2, 2)),
    ("fc.weight", (3, 16)),
    ("bn.gamma", (4,)),
    ("bn.beta", (4,)),
    ("fc.bias", (3,)),
)
NAMES = tuple(name for name, _ in PARAMS)
SHAPES = dict(PARAMS)

# Optimizers that take a ``loss_scale`` argument.
WITH_LOSS_SCALE = frozenset(
    [
        "Momentum",
        "SGD",
        "Adam",
        "LazyAdam",
        "AdamOffload",
        "FTRL",
        "RMSProp",
        "ProximalAdagrad",
        "Adagrad",
        "Adadelta",
        "AdaMax",
        "AdaFactor",
    ]
)
# A typical learning rate per optimizer (random lrs are drawn around it).
BASE_LR = {
    "Momentum": 0.1,
    "SGD": 0.1,
    "Adam": 0.01,
    "AdamWeightDecay": 0.01,
    "LazyAdam": 0.01,
    "AdamOffload": 0.01,
    "FTRL": 0.1,
    "RMSProp": 0.01,
    "ProximalAdagrad": 0.1,
    "Adagrad": 0.1,
    "Adadelta": 1.0,
    "AdaMax": 0.01,
    "ASGD": 0.1,
    "Rprop": 0.01,
    "AdaFactor": 0.01,
}
OPTIMIZERS = tuple(BASE_LR)
SCHEDULES = (
    "CosineDecayLR",
    "ExponentialDecayLR",
    "PolynomialDecayLR",
    "WarmUpLR",
    "NaturalExpDecayLR",
    "InverseDecayLR",
)


# -------------------------------------------------------------------------------------------------
# Encoding


def f32_list(values: Any) -> list[float]:
    """float32 values as the shortest decimals that round-trip through float32 (README)."""
    return [float(str(v)) for v in np.asarray(values, dtype=np.float32).ravel()]


def encode_tensor(value: Any) -> list:
    array = value.asnumpy() if hasattr(value, "asnumpy") else np.asarray(value)
    if np.issubdtype(array.dtype, np.floating):
        return f32_list(array)
    return [int(v) if np.issubdtype(array.dtype, np.integer) else bool(v) for v in array.ravel()]


def encode_error(exc: BaseException) -> dict:
    """``{type, message, full_message}``: first line, and the message without C++/graph stacks."""
    # MindSpore's message: text, then "----/- Title/----" sections; keep all but the stacks.
    # (A KeyError's str() is its quoted repr, as in the sample files.)
    lead, *sections = SECTION.split(str(exc))
    kept = [lead] + [
        body
        for title, body in zip(sections[::2], sections[1::2])
        if "Call Stack" not in title and "Traceback" not in title
    ]
    text = "\n".join(part.strip() for part in kept if part.strip())
    return {
        "type": type(exc).__name__,
        "message": text.splitlines()[0] if text else "",
        "full_message": text,
    }


# -------------------------------------------------------------------------------------------------
# From the JSON config to MindSpore objects


def is_lr_spec(value: Any) -> bool:
    return isinstance(value, dict) and "kind" in value


def build_lr(spec: dict) -> Any:
    """An lr spec (README "lr spec") as the object MindSpore takes."""
    kind = spec["kind"]
    if kind == "static":
        return spec["value"]
    if kind == "dynamic":
        return list(spec["values"])
    if kind == "tensor_scalar":
        return Tensor(spec["value"], ms.float32)
    if kind == "tensor_list":
        return Tensor(np.asarray(spec["values"], dtype=np.float32))
    if kind == "schedule":
        return getattr(nn, spec["class"])(**spec["kwargs"])
    raise ValueError(f"unknown lr spec kind {kind!r}")


def build_value(value: Any) -> Any:
    """Kwargs/group values: lr specs to lr objects, lists to tuples (Rprop etas, AdaFactor eps)."""
    if is_lr_spec(value):
        return build_lr(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def param_item(name: Any, params: dict[str, Parameter]) -> Any:
    """A recorded name as its Parameter; ``NOT_A_PARAMETER`` as a plain ``Tensor(np.ones(3))``
    (the convention of the ``group_error`` family and of the replay harness)."""
    if name == "NOT_A_PARAMETER":
        return Tensor(np.ones(3))
    return params.get(name, name) if isinstance(name, str) else name


def build_group(group: dict, params: dict[str, Parameter]) -> dict:
    out = {}
    for key, value in group.items():
        if key in ("params", "order_params") and isinstance(value, list):
            out[key] = [param_item(name, params) for name in value]
        else:
            out[key] = build_value(value)
    return out


def build_optimizer(config: dict, params: dict[str, Parameter]) -> nn.Optimizer:
    kwargs = {key: build_value(value) for key, value in config["kwargs"].items()}
    if config["learning_rate"] is not None:
        kwargs["learning_rate"] = build_lr(config["learning_rate"])
    if config["groups"]:
        first = [build_group(group, params) for group in config["groups"]]
    else:
        first = list(params.values())
    return getattr(nn, config["optimizer"])(first, **kwargs)


# -------------------------------------------------------------------------------------------------
# The ``call`` field: the MindSpore call as Python source


def source(value: Any) -> str:
    if is_lr_spec(value):
        kind = value["kind"]
        if kind == "static":
            return repr(value["value"])
        if kind == "dynamic":
            return repr(list(value["values"]))
        if kind == "tensor_scalar":
            return f"Tensor({value['value']!r}, mindspore.float32)"
        if kind == "tensor_list":
            return f"Tensor(np.array({value['values']!r}, np.float32))"
        args = ", ".join(f"{k}={source(v)}" for k, v in value["kwargs"].items())
        return f"nn.{value['class']}({args})"
    if isinstance(value, list):
        return "(" + ", ".join(map(source, value)) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def group_source(group: dict) -> str:
    items = []
    for key, value in group.items():
        if key in ("params", "order_params") and isinstance(value, list):
            text = "[" + ", ".join(str(name) for name in value) + "]"
        else:
            text = source(value)
        items.append(f"{key!r}: {text}")
    return "{" + ", ".join(items) + "}"


def call_source(config: dict) -> str:
    if config["groups"]:
        first = "[" + ", ".join(group_source(g) for g in config["groups"]) + "]"
    else:
        first = "[" + ", ".join(NAMES) + "]"
    args = [first]
    if config["learning_rate"] is not None:
        args.append(f"learning_rate={source(config['learning_rate'])}")
    args += [f"{k}={source(v)}" for k, v in config["kwargs"].items()]
    return f"nn.{config['optimizer']}({', '.join(args)})"


# -------------------------------------------------------------------------------------------------
# Running MindSpore and recording


def make_params(config: dict) -> dict[str, Parameter]:
    return {
        spec["name"]: Parameter(
            Tensor(np.asarray(spec["init"], np.float32).reshape(spec["shape"])), name=spec["name"]
        )
        for spec in config["params"]
    }


def params_record(params: dict[str, Parameter]) -> dict[str, list[float]]:
    return {name: f32_list(p.asnumpy()) for name, p in params.items()}


def state_record(opt: nn.Optimizer, params: dict[str, Parameter]) -> dict[str, dict]:
    """Every optimizer Parameter but the model's, ``global_step`` and ``learning_rate*``."""
    own = {id(p) for p in params.values()}
    out = {}
    for name, p in opt.parameters_and_names():
        if id(p) in own or name == "global_step" or name.startswith("learning_rate"):
            continue
        out[name] = {"shape": list(p.shape), "dtype": str(p.dtype), "values": encode_tensor(p)}
    return out


def lr_record(opt: nn.Optimizer) -> list[float]:
    """``get_lr()``: one value, or one per parameter for group lrs."""
    lr = opt.get_lr()
    values = lr if isinstance(lr, (tuple, list)) else (lr,)
    return [f32_list(v.asnumpy())[0] for v in values]


def sync() -> None:
    """Wait for MindSpore's asynchronous (PyNative) kernels; raises the error of one that failed.

    ``mindspore.runtime.synchronize`` does nothing on CPU; reading a fresh result back does wait.
    """
    (Tensor(np.zeros(1, np.float32)) + 1).asnumpy()


def drain() -> None:
    """After a failure: let every queued kernel finish, so no error leaks into the next record."""
    for _ in range(3):
        try:
            sync()
            return
        except Exception:  # a stale error of the failed call: try again
            continue


def global_step(opt: nn.Optimizer) -> int:
    return int(opt.global_step.asnumpy().ravel()[0])


def structure(opt: nn.Optimizer, config: dict) -> dict:
    return {
        "param_order": [p.name for p in opt._parameters],
        "decay_flags": [bool(f) for f in opt.decay_flags],
        "grad_centralization_flags": (
            [bool(f) for f in opt.grad_centralization_flags] if config["groups"] else None
        ),
    }


def step_grads(config: dict, t: int, order: list[str]) -> tuple:
    return tuple(
        Tensor(np.asarray(config["grads"][t][name], np.float32).reshape(SHAPES[name]))
        for name in order
    )


def run_step(opt, config, params, t, order) -> dict:
    """One step's record; ``error`` (and params after the failed call) if MindSpore raised."""
    record: dict[str, Any] = {"step": t + 1}
    try:
        record["lr_before"] = lr_record(opt)
        sync()
    except Exception as exc:  # any MindSpore failure is the recorded result
        record["lr_before_error"] = encode_error(exc)
        drain()
    try:
        opt(step_grads(config, t, order))
        sync()
    except Exception as exc:
        record["error"] = encode_error(exc)
        drain()
    record["params"] = params_record(params)
    record["global_step"] = global_step(opt)
    return record


def record_case(config: dict) -> dict:
    """Run ``config`` on MindSpore; the finished case (family ``optimizer`` or ``optimizer_error``)."""
    case = {
        "family": "optimizer",
        "id": config["id"],
        **{key: config.get(key) for key in ("optimizer", "kwargs", "learning_rate", "groups")},
        "wrap": None,
        "assign_lr": config.get("assign_lr"),
        "note": config.get("note"),
        "call": call_source(config),
        "step_call": STEP_CALL,
        "steps": len(config["grads"]),
        "emulated_kernel": None,
        "params": config["params"],
        "grads": config["grads"],
    }
    params = make_params(config)
    try:
        opt = build_optimizer(config, params)
    except Exception as exc:
        drain()
        return finish_error(case, encode_error(exc))
    case.update(structure(opt, config))
    case["init_state"] = state_record(opt, params)
    order = case["param_order"]
    expect = []
    for t in range(case["steps"]):
        assign = case["assign_lr"]
        if assign and assign["before_step"] == t + 1:
            ops.assign(opt.learning_rate, Tensor(assign["value"], ms.float32))
        record = run_step(opt, config, params, t, order)
        if t == 0 and "error" in record:
            return finish_error(case, record["error"])
        if "error" in record:
            expect.append(record)
            break
        if t == 0 or t == case["steps"] - 1:
            record["state"] = state_record(opt, params)
        expect.append(record)
    case["expect"] = expect
    try:
        case["lr_after_last"] = lr_record(opt)
        sync()
    except Exception as exc:
        case["lr_after_last_error"] = encode_error(exc)
        drain()
    case["mindspore_version"] = ms.__version__
    return case


def finish_error(case: dict, error: dict) -> dict:
    case["family"] = "optimizer_error"
    case.setdefault("param_order", None)
    case.setdefault("decay_flags", None)
    case.setdefault("grad_centralization_flags", None)
    case.setdefault("init_state", None)
    case["error"] = error
    case["mindspore_version"] = ms.__version__
    return case


# -------------------------------------------------------------------------------------------------
# Random configurations


class Draw:
    """Random choices of the right Python types (floats stay floats, ints stay ints)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def pick(self, options: Any) -> Any:
        return options[int(self.rng.integers(len(options)))]

    def uniform(self, low: float, high: float, digits: int = 4) -> float:
        return round(float(self.rng.uniform(low, high)), digits)

    def log_uniform(self, low: float, high: float) -> float:
        return float(f"{np.exp(self.rng.uniform(np.log(low), np.log(high))):.3g}")

    def integer(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high + 1))


def draw_beta(draw: Draw, defaults: tuple) -> float:
    return draw.pick(defaults) if draw.chance(0.6) else draw.uniform(0.05, 0.999)


def optimizer_kwargs(draw: Draw, name: str) -> dict:
    """Valid hyper-parameters for ``name`` (weight decay / loss scale / lr come later)."""
    kw: dict[str, Any] = {}
    if name == "Momentum":
        kw["momentum"] = draw.pick([0.0, 0.5, 0.9, 0.99, draw.uniform(0.0, 0.99)])
        if draw.chance(0.05):
            kw["use_nesterov"] = True  # CPU defect: replayed against the documented formula
    elif name == "SGD":
        kw["momentum"] = draw.pick([0.0, 0.9, draw.uniform(0.0, 0.99)])
        kw["dampening"] = draw.pick([0.0, 0.0, 0.1, draw.uniform(0.0, 0.9)])
        if kw["momentum"] > 0 and kw["dampening"] == 0.0 and draw.chance(0.5):
            kw["nesterov"] = True
    elif name in ("Adam", "LazyAdam", "AdamOffload", "AdamWeightDecay", "AdaMax"):
        kw["beta1"] = draw_beta(draw, (0.9, 0.8, 0.5))
        kw["beta2"] = draw_beta(draw, (0.999, 0.99, 0.9))
        kw["eps"] = draw.pick([1e-8, 1e-6, 1e-3, draw.log_uniform(1e-10, 1e-2)])
        if name in ("Adam", "LazyAdam", "AdamOffload") and draw.chance(0.3):
            kw["use_nesterov"] = True
        if name == "Adam":
            if draw.chance(0.25):
                kw["use_amsgrad"] = True
            extra = draw.pick([None, None, None, "use_lazy", "use_offload"])
            if extra:
                kw[extra] = True
    elif name == "FTRL":
        kw["initial_accum"] = draw.pick([0.1, 0.0, 0.5, draw.uniform(0.01, 1.0)])
        kw["lr_power"] = draw.pick([-0.5, -0.3, -1.0, 0.0, draw.uniform(-1.0, -0.05)])
        kw["l1"] = 0.01 if draw.chance(0.05) else 0.0  # l1 > 0: CPU defect
        kw["l2"] = draw.pick([0.0, 0.01, draw.uniform(0.0, 0.1)])
    elif name == "RMSProp":
        kw["decay"] = draw.pick([0.9, 0.99, 0.0, draw.uniform(0.0, 0.999)])
        kw["momentum"] = draw.pick([0.0, 0.9, draw.uniform(0.0, 0.99)])
        kw["epsilon"] = draw.pick([1e-10, 1e-6, 1e-3, draw.log_uniform(1e-10, 1e-2)])
        kw["centered"] = draw.chance(0.5)
    elif name == "ProximalAdagrad":
        kw["accum"] = draw.pick([0.1, 0.0, 0.5, draw.uniform(0.01, 1.0)])
        kw["l1"] = draw.pick([0.0, 0.01, draw.uniform(0.0, 0.1)])
        kw["l2"] = draw.pick([0.0, 0.01, draw.uniform(0.0, 0.1)])
    elif name == "Adagrad":
        kw["accum"] = draw.pick([0.1, 0.0, 0.5, draw.uniform(0.01, 1.0)])
        if draw.chance(0.05):
            kw["update_slots"] = False  # CPU defect
    elif name == "Adadelta":
        kw["rho"] = draw.pick([0.9, 0.0, 1.0, draw.uniform(0.0, 1.0)])
        kw["epsilon"] = draw.pick([1e-6, 1e-3, 0.0, draw.log_uniform(1e-8, 1e-2)])
    elif name == "ASGD":
        kw["lambd"] = draw.pick([1e-4, 0.01, draw.log_uniform(1e-5, 0.1)])
        kw["alpha"] = draw.pick([0.75, 0.5, draw.uniform(0.1, 1.0)])
        kw["t0"] = draw.pick([1e6, 1.0, 3.0, float(draw.integer(1, 10))])
    elif name == "Rprop":
        kw["etas"] = [
            draw.pick([0.5, draw.uniform(0.05, 0.95)]),
            draw.pick([1.2, draw.uniform(1.01, 2.0)]),
        ]
        low = draw.pick([1e-6, 1e-4, draw.log_uniform(1e-7, 1e-3)])
        kw["step_sizes"] = [low, draw.pick([50.0, 1.0, draw.uniform(0.01, 10.0)])]
    elif name == "AdaFactor":
        kw.update(adafactor_kwargs(draw))
    return kw


def adafactor_kwargs(draw: Draw) -> dict:
    kw: dict[str, Any] = {}
    if draw.chance(0.5):
        kw["eps"] = [draw.pick([1e-30, 1e-20]), draw.pick([1e-3, 1e-2, 1e-4])]
    if draw.chance(0.5):
        kw["clip_threshold"] = draw.pick([1.0, 0.5, 2.0])
    if draw.chance(0.5):
        kw["decay_rate"] = draw.pick([0.8, 0.5, draw.uniform(0.1, 0.95)])
    if draw.chance(0.5):
        kw["beta1"] = draw.pick([0.9, 0.0, draw.uniform(0.1, 0.95)])
    kw["scale_parameter"] = draw.chance(0.5)
    kw["relative_step"] = draw.chance(0.5)
    kw["warmup_init"] = kw["relative_step"] and draw.chance(0.4)
    if draw.chance(0.2):
        kw["compression"] = True
    return kw


def static_lr(draw: Draw, base: float) -> float:
    return draw.pick([base, base / 2, base * 2, float(f"{base * draw.uniform(0.1, 3.0):.4g}")])


def dynamic_values(draw: Draw, base: float, length: int) -> list[float]:
    if draw.chance(0.5):  # a decaying table
        rate = draw.uniform(0.5, 0.99)
        return [base * rate**i for i in range(length)]
    return [static_lr(draw, base) for _ in range(length)]


def schedule_spec(draw: Draw, base: float, steps: int) -> dict:
    """A random LearningRateSchedule class with valid kwargs (ints and floats as MindSpore wants)."""
    cls = draw.pick(SCHEDULES)
    decay_steps = draw.integer(1, steps + 2)
    lr = static_lr(draw, base)
    if cls == "CosineDecayLR":
        kwargs = {
            "min_lr": float(f"{lr * draw.uniform(0.0, 0.5):.4g}"),
            "max_lr": lr,
            "decay_steps": decay_steps,
        }
    elif cls == "PolynomialDecayLR":
        kwargs = {
            "learning_rate": lr,
            "end_learning_rate": float(f"{lr * draw.uniform(0.0, 0.5):.4g}"),
            "decay_steps": decay_steps,
            "power": draw.pick([1.0, 0.5, 2.0, draw.uniform(0.1, 3.0)]),
            "update_decay_steps": draw.chance(0.5),
        }
    elif cls == "WarmUpLR":
        kwargs = {"learning_rate": lr, "warmup_steps": decay_steps}
    else:
        kwargs = {
            "learning_rate": lr,
            "decay_rate": draw.pick([0.5, 0.9, draw.uniform(0.05, 0.99)]),
            "decay_steps": decay_steps,
            "is_stair": draw.chance(0.5),
        }
    return {"kind": "schedule", "class": cls, "kwargs": kwargs}


def lr_spec(draw: Draw, base: float, steps: int, kinds: tuple) -> dict:
    kind = draw.pick(kinds)
    if kind == "static":
        return {"kind": "static", "value": static_lr(draw, base)}
    if kind == "tensor_scalar":
        return {"kind": "tensor_scalar", "value": static_lr(draw, base)}
    if kind == "schedule":
        return schedule_spec(draw, base, steps)
    short = draw.chance(0.15)
    length = draw.integer(1, steps - 1) if short else steps + draw.integer(0, 3)
    return {"kind": kind, "values": dynamic_values(draw, base, length)}


ALL_KINDS = ("static", "static", "dynamic", "tensor_scalar", "tensor_list", "schedule", "schedule")


def weight_decay_value(draw: Draw, allow_cell: bool) -> Any:
    if allow_cell and draw.chance(0.1):
        return {
            "kind": "schedule",
            "class": "ExponentialDecayLR",
            "kwargs": {
                "learning_rate": draw.pick([0.01, 0.05]),
                "decay_rate": 0.5,
                "decay_steps": draw.integer(1, 3),
            },
        }
    return draw.pick([0.0, 0.0, 1e-4, 0.001, 0.01, 0.05, draw.uniform(0.0, 0.1)])


def centralization_allowed(names: list[str]) -> bool:
    """No Centralization kernel on CPU: GC only on groups without ndim >= 2, shape[1] % 16 == 0."""
    return not any(len(SHAPES[n]) >= 2 and SHAPES[n][1] % 16 == 0 for n in names)


def random_groups(
    draw: Draw, name: str, base: float, steps: int, gc_anywhere: bool = False
) -> list[dict]:
    order = list(draw.rng.permutation(NAMES))
    count = draw.integer(1, 3)
    cuts = sorted(draw.rng.choice(np.arange(1, 6), size=count - 1, replace=False).tolist())
    parts = [order[a:b] for a, b in zip([0, *cuts], [*cuts, 6])]
    groups = []
    for names in parts:
        group: dict[str, Any] = {"params": [str(n) for n in names]}
        if name != "FTRL" and draw.chance(0.5):
            group["lr"] = lr_spec(draw, base, steps, ("static", "dynamic", "schedule"))
        if draw.chance(0.5):
            group["weight_decay"] = weight_decay_value(draw, name not in ("SGD",))
        if (gc_anywhere or centralization_allowed(group["params"])) and draw.chance(0.4):
            group["grad_centralization"] = True
        groups.append(group)
    if draw.chance(0.3):
        groups.append({"order_params": [str(n) for n in draw.rng.permutation(NAMES)]})
    return groups


def random_arrays(draw: Draw, steps: int) -> tuple[list[dict], list[dict]]:
    """Initial parameters and ``steps`` gradient sets (float32; ~10% exact zeros)."""
    rng = draw.rng
    params = []
    for name, shape in PARAMS:
        init = rng.standard_normal(shape).astype(np.float32)
        if "gamma" in name:
            init = (1 + 0.1 * init).astype(np.float32)
        params.append(
            {"name": name, "shape": list(shape), "dtype": "float32", "init": f32_list(init)}
        )
    grads = []
    for _ in range(steps):
        step = {}
        for name, shape in PARAMS:
            g = (draw.uniform(0.05, 2.0) * rng.standard_normal(shape)).astype(np.float32)
            g[rng.random(shape) < 0.1] = 0.0
            if draw.chance(0.03):
                g[...] = 0.0
            step[name] = f32_list(g)
        grads.append(step)
    return params, grads


def random_config(
    draw: Draw,
    case_id: str,
    max_steps: int = 8,
    optimizers: tuple[str, ...] = OPTIMIZERS,
    gc_emulated: bool = False,
) -> dict:
    name = draw.pick(optimizers)
    steps = draw.integer(3, max_steps)
    base = BASE_LR[name]
    kwargs = optimizer_kwargs(draw, name)
    groups = None
    if name == "AdaFactor" and kwargs["relative_step"]:
        learning_rate = None
    elif name == "FTRL":
        learning_rate = {"kind": "static", "value": static_lr(draw, base)}
    else:
        learning_rate = lr_spec(draw, base, steps, ALL_KINDS)
    if draw.chance(0.7):
        kwargs["weight_decay"] = weight_decay_value(
            draw, name not in ("SGD", "FTRL", "AdaFactor", "ASGD", "Rprop")
        )
        if name == "AdaFactor" and is_lr_spec(kwargs["weight_decay"]):
            kwargs["weight_decay"] = 0.01
    if name in WITH_LOSS_SCALE and draw.chance(0.4):
        kwargs["loss_scale"] = draw.pick([1.0, 4.0, 1024.0])
    if gc_emulated or draw.chance(0.3):
        groups = random_groups(draw, name, base, steps, gc_anywhere=gc_emulated)
    assign_lr = None
    if not groups and (learning_rate or {}).get("kind") == "static" and draw.chance(0.3):
        assign_lr = {"before_step": draw.integer(2, steps), "value": static_lr(draw, base / 10)}
    params, grads = random_arrays(draw, steps)
    return {
        "id": case_id,
        "optimizer": name,
        "kwargs": kwargs,
        "learning_rate": learning_rate,
        "groups": groups,
        "assign_lr": assign_lr,
        "params": params,
        "grads": grads,
        "note": "fuzz",
    }


# -------------------------------------------------------------------------------------------------
# Invalid configurations


def mutate_invalid(draw: Draw, config: dict) -> dict:
    """Turn a valid config into a (probably) invalid one; the note says what was done."""
    kw = config["kwargs"]
    # Keep CPU-defect settings (``defect()`` in the harness) out of invalid calls.
    if config["optimizer"] == "Momentum":
        kw.pop("use_nesterov", None)
    if config["optimizer"] == "Adagrad":
        kw.pop("update_slots", None)
    if config["optimizer"] == "FTRL":
        kw["l1"] = 0.0
    floats = [
        k for k, v in kw.items() if isinstance(v, float) and k not in ("weight_decay", "loss_scale")
    ]
    choices = [
        "wd_negative",
        "wd_int",
        "loss_scale_bad",
        "lr_negative",
        "lr_int",
        "lr_string",
        "lr_2d",
        "dynamic_empty",
        "unknown_kwarg",
        "bad_group",
    ]
    if floats:
        choices += ["int_for_float"] * 3 + ["out_of_range"] * 3 + ["none_for_float"]
    bools = [k for k, v in kw.items() if isinstance(v, bool)]
    if bools:
        choices.append("int_for_bool")
    what = draw.pick(choices)
    if what == "int_for_float":
        key = draw.pick(floats)
        kw[key] = round(kw[key]) if draw.chance(0.5) else draw.pick([0, 1, 2])
    elif what == "none_for_float":
        kw[draw.pick(floats)] = None
    elif what == "out_of_range":
        key = draw.pick(floats)
        kw[key] = draw.pick([-0.5, -1e-3, 1.0, 1.5, 0.0, 100.0])
    elif what == "int_for_bool":
        kw[draw.pick(bools)] = draw.pick([1, 0, "True"])
    elif what == "wd_negative":
        kw["weight_decay"] = -0.01
    elif what == "wd_int":
        kw["weight_decay"] = draw.pick([0, 1])
    elif what == "loss_scale_bad":
        kw["loss_scale"] = draw.pick([0.0, -1.0, 2, 0.5, "2"])
    elif what in ("lr_negative", "lr_int", "lr_string", "lr_2d", "dynamic_empty"):
        config["learning_rate"] = invalid_lr(draw, what)
        config["assign_lr"] = None
    elif what == "unknown_kwarg":
        kw[draw.pick(["momentum", "use_lazy", "foo", "loss_scale", "weight_decay_rate"])] = 0.9
    else:
        config["groups"] = invalid_groups(draw, config["groups"])
    config["note"] = f"fuzz invalid: {what}"
    return config


def invalid_lr(draw: Draw, what: str) -> Any:
    if what == "lr_negative":
        return draw.pick(
            [
                {"kind": "static", "value": -0.01},
                {"kind": "tensor_scalar", "value": -0.01},
                {"kind": "dynamic", "values": [0.1, -0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]},
            ]
        )
    if what == "lr_int":
        return draw.pick(
            [
                {"kind": "static", "value": 1},
                {"kind": "dynamic", "values": [1, 1, 1, 1, 1, 1, 1, 1]},
            ]
        )
    if what == "lr_string":
        return {"kind": "static", "value": "0.1"}
    if what == "lr_2d":
        return {"kind": "dynamic", "values": [[0.1, 0.2]]}
    return {"kind": "dynamic", "values": []}


def invalid_groups(draw: Draw, groups: list | None) -> list:
    groups = [dict(g) for g in (groups or [{"params": list(NAMES)}]) if "params" in g]
    what = draw.pick(
        [
            "unknown_key",
            "duplicate",
            "order_missing",
            "order_extra",
            "empty_params",
            "gc_int",
            "lr_bad",
            "wd_negative",
            "empty_list",
        ]
    )
    if what == "unknown_key":
        groups[0][draw.pick(["learning_rate", "weight_decays", "momentum"])] = 0.1
    elif what == "duplicate":
        groups.append({"params": [groups[0]["params"][0]]})
    elif what == "order_missing":
        groups.append({"order_params": list(NAMES[:-1])})
    elif what == "order_extra":
        groups.append({"order_params": [*NAMES, "NOT_A_PARAMETER"]})
    elif what == "empty_params":
        groups.append({"params": []})
    elif what == "gc_int":
        groups[0]["grad_centralization"] = 1
    elif what == "lr_bad":
        groups[0]["lr"] = draw.pick(
            [{"kind": "static", "value": -0.1}, {"kind": "static", "value": 1}]
        )
    elif what == "wd_negative":
        groups[0]["weight_decay"] = -0.1
    else:
        groups = []
    return groups


# -------------------------------------------------------------------------------------------------
# Driver


def random_configs(
    seed: int,
    count: int,
    invalid_share: float,
    max_steps: int,
    optimizers: tuple[str, ...],
    gc_emulated: bool = False,
) -> list[dict]:
    configs = []
    for n in range(count):
        draw = Draw(np.random.default_rng([seed, n]))
        config = random_config(draw, f"fuzz-opt-{seed}-{n:04d}", max_steps, optimizers, gc_emulated)
        if draw.chance(invalid_share):
            config = mutate_invalid(draw, config)
        configs.append(config)
    return configs


def resample_configs(path: Path) -> list[dict]:
    """The configurations of an existing golden file (to check the recorder reproduces it)."""
    document = json.loads(path.read_text())
    keys = (
        "id",
        "optimizer",
        "kwargs",
        "learning_rate",
        "groups",
        "assign_lr",
        "params",
        "grads",
        "note",
    )
    configs = []
    for case in document["cases"]:
        if case.get("wrap") or case.get("emulated_kernel"):
            continue
        configs.append({key: case.get(key) for key in keys})
    return configs


def write_family(out: Path, family: str, cases: list[dict], meta: dict) -> None:
    document = {"meta": meta, "family": family, "cases": cases}
    (out / f"{family}.json").write_text(json.dumps(document))


def configs_of(args: argparse.Namespace) -> list[dict]:
    if args.resample:
        return resample_configs(args.resample)
    optimizers = tuple(args.optimizers.split(",")) if args.optimizers else OPTIMIZERS
    return random_configs(
        args.seed, args.count, args.invalid_share, args.max_steps, optimizers, args.gc_emulated
    )


def emulated_centralization(gradient, axis):
    """``Centralization`` has no CPU kernel: ``g - mean(g, axis)`` with ``ReduceMean`` instead
    (the golden ``optimizer_gc_emulated`` cases' emulation)."""
    return gradient - ops.ReduceMean(keep_dims=True)(gradient, tuple(axis))


def centralized(case: dict) -> bool:
    """Some parameter's gradient was centralized (flag on, ndim >= 2, shape[1] % 16 == 0)."""
    shapes = {spec["name"]: spec["shape"] for spec in case["params"]}
    flags = case.get("grad_centralization_flags") or []
    return any(
        flag and len(shapes[name]) >= 2 and shapes[name][1] % 16 == 0
        for name, flag in zip(case.get("param_order") or [], flags)
    )


def run_worker(args: argparse.Namespace) -> int:
    """Record configs ``args.start..`` in this process, one JSON line per case in ``args.lines``."""
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    if args.gc_emulated:
        import mindspore.nn.optim.optimizer as base

        base.op_gc = emulated_centralization
    with args.lines.open("a") as lines:
        for config in configs_of(args)[args.start :]:
            case = record_case(config)
            if args.gc_emulated and case["family"] == "optimizer" and centralized(case):
                case["family"] = "optimizer_gc_emulated"
                case["emulated_kernel"] = "Centralization"
            lines.write(json.dumps(case) + "\n")
            lines.flush()
            outcome = case["error"]["type"] if "error" in case else "ok"
            print(f"{case['id']}: {case['optimizer']} -> {case['family']} ({outcome})", flush=True)
    return 0


def run_workers(args: argparse.Namespace, argv: list[str]) -> tuple[list[dict], list[dict]]:
    """Workers over all configs; a worker MindSpore kills (it segfaults now and then after many
    cases) is replaced by one starting after the case it died in, which is listed as crashed."""
    configs = configs_of(args)
    total = len(configs)
    lines_path = args.out / "cases.jsonl"
    lines_path.unlink(missing_ok=True)
    done: list[dict] = []
    crashed: list[dict] = []
    start = 0
    while start < total:
        command = [
            sys.executable,
            __file__,
            *argv,
            "--worker",
            "--start",
            str(start),
            "--lines",
            str(lines_path),
        ]
        code = subprocess.run(command, check=False).returncode
        done = [json.loads(line) for line in lines_path.read_text().splitlines() if line.strip()]
        start = len(done) + len(crashed)
        if code != 0 and start < total:
            crashed.append({"id": configs[start]["id"], "returncode": code})
            print(f"{configs[start]['id']}: MindSpore died (exit code {code}); skipped", flush=True)
            start += 1
    lines_path.unlink(missing_ok=True)
    return done, crashed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--max-steps", type=int, default=8, help="steps per case: 3 to this (default 8)"
    )
    parser.add_argument(
        "--invalid-share",
        type=float,
        default=0.2,
        help="fraction of cases mutated into invalid calls (default 0.2)",
    )
    parser.add_argument(
        "--optimizers", default="", help="comma-separated subset to draw from (default: all)"
    )
    parser.add_argument(
        "--resample",
        type=Path,
        default=None,
        help="re-record the configurations of this golden file instead",
    )
    parser.add_argument(
        "--gc-emulated",
        action="store_true",
        help="groups with grad_centralization anywhere, Centralization emulated by ReduceMean",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--lines", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args)
    args.out.mkdir(parents=True, exist_ok=True)
    done, crashed = run_workers(args, argv)
    by_family: dict[str, list[dict]] = {"optimizer": [], "optimizer_error": []}
    if args.gc_emulated:
        by_family["optimizer_gc_emulated"] = []
    for case in done:
        by_family[case["family"]].append(case)
    meta = {
        "mindspore": ms.__version__,
        "numpy": np.__version__,
        "mode": "PYNATIVE_MODE",
        "device": "CPU",
        "generator": f"tools/record_golden_optim.py {' '.join(argv)}",
        "float_encoding": FLOAT_ENCODING,
        "crashed": crashed,
    }
    for family, cases in by_family.items():
        write_family(args.out, family, cases, meta)
    print({family: len(cases) for family, cases in by_family.items()}, "crashed:", crashed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
