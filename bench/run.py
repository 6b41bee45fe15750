"""The optimizer benchmark behind ``make bench`` / ``python -m bench``.

For each model's parameter shapes (``bench/shapes.py``) and each optimizer (``bench/variants.py``)
it builds every msoptim path (reference, foreach, fused) and every torch.optim path of the anchor at
the same math (for-loop, foreach, fused), all over the same parameters and gradients, and times
them *interleaved*: each round runs one step of every variant, in a rotating order, and the table
reports the median over rounds. Neighbours on a shared machine slow every variant of a round alike,
so the ratios hold where absolute times swing. The first step of each variant (where msoptim's
fused kernels compile) is reported separately and never timed with the rest.

Also measured in the same run: the memory bandwidth (a large ``copy_`` and a triad), the host reads
of device values per step (``.item()`` and friends: a sync on a GPU), and the cost of MindSpore's
grouped recipe (one group on a ``cosine_decay_lr`` table, one on a ``CosineDecayLR`` schedule, two
static) against one static group, for the same optimizer and path.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import msoptim
from bench.shapes import MODELS, Shape
from bench.variants import SPECS, Spec, torch_paths

ROOT = Path(__file__).resolve().parents[1]
SYNC_OPS = {
    torch.ops.aten._local_scalar_dense.default,
    torch.ops.aten.item.default,
    torch.ops.aten.is_nonzero.default,
}


# ---------------------------------------------------------------------------------------- machine


def machine_description(device: torch.device) -> list[str]:
    """CPU model, cores, threads, torch version, load: what a reader needs to compare runs."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False
        ).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    lines = [
        f"CPU: {model}, {os.cpu_count()} logical cores; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); Python {platform.python_version()}",
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    if device.type == "cuda":
        lines.append(f"GPU: {torch.cuda.get_device_name(device)}")
    else:
        lines.append(f"C kernels' tables: {native_step_description()}")
    return lines


def native_step_description() -> str:
    """Whether the C kernels' tables are checked in C++ (built now if needed) or in Python."""
    from msoptim.kernels import _native

    if _native.step_extension(wait=True) is not None:
        return "checked and filled in C++ (native_step.cpp)"
    return f"Python checks (no C++ table module: {_native.step_extension_unavailable_reason()})"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_bandwidth(device: torch.device, megabytes: int, repeats: int) -> dict[str, float]:
    """Memory bandwidth in GB/s, counting the bytes each op must move (read + written).

    ``copy`` (``a.copy_(b)``, 8 B/element) and ``triad`` (``a = b + s*c``, 12 B) write a
    separate array, which on x86 also costs a read of it (write-allocate) that is not counted;
    ``rmw`` (``a.add_(b)``, 12 B) updates in place, as an optimizer does. The roofline used for
    "% BW" is the best of the three.
    """
    numel = megabytes * (1 << 20) // 4
    a, b, c = (torch.rand(numel, device=device) for _ in range(3))
    results = {}
    for name, moved, fn in (
        ("copy", 8, lambda: a.copy_(b)),
        ("triad", 12, lambda: torch.add(b, c, alpha=0.5, out=a)),
        ("rmw", 12, lambda: a.add_(b, alpha=1e-9)),
    ):
        fn()
        times = []
        for _ in range(repeats):
            _synchronize(device)
            start = time.perf_counter()
            fn()
            _synchronize(device)
            times.append(time.perf_counter() - start)
        results[name] = moved * numel / statistics.median(times) / 1e9
    results["best"] = max(results.values())
    return results


# ---------------------------------------------------------------------------------------- models


def model_shapes(model: str, quick: bool) -> list[Shape]:
    shapes = MODELS[model]()
    if not quick:
        return shapes
    if model == "many-small":
        return [(min(s[0], 64),) for s in shapes[:200]]
    return [tuple(min(d, 8) for d in shape) for shape in shapes]


def make_params(shapes: list[Shape], device: torch.device) -> list[tuple[str, torch.nn.Parameter]]:
    """Parameters with MindSpore-style names (1-D ones are ``bn<i>.gamma``: not weight-decayed)."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    params = []
    for index, shape in enumerate(shapes):
        value = torch.randn(shape, generator=generator).to(device)
        name = f"bn{index}.gamma" if len(shape) == 1 else f"layer{index}.weight"
        params.append((name, torch.nn.Parameter(value)))
    return params


def set_grads(params: list[tuple[str, torch.nn.Parameter]], device: torch.device) -> None:
    generator = torch.Generator(device="cpu").manual_seed(1)
    for _, param in params:
        param.grad = (1e-3 * torch.randn(param.shape, generator=generator)).to(device)


# ---------------------------------------------------------------------------------------- timing


@dataclass
class Variant:
    """One optimizer path being timed."""

    spec: str
    impl: str  # "msoptim" or "torch"
    path: str
    step: Callable[[], Any]
    first_step_s: float = 0.0
    times: list[float] | None = None
    syncs: int | None = 0
    #: Timed once only: its warm-up step took longer than ``--slow-s`` (the full run stays short).
    slow: bool = False

    @property
    def label(self) -> str:
        return f"{self.impl} {self.path}"

    def median_ms(self) -> float:
        return 1e3 * statistics.median(self.times or [float("nan")])


class _CountSyncs(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in SYNC_OPS:
            self.count += 1
        return func(*args, **(kwargs or {}))


def count_syncs(step: Callable[[], Any]) -> int:
    with _CountSyncs() as mode:
        step()
    return mode.count


def _timed(variant: Variant, device: torch.device) -> float:
    _synchronize(device)
    start = time.perf_counter()
    variant.step()
    _synchronize(device)
    return time.perf_counter() - start


def run_rounds(
    variants: list[Variant],
    repeats: int,
    device: torch.device,
    slow_s: float = float("inf"),
    min_seconds: float = 0.0,
) -> None:
    """First step of each (compiles: reported apart), a warm-up step, then interleaved rounds.

    A variant whose warm-up step takes longer than ``slow_s`` keeps that one time (the float64
    reference kernels on GPT-2 take seconds a step); one whose first step takes longer than
    ``3 * slow_s`` keeps that (unless it compiles: ``fused``). After ``repeats`` rounds, more
    follow until the rounds have taken ``min_seconds`` (at most ``ROUNDS_CAP * repeats`` in
    all): a pair of 10 ms steps then gets a hundred rounds, and the median of its per-round
    ratios an error a few times smaller than from twenty.
    """
    for variant in variants:
        variant.first_step_s = _timed(variant, device)
        if "fused" not in variant.path and variant.first_step_s > 3 * slow_s:
            variant.slow, variant.times = True, [variant.first_step_s]  # no compile to exclude
            continue
        warm = _timed(variant, device)
        variant.slow = warm > slow_s
        variant.times = [warm] if variant.slow else []
    started, round_index = time.perf_counter(), 0
    while round_index < repeats or (
        time.perf_counter() - started < min_seconds and round_index < ROUNDS_CAP * repeats
    ):
        shift = round_index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            if not variant.slow:
                variant.times.append(_timed(variant, device))  # type: ignore[union-attr]
        round_index += 1
    for variant in variants:
        variant.syncs = None if variant.slow else count_syncs(variant.step)


#: run_rounds' limit on rounds (times ``repeats``) when it runs more for ``min_seconds``.
ROUNDS_CAP = 10
#: Seconds of rounds behind each paired comparison (head to head, 4 groups against 1).
PAIRED_SECONDS = 4.0

ROOFLINE_BYTES = 12  # a.add_(b): reads a and b, writes a in place, as an optimizer step does


def roofline_variant(spec: Spec, numel: int, device: torch.device) -> Variant:
    """``a.add_(b)`` over ``numel`` elements, timed in the same rounds as the optimizer paths.

    The memory bandwidth swings with the neighbours on a shared machine; measured in the same
    rounds, it slows down with the optimizer steps, so "% BW" (a per-round ratio) holds where
    GB/s does not.
    """
    a = torch.rand(numel, device=device)
    b = torch.rand(numel, device=device)
    return Variant(spec.name, "roofline", "in-place add", lambda: a.add_(b, alpha=1e-9))


def build_variants(
    spec: Spec, params: list[tuple[str, torch.nn.Parameter]], device: torch.device
) -> list[Variant]:
    variants = [roofline_variant(spec, sum(p.numel() for _, p in params), device)]
    for path, impl in spec.paths():
        opt = spec.build(params, **impl)
        variants.append(Variant(spec.name, "msoptim", path, opt.step))
    plain = [param for _, param in params]
    for path, impl in torch_paths(spec, device):
        opt = spec.torch_cls(plain, **spec.torch_kwargs, **impl)  # type: ignore[misc]
        variants.append(Variant(spec.name, "torch", path, opt.step))
    return variants


# ---------------------------------------------------------------------------------------- groups


def seed_groups(params: list[tuple[str, torch.nn.Parameter]], base_lr: float) -> list[dict]:
    """MindSpore's grouping recipe on these shapes: conv weights on a cosine table, 1-D (BN) on
    a schedule, dense weights static, the rest on the default static lr."""
    table = msoptim.cosine_decay_lr(0.1 * base_lr, base_lr, 100_000, 100, 1000)
    conv = [p for n, p in params if p.dim() == 4]
    dense = [p for n, p in params if p.dim() == 2]
    one_d = [p for n, p in params if p.dim() == 1]
    bn, other = one_d[:-1], one_d[-1:]
    groups = [
        {"params": conv, "lr": table},
        {"params": bn, "lr": msoptim.CosineDecayLR(0.1 * base_lr, base_lr, 100_000)},
        {"params": dense, "lr": 0.5 * base_lr},
        {"params": other},
    ]
    return [group for group in groups if group["params"]]


def group_variants(
    spec: Spec, params: list[tuple[str, torch.nn.Parameter]]
) -> list[tuple[str, Variant, Variant]]:
    """(path, one static group, the 4-group seed recipe) for each msoptim path but foreach. Both
    step the same parameters, gradients and state tensors (see :func:`head_to_head`: the cost
    then compares code, not where each one's memory landed)."""
    kwargs = dict(spec.kwargs)
    base_lr = kwargs.get("learning_rate", 1e-3)
    pairs = []
    for path, impl in spec.paths():
        if path == "foreach":
            continue
        cls = getattr(msoptim, spec.name)
        single = cls(params, **kwargs, **impl)
        grouped = cls(seed_groups(params, base_lr), **kwargs, **impl)
        for _, param in params:
            grouped.state[param].update(single.state[param])
        pairs.append(
            (
                path,
                Variant(spec.name, "msoptim", f"{path} 1 group", single.step),
                Variant(spec.name, "msoptim", f"{path} 4 groups", grouped.step),
            )
        )
    return pairs


# ---------------------------------------------------------------------------------------- head to head


def head_to_head(
    spec: Spec,
    params: list[tuple[str, torch.nn.Parameter]],
    device: torch.device,
    rounds: int,
    min_seconds: float = 0.0,
) -> tuple[Variant, Variant, list[float]] | None:
    """msoptim fused against torch's fused anchor alone, alternating: the per-round ratios.

    The main table interleaves six paths, some of them seconds long and allocating; this is the
    quiet comparison behind the ``<= 1.0x`` targets. Both step the same parameters, gradients
    and (``Spec.shared_state``) state tensors, so the ratio compares code, not where each one's
    memory landed: on a VM, two allocations of the same model's tensors can differ by several
    percent a step (8% seen on this project's 2-core VM).
    """
    if spec.torch_cls is None or ("fused", {"fused": True}) not in torch_paths(spec, device):
        return None
    optimizer = spec.build(params, fused=True)
    ours = Variant(spec.name, "msoptim", "fused", optimizer.step)
    plain = [param for _, param in params]
    anchor = spec.torch_cls(plain, **spec.torch_kwargs, fused=True)
    if spec.shared_state:
        anchor.step()  # creates torch's state, which then points at msoptim's tensors
        for param in plain:
            for theirs_key, ours_key in spec.shared_state.items():
                anchor.state[param][theirs_key] = optimizer.state[param][ours_key]
    theirs = Variant(spec.name, "torch", "fused", anchor.step)
    run_rounds([ours, theirs], rounds, device, min_seconds=min_seconds)
    ratios = [a / b for a, b in zip(ours.times or [], theirs.times or [])]
    return ours, theirs, ratios


def head_to_head_line(model: str, result: tuple[Variant, Variant, list[float]]) -> str:
    ours, theirs, ratios = result
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [float("nan")] * 3
    return (
        f"| {model} | {ours.spec} | {_fmt(ours.median_ms())} | {_fmt(theirs.median_ms())} | "
        f"{_fmt(statistics.median(ratios), 3)} | {_fmt(quartiles[0], 3)}-{_fmt(quartiles[2], 3)} | "
        f"{len(ratios)} |"
    )


# ---------------------------------------------------------------------------------------- compile


def compile_costs(optimizer: str, model: str) -> list[str]:
    """First fused step (compiles) in fresh processes: cold (empty Inductor cache), then warm."""
    lines = []
    with tempfile.TemporaryDirectory(prefix="msoptim-bench-inductor-") as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
        )
        for label in ("cold cache", "warm cache"):
            result = subprocess.run(
                [sys.executable, "-m", "bench.compile_cost", optimizer, model],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                check=False,
            )
            if result.returncode != 0:
                lines.append(
                    f"| {optimizer} | {model} | {label} | failed: {result.stderr[-300:]} |"
                )
                continue
            data = json.loads(result.stdout.strip().splitlines()[-1])
            kernels = ", ".join(
                f"{(k['serial'] and 'serial') or 'threaded'} {k['s']:.1f}s" for k in data["kernels"]
            )
            lines.append(
                f"| {optimizer} | {model} | {label} | {data['first_step_s']:.1f} | "
                f"{1e3 * data['next_step_s']:.1f} | {kernels} |"
            )
    return lines


# ---------------------------------------------------------------------------------------- report


def _fmt(value: float, digits: int = 2) -> str:
    return "—" if value != value else f"{value:.{digits}f}"


def report_rows(
    model: str,
    spec: Spec,
    variants: list[Variant],
    shapes: list[tuple[int, ...]],
    bandwidth: float,
) -> list[str]:
    anchors = [v for v in variants if v.impl == "torch" and not v.slow]
    best = min(anchors, key=Variant.median_ms, default=None)
    roofline = next((v for v in variants if v.impl == "roofline"), None)
    numel = sum(math.prod(shape) for shape in shapes)
    least = spec.least_bytes(shapes) if spec.least_bytes is not None else None
    rows = []
    for variant in variants:
        ms = variant.median_ms()
        moved = ROOFLINE_BYTES if variant is roofline else spec.bytes_per_param
        gbs = moved * numel / (ms / 1e3) / 1e9
        mark = " (1 run)" if variant.slow else ""
        syncs = "—" if variant.syncs is None else variant.syncs
        share = bandwidth_share(variant, roofline, moved) if roofline else gbs / bandwidth
        versus = "—" if variant is roofline or best is None else _fmt(paired_ratio(variant, best))
        at_least = "—"
        if least is not None and variant is not roofline:
            at_least = f"{least:.0f}: {_fmt(100 * share * least / moved, 0)}%"
        rows.append(
            f"| {model} | {spec.name} | {variant.label} | {_fmt(ms)}{mark} | "
            f"{versus} | {moved} | {_fmt(gbs, 1)} | "
            f"{_fmt(100 * share, 0)}% | {at_least} | {syncs} | {_fmt(variant.first_step_s, 2)} |"
        )
    return rows


def paired_ratio(variant: Variant, anchor: Variant) -> float:
    """Median over rounds of this path's time / the anchor's time in the same round.

    Each round runs every path once, back to back: a neighbour's burst slows both sides of a
    ratio, where it would move one median and not the other.
    """
    if variant.slow or anchor.slow or not variant.times or not anchor.times:
        return variant.median_ms() / anchor.median_ms()
    return statistics.median(step / base for step, base in zip(variant.times, anchor.times))


def bandwidth_share(variant: Variant, roofline: Variant, moved: int) -> float:
    """Median over rounds of (this path's GB/s) / (the in-place add's GB/s in the same round)."""
    if variant.slow or roofline.slow or not variant.times or not roofline.times:
        return float("nan")
    ratios = [
        (moved / ROOFLINE_BYTES) * add_s / step_s
        for step_s, add_s in zip(variant.times, roofline.times)
    ]
    return statistics.median(ratios)


HEADER = (
    "| model | optimizer | path | ms/step | vs best torch | B/param | GB/s | % BW | "
    "least B/param: % BW | syncs/step | first step (s) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--optimizers", default=",".join(SPECS), help="comma-separated")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5)")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 2 rounds: seconds")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument(
        "--slow-s",
        type=float,
        default=1.0,
        help="time a variant once when its warm-up step takes longer (seconds)",
    )
    parser.add_argument(
        "--groups", default="Momentum,Adam", help="optimizers for the 4-group comparison"
    )
    parser.add_argument(
        "--head-to-head",
        default="Momentum,Adam,AdamWeightDecay",
        help="optimizers timed alone against torch's fused anchor ('' to skip)",
    )
    parser.add_argument(
        "--compile-cost",
        default="Momentum,Adam",
        help="optimizers whose cold/warm first-step compile is measured ('' to skip)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available on this machine.", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (2 if args.quick else 5)
    paired_s = 0.0 if args.quick else PAIRED_SECONDS
    models = [m for m in args.models.split(",") if m]
    names = [n for n in args.optimizers.split(",") if n]
    unknown = [n for n in [*models, *names] if n not in MODELS and n not in SPECS]
    if unknown:
        print(f"unknown: {unknown}; models {list(MODELS)}, optimizers {list(SPECS)}")
        return 2
    started = time.perf_counter()
    print("# msoptim optimizer benchmark")
    print("command: python -m bench " + " ".join(sys.argv[1:] if argv is None else argv))
    for line in machine_description(device):
        print(line)
    bw_before = measure_bandwidth(device, 16 if args.quick else 512, 3 if args.quick else 7)
    print(
        f"memory bandwidth: copy {bw_before['copy']:.1f} GB/s, triad {bw_before['triad']:.1f} "
        f"GB/s, in-place add {bw_before['rmw']:.1f} GB/s (% BW below: of {bw_before['best']:.1f})"
    )
    print()
    print(HEADER)
    group_lines: list[str] = []
    head_lines: list[str] = []
    for model in models:
        params = make_params(model_shapes(model, args.quick), device)
        set_grads(params, device)
        for name in names:
            spec = SPECS[name]
            variants = build_variants(spec, params, device)
            run_rounds(variants, repeats, device, args.slow_s)
            shapes = [tuple(param.shape) for _, param in params]
            for row in report_rows(model, spec, variants, shapes, bw_before["best"]):
                print(row, flush=True)
            del variants
            gc.collect()
        for name in [n for n in args.head_to_head.split(",") if n in SPECS and n in names]:
            result = head_to_head(SPECS[name], params, device, max(4 * repeats, 9), paired_s)
            if result is not None:
                head_lines.append(head_to_head_line(model, result))
            del result
            gc.collect()
        if model == models[0]:
            for name in [n for n in args.groups.split(",") if n in SPECS and n in names]:
                for path, single, grouped in group_variants(SPECS[name], params):
                    run_rounds(
                        [single, grouped], max(4 * repeats, 9), device, args.slow_s, paired_s
                    )
                    ratio = paired_ratio(grouped, single)
                    ratios = [a / b for a, b in zip(grouped.times or [], single.times or [])]
                    spread = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratio] * 3
                    group_lines.append(
                        f"| {model} | {name} | {path} | {_fmt(single.median_ms())} | "
                        f"{_fmt(grouped.median_ms())} | {100 * (ratio - 1):+.1f}% | "
                        f"{100 * (spread[0] - 1):+.1f}% to {100 * (spread[2] - 1):+.1f}% | "
                        f"{len(ratios)} |"
                    )
                    del single, grouped
                    gc.collect()
        del params
        gc.collect()
    if head_lines:
        print()
        print("msoptim fused vs torch fused alone, alternating (ratio: median of per-round ratios)")
        print()
        print(
            "| model | optimizer | msoptim fused ms | torch fused ms | ratio | quartiles | rounds |"
        )
        print("|---|---|---|---|---|---|---|")
        print("\n".join(head_lines))
    if group_lines:
        print()
        print(
            "| model | optimizer | path | 1 static group ms | 4-group seed recipe ms | cost | "
            "quartiles | rounds |"
        )
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(group_lines))
    if args.compile_cost and not args.quick and device.type == "cpu":
        print()
        print(
            "| optimizer | model | Inductor cache | first fused step (s) | next step (ms) | kernels compiled |"
        )
        print("|---|---|---|---|---|---|")
        for name in [n for n in args.compile_cost.split(",") if n in SPECS]:
            for line in compile_costs(name, models[0]):
                print(line, flush=True)
    bw_after = measure_bandwidth(device, 16 if args.quick else 512, 3 if args.quick else 7)
    print()
    print(
        f"memory bandwidth at the end: copy {bw_after['copy']:.1f} GB/s, triad "
        f"{bw_after['triad']:.1f} GB/s, in-place add {bw_after['rmw']:.1f} GB/s; load average at "
        "the end: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; total {time.perf_counter() - started:.0f} s"
    )
    return 0
