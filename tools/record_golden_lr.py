"""Record golden lr-function and lr-schedule cases from real MindSpore 2.10 on random arguments.

The sample in ``tests/golden`` was recorded from hand-picked arguments. This recorder draws argument
sets at random, runs them through real MindSpore (CPU, PyNative) and writes what MindSpore did in the
golden-case schema (``tests/golden/README.md``), so that ``tests/golden_replay.py`` replays them
against msoptim unchanged. It covers four families:

``lr_function`` / ``lr_function_error``
    ``mindspore.nn.<function>(**kwargs)`` for the seven dynamic-lr functions. Valid draws that
    MindSpore accepts become ``lr_function`` cases (``expect``: the float64 list as returned);
    everything MindSpore rejects, and every deliberately invalid draw, becomes an
    ``lr_function_error`` case (``error``, or ``error: null`` plus ``expect`` when it was accepted).
``schedule`` / ``schedule_error``
    ``cell = mindspore.nn.<Class>(**kwargs)``; ``expect[i] = cell(Tensor(steps[i], mindspore.int32))``
    written as the shortest float32 decimal. Filed the same way as the lr functions.

Run it with the MindSpore environment (no torch needed), then replay with msoptim's::

    /tmp/msvenv/bin/python tools/record_golden_lr.py --seed 1 --count 200 --out /tmp/fuzz_lr/s1
    PYTHONPATH=src .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_golden.py \
        --golden-dir /tmp/fuzz_lr/s1 -k "lr_function or schedule"

(``test_every_family_is_present_and_replayed`` fails on such a directory: it holds four families.)

``--count`` is the number of draws per family kind: ``count`` valid and ``count`` invalid draws for
the lr functions, the same for the schedules. Case ids are ``fuzz-lr-<seed>-<n>-<name>``, unique and
distinct from the sample's. The same seed gives the same files. Draws whose outcome cannot be
expressed in the schema (a schedule accepted at construction that fails when called, a result that
is not a list of floats) are not written as cases; they are listed in ``not_recorded.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("GLOG_v", "3")  # MindSpore's C++ log: errors only

import mindspore
import numpy as np

MINDSPORE_VERSION = mindspore.__version__

LR_FUNCTIONS = (
    "piecewise_constant_lr",
    "exponential_decay_lr",
    "natural_exp_decay_lr",
    "inverse_decay_lr",
    "cosine_decay_lr",
    "polynomial_decay_lr",
    "warmup_lr",
)
SCHEDULES = (
    "ExponentialDecayLR",
    "NaturalExpDecayLR",
    "InverseDecayLR",
    "CosineDecayLR",
    "PolynomialDecayLR",
    "WarmUpLR",
)

# Each argument's kind: it picks the invalid values tried for it (``BAD_VALUES``).
DECAY_FUNCTION_ARGS = {
    "learning_rate": "positive_float",
    "decay_rate": "positive_float",
    "total_step": "positive_int",
    "step_per_epoch": "positive_int",
    "decay_epoch": "positive_int",
    "is_stair": "bool",
}
LR_FUNCTION_ARGS = {
    "piecewise_constant_lr": {"milestone": "milestones", "learning_rates": "float_list"},
    "exponential_decay_lr": DECAY_FUNCTION_ARGS,
    "natural_exp_decay_lr": DECAY_FUNCTION_ARGS,
    "inverse_decay_lr": DECAY_FUNCTION_ARGS,
    "cosine_decay_lr": {
        "min_lr": "non_negative_float",
        "max_lr": "positive_float",
        "total_step": "positive_int",
        "step_per_epoch": "positive_int",
        "decay_epoch": "positive_int",
    },
    "polynomial_decay_lr": {
        "learning_rate": "positive_float",
        "end_learning_rate": "non_negative_float",
        "total_step": "positive_int",
        "step_per_epoch": "positive_int",
        "decay_epoch": "positive_int",
        "power": "positive_float",
        "update_decay_epoch": "bool",
    },
    "warmup_lr": {
        "learning_rate": "non_negative_float",
        "total_step": "positive_int",
        "step_per_epoch": "positive_int",
        "warmup_epoch": "positive_int",
    },
}
DECAY_SCHEDULE_ARGS = {
    "learning_rate": "positive_float",
    "decay_rate": "positive_float",
    "decay_steps": "positive_int",
    "is_stair": "bool",
}
SCHEDULE_ARGS = {
    "ExponentialDecayLR": DECAY_SCHEDULE_ARGS,
    "NaturalExpDecayLR": DECAY_SCHEDULE_ARGS,
    "InverseDecayLR": DECAY_SCHEDULE_ARGS,
    "CosineDecayLR": {
        "min_lr": "non_negative_float",
        "max_lr": "positive_float",
        "decay_steps": "positive_int",
    },
    "PolynomialDecayLR": {
        "learning_rate": "positive_float",
        "end_learning_rate": "non_negative_float",
        "decay_steps": "positive_int",
        "power": "positive_float",
        "update_decay_steps": "bool",
    },
    "WarmUpLR": {"learning_rate": "non_negative_float", "warmup_steps": "positive_int"},
}

NAN, INF = float("nan"), float("inf")
NON_FINITE = [NAN, INF, -INF]
BAD_VALUES = {
    "positive_float": [1, 0, 2, 0.0, -0.1, -1e-7, True, False, "0.1", None, [0.1], *NON_FINITE],
    "non_negative_float": [0, 1, -0.1, -1e-7, -0.0, True, False, "0.0", None, [0.0], NAN, INF],
    "positive_int": [0, -1, -7, 2.0, 1.5, 0.0, True, False, "3", None, [3], NAN, INF],
    "bool": [0, 1, "True", None, 1.0, [True]],
    "milestones": [5, "1,2", None, {"a": 1}, 2.5],
    "float_list": [0.1, "0.1", None, {"a": 0.1}],
}
ODD_FLOATS = [0.1, 1e-7, 3.3, 0.5, 1.0, 0.9, 0.05, 0.001, 2.5, 0.123456789, 7.0, 0.3, 1e-4, 0.99]
DECAY_RATES = [0.1, 0.5, 0.9, 0.96, 0.99, 1.5, 2.0, 3.3, 1e-7, 0.3, 1.0]
EXTREME_FLOATS = [1e10, 1e30, 1e300, 1e-30, 1e-300, 5e-324]
LARGE_STEPS = [10**5, 10**6, 2**24 + 1, 10**7 + 3, 2**31 - 1]

META = {
    "mindspore": MINDSPORE_VERSION,
    "numpy": np.__version__,
    "mode": "PYNATIVE_MODE",
    "device": "CPU",
    "generator": "tools/record_golden_lr.py",
    "float_encoding": (
        "float32 values are the shortest decimal that round-trips through float32: parse as float64"
        " then cast to float32 to get the exact bits; lr_function outputs are python float64 values"
    ),
}

# -------------------------------------------------------------------------------------------------
# Drawing values


def draw_float(rng: random.Random, low: float = 1e-6, high: float = 10.0) -> float:
    """A positive float: an odd fixed value, a short decimal, a full-precision random value, or
    (rarely) an extreme one that overflows or underflows float32 or the float64 formulas."""
    pick = rng.random()
    if pick < 0.04:
        return rng.choice(EXTREME_FLOATS)
    if pick < 0.35:
        return rng.choice(ODD_FLOATS)
    value = math.exp(rng.uniform(math.log(low), math.log(high)))
    if pick < 0.7:
        return float(f"{value:.{rng.randint(1, 4)}g}")
    return value


def draw_decay_rate(rng: random.Random) -> float:
    """Mostly below 1, sometimes above; rarely huge, so that ``decay_rate ** x`` overflows."""
    pick = rng.random()
    if pick < 0.05:
        return rng.choice([1e10, 1e30, 1e300])
    return rng.choice(DECAY_RATES) if pick < 0.5 else draw_float(rng, 1e-3, 4.0)


def draw_power(rng: random.Random) -> float:
    """Below and above 1, integral and not, and 1e-7 (within MindSpore's 1e-6 of an integer)."""
    if rng.random() < 0.5:
        return rng.choice([0.5, 1.0, 2.0, 3.0, 0.1, 3.3, 1e-7])
    return draw_float(rng, 0.05, 6.0)


def draw_total_step(rng: random.Random) -> int:
    return rng.randint(100, 3000) if rng.random() < 0.15 else rng.randint(1, 60)


def draw_step_per_epoch(rng: random.Random, total_step: int) -> int:
    pick = rng.random()
    if pick < 0.2:
        return 1
    if pick < 0.3:
        return total_step + rng.randint(0, 5)  # a single (partial) epoch
    return rng.randint(1, max(1, min(total_step, 15)))


def draw_epoch_count(rng: random.Random, total_step: int, step_per_epoch: int) -> int:
    """decay/warmup epochs: mostly within the run, sometimes beyond its number of epochs."""
    epochs = math.ceil(total_step / step_per_epoch)
    if rng.random() < 0.25:
        return epochs + rng.randint(0, 20)
    return rng.randint(1, max(1, min(epochs, 20)))


def draw_steps_count(rng: random.Random) -> int:
    """decay_steps / warmup_steps between 1 and 1000, mostly small."""
    pick = rng.random()
    if pick < 0.1:
        return 1
    return rng.randint(1, 20) if pick < 0.6 else rng.randint(21, 1000)


def maybe_flag(rng: random.Random, kwargs: dict, name: str) -> None:
    """A bool argument with a default: left out, False or True."""
    pick = rng.random()
    if pick < 0.6:
        kwargs[name] = pick < 0.4
    # else: left at MindSpore's default


# -------------------------------------------------------------------------------------------------
# Valid argument sets


def epochs_kwargs(rng: random.Random, epoch_name: str = "decay_epoch") -> dict:
    total_step = draw_total_step(rng)
    step_per_epoch = draw_step_per_epoch(rng, total_step)
    return {
        "total_step": total_step,
        "step_per_epoch": step_per_epoch,
        epoch_name: draw_epoch_count(rng, total_step, step_per_epoch),
    }


def valid_piecewise(rng: random.Random) -> dict:
    size = rng.randint(1, 6)
    milestones, last = [], 0
    for _ in range(size):
        last += 0 if rng.random() < 0.1 else rng.randint(1, 12 if rng.random() < 0.9 else 400)
        milestones.append(max(last, 1))
    return {"milestone": milestones, "learning_rates": [draw_float(rng) for _ in range(size)]}


def valid_decay(rng: random.Random) -> dict:
    kwargs = {"learning_rate": draw_float(rng), "decay_rate": draw_decay_rate(rng)}
    kwargs.update(epochs_kwargs(rng))
    maybe_flag(rng, kwargs, "is_stair")
    return kwargs


def valid_cosine(rng: random.Random) -> dict:
    max_lr = draw_float(rng)
    pick = rng.random()
    if pick < 0.3:
        min_lr = 0.0
    elif pick < 0.35:
        min_lr = max_lr  # rejected by MindSpore: filed as lr_function_error
    else:
        min_lr = max_lr * rng.choice([0.1, rng.random()])
    return {"min_lr": min_lr, "max_lr": max_lr, **epochs_kwargs(rng)}


def valid_polynomial(rng: random.Random) -> dict:
    learning_rate = draw_float(rng)
    pick = rng.random()
    if pick < 0.25:
        end = 0.0
    elif pick < 0.45:
        end = learning_rate * rng.uniform(1.0, 5.0)  # end above start: the lr rises
    else:
        end = learning_rate * rng.choice([0.1, 0.01, rng.random()])
    kwargs = {"learning_rate": learning_rate, "end_learning_rate": end, **epochs_kwargs(rng)}
    kwargs["power"] = draw_power(rng)
    maybe_flag(rng, kwargs, "update_decay_epoch")
    return kwargs


def valid_warmup(rng: random.Random) -> dict:
    learning_rate = 0.0 if rng.random() < 0.1 else draw_float(rng)
    return {"learning_rate": learning_rate, **epochs_kwargs(rng, "warmup_epoch")}


VALID_LR_FUNCTION: dict[str, Callable[[random.Random], dict]] = {
    "piecewise_constant_lr": valid_piecewise,
    "exponential_decay_lr": valid_decay,
    "natural_exp_decay_lr": valid_decay,
    "inverse_decay_lr": valid_decay,
    "cosine_decay_lr": valid_cosine,
    "polynomial_decay_lr": valid_polynomial,
    "warmup_lr": valid_warmup,
}


def valid_decay_schedule(rng: random.Random) -> dict:
    kwargs = {
        "learning_rate": draw_float(rng),
        "decay_rate": draw_decay_rate(rng),
        "decay_steps": draw_steps_count(rng),
    }
    maybe_flag(rng, kwargs, "is_stair")
    return kwargs


def valid_cosine_schedule(rng: random.Random) -> dict:
    kwargs = valid_cosine(rng)
    del kwargs["total_step"], kwargs["step_per_epoch"], kwargs["decay_epoch"]
    return {**kwargs, "decay_steps": draw_steps_count(rng)}


def valid_polynomial_schedule(rng: random.Random) -> dict:
    kwargs = valid_polynomial(rng)
    out = {key: kwargs[key] for key in ("learning_rate", "end_learning_rate", "power")}
    out["decay_steps"] = draw_steps_count(rng)
    if "update_decay_epoch" in kwargs:
        out["update_decay_steps"] = kwargs["update_decay_epoch"]
    return out


def valid_warmup_schedule(rng: random.Random) -> dict:
    learning_rate = 0.0 if rng.random() < 0.1 else draw_float(rng)
    return {"learning_rate": learning_rate, "warmup_steps": draw_steps_count(rng)}


VALID_SCHEDULE: dict[str, Callable[[random.Random], dict]] = {
    "ExponentialDecayLR": valid_decay_schedule,
    "NaturalExpDecayLR": valid_decay_schedule,
    "InverseDecayLR": valid_decay_schedule,
    "CosineDecayLR": valid_cosine_schedule,
    "PolynomialDecayLR": valid_polynomial_schedule,
    "WarmUpLR": valid_warmup_schedule,
}


def draw_steps(rng: random.Random, kwargs: dict) -> list[int]:
    """Steps 0..a few past the schedule's length, its boundaries, random ones, maybe large ones."""
    length = kwargs.get("decay_steps", kwargs.get("warmup_steps"))
    length = length if isinstance(length, int) and 0 < length <= 10**6 else 10
    steps = set(range(min(length + 3, 24)))
    steps |= {length - 1, length, length + 1, 2 * length, 2 * length + 1, 3 * length + 2}
    steps |= {rng.randint(0, 4 * length) for _ in range(6)}
    if rng.random() < 0.35:
        steps |= set(rng.sample(LARGE_STEPS, rng.randint(1, 3)))
    return sorted(step for step in steps if 0 <= step < 2**31)


# -------------------------------------------------------------------------------------------------
# Invalid argument sets: one or two arguments replaced, or an argument missing / unknown


def mutate_piecewise(rng: random.Random, kwargs: dict) -> dict:
    milestones, rates = list(kwargs["milestone"]), list(kwargs["learning_rates"])
    i = rng.randrange(len(milestones))
    mutations = [
        lambda: milestones.__setitem__(i, rng.choice([0, -1, 2.0, True, "3", None, [2], NAN])),
        lambda: rates.__setitem__(i, rng.choice([1, 0, -0.5, True, "0.1", None, [0.1], NAN, INF])),
        lambda: milestones.reverse() if len(set(milestones)) > 1 else milestones.append(0),
        lambda: milestones.append(milestones[-1] - rng.randint(0, 3)),
        lambda: rates.append(draw_float(rng)),
        lambda: (milestones.clear(), rates.clear()),
        lambda: milestones.insert(0, milestones[0]) or rates.insert(0, draw_float(rng)),
    ]
    rng.choice(mutations)()
    out = {"milestone": milestones, "learning_rates": rates}
    if rng.random() < 0.15:
        key = rng.choice(list(out))
        out[key] = rng.choice(BAD_VALUES["milestones" if key == "milestone" else "float_list"])
    return out


def mutate(rng: random.Random, kwargs: dict, arg_kinds: dict[str, str]) -> dict:
    """``kwargs`` with one or two arguments given a value of the wrong type or range."""
    out = dict(kwargs)
    pick = rng.random()
    if pick < 0.04:
        out.pop(rng.choice([name for name in arg_kinds if name in out]))
        return out
    if pick < 0.07:
        out["unknown_arg"] = 1
        return out
    for name in rng.sample(sorted(arg_kinds), 1 if rng.random() < 0.8 else 2):
        out[name] = rng.choice(BAD_VALUES[arg_kinds[name]])
    return out


def invalid_lr_function(rng: random.Random, name: str) -> dict:
    kwargs = VALID_LR_FUNCTION[name](rng)
    if name == "piecewise_constant_lr" and rng.random() < 0.7:
        return mutate_piecewise(rng, kwargs)
    if name == "cosine_decay_lr" and rng.random() < 0.1:
        return {**kwargs, "min_lr": kwargs["max_lr"] * rng.choice([1.0, 1.5])}
    return mutate(rng, kwargs, LR_FUNCTION_ARGS[name])


def invalid_schedule(rng: random.Random, name: str) -> dict:
    kwargs = VALID_SCHEDULE[name](rng)
    if name == "CosineDecayLR" and rng.random() < 0.1:
        return {**kwargs, "min_lr": kwargs["max_lr"] * rng.choice([1.0, 1.5])}
    return mutate(rng, kwargs, SCHEDULE_ARGS[name])


def with_tuples(rng: random.Random, kwargs: dict) -> dict:
    """Sometimes pass a list argument as a tuple (recorded in ``tuple_args``)."""
    return {
        key: tuple(value) if isinstance(value, list) and rng.random() < 0.3 else value
        for key, value in kwargs.items()
    }


# -------------------------------------------------------------------------------------------------
# Running MindSpore and encoding results


def error_record(exc: BaseException) -> dict:
    """``{type, message, full_message}``: first line, and the text without C++/graph call stacks."""
    text = str(exc)
    cut = re.search(r"\n*-{20,}\n- (C\+\+ Call Stack|The Traceback|Framework)", text)
    full = (text[: cut.start()] if cut else text).rstrip()
    return {"type": type(exc).__name__, "message": full.split("\n", 1)[0], "full_message": full}


def float32_decimal(value: Any) -> float:
    return float(str(np.float32(value)))


def run_lr_function(name: str, kwargs: dict) -> tuple[list | None, dict | None]:
    try:
        return getattr(mindspore.nn, name)(**kwargs), None
    except Exception as exc:  # every MindSpore exception is a result
        return None, error_record(exc)


def build_cell(name: str, kwargs: dict) -> tuple[Any, dict | None]:
    try:
        return getattr(mindspore.nn, name)(**kwargs), None
    except Exception as exc:
        return None, error_record(exc)


def evaluate_cell(cell: Any, steps: list[int]) -> tuple[list[float], str]:
    outputs = [cell(mindspore.Tensor(step, mindspore.int32)) for step in steps]
    dtypes = {str(out.dtype) for out in outputs}
    assert len(dtypes) == 1, dtypes
    return [float32_decimal(out.asnumpy()) for out in outputs], dtypes.pop()


def py_source(value: Any) -> str:
    """Python source for a recorded value (``float('nan')`` rather than ``nan``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float('{value}')"
    if isinstance(value, list):
        return "[" + ", ".join(map(py_source, value)) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(map(py_source, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_source(k)}: {py_source(v)}" for k, v in value.items()) + "}"
    return repr(value)


def call_source(name: str, kwargs: dict) -> str:
    args = ", ".join(f"{key}={py_source(value)}" for key, value in kwargs.items())
    return f"mindspore.nn.{name}({args})"


def json_kwargs(kwargs: dict) -> tuple[dict, list[str]]:
    """kwargs with top-level tuples as lists, and the names that were tuples."""
    tuple_args = [key for key, value in kwargs.items() if isinstance(value, tuple)]
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}, tuple_args


def is_float_list(values: Any) -> bool:
    return isinstance(values, list) and all(type(value) is float for value in values)


# -------------------------------------------------------------------------------------------------
# Cases


class Recorder:
    """Collects cases by family; numbers them ``fuzz-lr-<seed>-<n>-<name>``."""

    def __init__(self, seed: int):
        self.seed = seed
        self.cases: dict[str, list[dict]] = {}
        self.not_recorded: list[dict] = []
        self.seen: set[str] = set()
        self.number = 0

    def add(self, family: str, name: str, case: dict) -> None:
        self.number += 1
        case["mindspore_version"] = MINDSPORE_VERSION
        case["id"] = f"fuzz-lr-{self.seed}-{self.number:04d}-{name}"
        self.cases.setdefault(family, []).append(case)

    def is_new(self, call: str) -> bool:
        if call in self.seen:
            return False
        self.seen.add(call)
        return True

    def lr_function(self, name: str, kwargs: dict, meant_valid: bool) -> None:
        call = call_source(name, kwargs)
        if not self.is_new(call):
            return
        result, error = run_lr_function(name, kwargs)
        if error is None and not is_float_list(result):
            self.not_recorded.append({"call": call, "why": f"returned {result!r:.200}"})
            return
        recorded, tuple_args = json_kwargs(kwargs)
        family = "lr_function" if meant_valid and error is None else "lr_function_error"
        case = {"family": family, "function": name, "kwargs": recorded, "call": call}
        case["tuple_args"] = tuple_args
        if family == "lr_function":
            case.update(expect=result, expect_note="python floats (float64), exact")
        else:
            case["error"] = error
            if error is None:
                case["expect"] = result
        self.add(family, name, case)

    def schedule(self, name: str, kwargs: dict, steps: list[int], meant_valid: bool) -> None:
        construct = call_source(name, kwargs)
        if not self.is_new(construct):
            return
        cell, error = build_cell(name, kwargs)
        expect, dtype = None, None
        if error is None:
            try:
                expect, dtype = evaluate_cell(cell, steps)
            except Exception as exc:
                why = f"constructed, then the call raised {error_record(exc)}"
                self.not_recorded.append({"call": construct, "steps": steps, "why": why})
                return
        recorded, tuple_args = json_kwargs(kwargs)
        family = "schedule" if meant_valid and error is None else "schedule_error"
        case = {"family": family, "class": name, "kwargs": recorded}
        if error is not None:
            case.update(call=construct, error=error)
            if tuple_args:  # without tuple_args the replay would turn every list into a tuple
                case["tuple_args"] = tuple_args
            self.add(family, name, case)
            return
        if tuple_args or any(isinstance(value, list) for value in recorded.values()):
            case["tuple_args"] = tuple_args
        case["steps"] = steps
        case["call"] = f"cell = {construct}; [cell(Tensor(s, mindspore.int32)) for s in steps]"
        if family == "schedule_error":
            case["error"] = None
        case.update(expect=expect, expect_dtype=dtype, expect_note="float32 values")
        self.add(family, name, case)


def record_all(seed: int, count: int) -> Recorder:
    rng = random.Random(seed)
    recorder = Recorder(seed)
    for _ in range(count):
        name = rng.choice(LR_FUNCTIONS)
        recorder.lr_function(name, with_tuples(rng, VALID_LR_FUNCTION[name](rng)), True)
    for _ in range(count):
        name = rng.choice(LR_FUNCTIONS)
        recorder.lr_function(name, with_tuples(rng, invalid_lr_function(rng, name)), False)
    for _ in range(count):
        name = rng.choice(SCHEDULES)
        kwargs = VALID_SCHEDULE[name](rng)
        recorder.schedule(name, kwargs, draw_steps(rng, kwargs), True)
    for _ in range(count):
        name = rng.choice(SCHEDULES)
        kwargs = invalid_schedule(rng, name)
        recorder.schedule(name, kwargs, draw_steps(rng, kwargs), False)
    return recorder


def write(recorder: Recorder, out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    index = {"meta": meta, "files": {}}
    for family in ("lr_function", "lr_function_error", "schedule", "schedule_error"):
        cases = recorder.cases.get(family, [])
        document = {"meta": meta, "family": family, "cases": cases}
        (out / f"{family}.json").write_text(json.dumps(document, indent=1) + "\n")
        index["files"][f"{family}.json"] = {"count": len(cases), "ids": [c["id"] for c in cases]}
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    lines = [json.dumps(entry) for entry in recorder.not_recorded]
    (out / "not_recorded.jsonl").write_text("".join(line + "\n" for line in lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=100, help="draws per family kind")
    parser.add_argument("--out", type=Path, required=True, help="directory for the *.json files")
    args = parser.parse_args(argv)
    mindspore.set_context(mode=mindspore.PYNATIVE_MODE)
    mindspore.set_device("CPU")
    recorder = record_all(args.seed, args.count)
    write(recorder, args.out, {**META, "seed": args.seed, "count": args.count})
    counts = {family: len(cases) for family, cases in recorder.cases.items()}
    print(f"{args.out}: {counts}, not recorded: {len(recorder.not_recorded)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
