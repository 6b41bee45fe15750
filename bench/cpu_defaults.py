"""What an optimizer built with no ``fused``/``foreach`` argument runs on CPU, against the reference.

AdaFactor, Lamb, LARS, Momentum, SGD, Adam and AdamWeightDecay take their C kernels by default on CPU
(nothing to compile per process); this times that default against ``foreach=False`` (the reference) on a
model's shapes, in alternating rounds. Usage::

    PYTHONPATH=src:. python -m bench.cpu_defaults [--model resnet50] [--rounds 7] [--fused]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

import msoptim
from bench.run import native_step_description
from bench.shapes import MODELS

Params = list[tuple[str, torch.nn.Parameter]]

BUILDERS: dict[str, Callable[[Params, dict[str, Any]], Any]] = {
    "LARS(Momentum)": lambda ps, impl: msoptim.LARS(
        msoptim.Momentum(ps, 0.1, 0.9, weight_decay=1e-4, **impl)
    ),
    "Momentum": lambda ps, impl: msoptim.Momentum(ps, 0.1, 0.9, **impl),
    "SGD": lambda ps, impl: msoptim.SGD(ps, 0.1, momentum=0.9, **impl),
    "Lamb": lambda ps, impl: msoptim.Lamb(ps, 0.01, weight_decay=0.01, **impl),
    "AdaFactor": lambda ps, impl: msoptim.AdaFactor(ps, **impl),
    "Adam": lambda ps, impl: msoptim.Adam(ps, 1e-3, **impl),
    "AdamWeightDecay": lambda ps, impl: msoptim.AdamWeightDecay(
        ps, 1e-3, weight_decay=0.01, **impl
    ),
}


def _params(model: str) -> Params:
    gen = torch.Generator().manual_seed(0)
    return [
        (f"layer{i}.weight" if len(shape) > 1 else f"norm{i}.beta", torch.nn.Parameter(
            torch.randn(shape, generator=gen)))
        for i, shape in enumerate(MODELS[model]())
    ]  # fmt: skip


def _stepper(name: str, model: str, impl: dict[str, Any]) -> Callable[[], float]:
    params = _params(model)
    opt = BUILDERS[name](params, impl)
    for _, param in params:
        param.grad = torch.randn_like(param) * 0.01
    opt.step()  # state, and any build

    def step() -> float:
        start = time.perf_counter()
        opt.step()
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50", choices=sorted(MODELS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--fused", action="store_true", help="also time fused=True (compiles on its first step)"
    )
    parser.add_argument("--optimizers", default=",".join(BUILDERS), help="comma-separated")
    args = parser.parse_args()
    impls = {"default": {}, "reference": {"foreach": False}}
    if args.fused:
        impls["fused"] = {"fused": True}
    print(f"model {args.model}, {torch.get_num_threads()} threads, median of {args.rounds} rounds")
    print(f"C kernels' tables: {native_step_description()}")
    fused_head = " fused=True ms | default / fused (median of rounds) |" if args.fused else ""
    print(f"| optimizer | default ms | reference (foreach=False) ms | speed-up |{fused_head}")
    print("|---|---|---|---|" + ("---|---|" if args.fused else ""))
    for name in args.optimizers.split(","):
        steppers = {impl: _stepper(name, args.model, kwargs) for impl, kwargs in impls.items()}
        times: dict[str, list[float]] = {impl: [] for impl in impls}
        for _ in range(args.rounds):
            for impl, step in steppers.items():
                times[impl].append(step())
        ms = {impl: statistics.median(values) * 1e3 for impl, values in times.items()}
        line = f"| {name} | {_milliseconds(ms['default'])} | {_milliseconds(ms['reference'])} | "
        line += f"{ms['reference'] / ms['default']:.1f}x |"
        if args.fused:
            ratios = [a / b for a, b in zip(times["default"], times["fused"])]
            line += f" {_milliseconds(ms['fused'])} | {statistics.median(ratios):.3f} |"
        print(line)


def _milliseconds(value: float) -> str:
    """One decimal for real models' steps, three for tiny ones (which would print as 0.0)."""
    return f"{value:.1f}" if value >= 1 else f"{value:.3f}"


if __name__ == "__main__":
    main()
