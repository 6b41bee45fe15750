"""GPU: each optimizer step timed eagerly and as a CUDA-graph replay, against the copy roofline.

``python -m bench.cuda_graph [--models gpt2-small,resnet50] [--optimizers Adam,Momentum]
[--groups Adam,Momentum] [--paths fused]``

A step launched from Python pays the host's launch cost per kernel; a captured step (one
``torch.cuda.graph`` of ``opt.step()``, replayed) pays the device time alone. Both are timed with
CUDA events (median of ``--repeats`` steps, after warm-up), for every msoptim path and torch's
foreach and fused paths of the anchor at the same bytes per parameter (torch's with
``capturable=True`` when captured). Effective GB/s = bytes per parameter × parameters / time, and
"% copy" is that over a large device-to-device ``copy_`` measured in the same run (bytes read plus
written). Needs CUDA.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
from collections.abc import Callable
from typing import Any

import torch

import msoptim
from bench.run import make_params, model_shapes, seed_groups, set_grads
from bench.shapes import MODELS
from bench.variants import SPECS, Spec


def copy_bandwidth(megabytes: int = 2048, repeats: int = 20) -> float:
    """GB/s of a device-to-device ``copy_``, counting bytes read plus bytes written."""
    numel = megabytes * (1 << 20) // 4
    a, b = torch.rand(numel, device="cuda"), torch.rand(numel, device="cuda")
    return 8 * numel / device_ms(lambda: a.copy_(b), repeats) / 1e6


def device_ms(step: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Median milliseconds of ``step`` between CUDA events (host launch time included)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


class Captured:
    """A step warmed up on a side stream and captured once in a CUDA graph; calling it replays
    the graph. It holds the step (its optimizer owns every tensor the graph reads and writes)
    for as long as the replay is kept."""

    def __init__(self, step: Callable[[], Any]) -> None:
        self.step = step
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                step()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            step()

    def __call__(self) -> None:
        self.graph.replay()


def variants(spec: Spec, params: list[tuple[str, torch.nn.Parameter]]) -> list[tuple[str, Any]]:
    """(label, builder(graphed) -> optimizer) for msoptim's paths and torch's foreach/fused."""
    out: list[tuple[str, Any]] = []
    for path, impl in spec.paths():
        out.append((f"msoptim {path}", lambda graphed, impl=impl: spec.build(params, **impl)))
    plain = [p for _, p in params]
    if spec.torch_cls is not None:
        for path, impl in (("foreach", {"foreach": True}), ("fused", {"fused": True})):

            def build(graphed: bool, impl: dict = impl) -> torch.optim.Optimizer:
                accepts = "capturable" in inspect.signature(spec.torch_cls).parameters
                extra = {"capturable": True} if graphed and accepts else {}
                return spec.torch_cls(plain, **spec.torch_kwargs, **impl, **extra)  # type: ignore[misc]

            out.append((f"torch {path}", build))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cuda_graph", description=__doc__)
    parser.add_argument("--models", default="gpt2-small,resnet50")
    parser.add_argument("--optimizers", default="Adam,AdamWeightDecay,Momentum")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--groups", default="Adam,Momentum", help="4-group cost ('' to skip)")
    parser.add_argument(
        "--paths", default="", help="only these paths of each side, e.g. 'fused' (all)"
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("CUDA is not available on this machine.", file=sys.stderr)
        return 2
    copy = copy_bandwidth()
    print(f"GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}")
    print(f"device-to-device copy: {copy:.0f} GB/s (read + written)")
    print()
    group_rows: list[str] = []
    print("| model | optimizer | path | eager ms | graph ms | graph GB/s | % copy |")
    print("|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        params = make_params(model_shapes(model, False), torch.device("cuda"))
        set_grads(params, torch.device("cuda"))
        numel = sum(p.numel() for _, p in params)
        paths = [path for path in args.paths.split(",") if path]
        for name in [name for name in args.optimizers.split(",") if name]:
            spec = SPECS[name]
            for label, build in variants(spec, params):
                if paths and label.split()[-1] not in paths:
                    continue
                try:
                    eager = device_ms(build(False).step, args.repeats)
                    replay = device_ms(Captured(build(True).step), args.repeats)
                except Exception as error:  # report and go on: one path must not hide the rest
                    print(f"| {model} | {name} | {label} | failed: {type(error).__name__}: {error}")
                    continue
                moved = spec.bytes_per_param * numel / replay / 1e6
                print(
                    f"| {model} | {name} | {label} | {eager:.3f} | {replay:.3f} | {moved:.0f} | "
                    f"{100 * moved / copy:.0f}% |",
                    flush=True,
                )
        if args.groups:
            group_rows.extend(group_cost(args.groups.split(","), model, params, args.repeats))
        del params
        torch.cuda.empty_cache()
    if group_rows:
        print()
        print(
            "| model | optimizer (fused) | 1 static group eager / graph ms | 4-group seed recipe "
            "eager / graph ms | cost eager | cost graph | device activities a step (1 / 4 groups) |"
        )
        print("|---|---|---|---|---|---|---|")
        print("\n".join(group_rows))
    return 0


def group_cost(
    names: list[str], model: str, params: list[tuple[str, torch.nn.Parameter]], repeats: int
) -> list[str]:
    """The 4-group seed recipe (a cosine table, a schedule, two static lrs) against one group:
    eager steps and graph replays, each pair timed in alternating rounds (the cost is the median
    of the per-round ratios), and the device activities (kernels, copies) of one eager step."""
    rows = []
    for name in names:
        spec = SPECS[name]
        cls = getattr(msoptim, name)
        base = spec.kwargs.get("learning_rate", 1e-3)
        layouts = (params, seed_groups(params, base))
        eager = [cls(groups, **spec.kwargs, fused=True).step for groups in layouts]
        graphs = [Captured(cls(groups, **spec.kwargs, fused=True).step) for groups in layouts]
        kernels = [device_activities(step) for step in eager]
        (e1, e4), eager_cost = interleaved_ms(eager, repeats)
        (g1, g4), graph_cost = interleaved_ms(graphs, repeats)
        rows.append(
            f"| {model} | {name} | {e1:.3f} / {g1:.3f} | {e4:.3f} / {g4:.3f} | "
            f"{100 * (eager_cost - 1):+.1f}% | {100 * (graph_cost - 1):+.1f}% | "
            f"{kernels[0]} / {kernels[1]} |"
        )
    return rows


def interleaved_ms(
    steps: list[Callable[[], Any]], repeats: int, rounds: int = 7
) -> tuple[list[float], float]:
    """Each step's median ms over ``rounds`` rounds (each times every step in turn, ``repeats``
    steps each), and the median over rounds of the last step's time over the first's."""
    times = [[device_ms(step, repeats, warmup=1) for step in steps] for _ in range(rounds)]
    medians = [statistics.median(row[i] for row in times) for i in range(len(steps))]
    return medians, statistics.median(row[-1] / row[0] for row in times)


def device_activities(step: Callable[[], Any]) -> int:
    """Kernels and copies one call of ``step`` puts on the device (after a warm-up call)."""
    step()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
        step()
        torch.cuda.synchronize()
    return sum(event.device_type == torch.autograd.DeviceType.CUDA for event in profile.events())


if __name__ == "__main__":
    assert set(MODELS)  # the shapes module is importable on its own
    sys.exit(main())
