"""Per-step cost of msoptim inside DistributedDataParallel, against torch.optim at the same math.

``msoptim.Momentum`` (MindSpore: ``v = μv + g; w -= lr·v``) is ``torch.optim.SGD(momentum=μ,
dampening=0)``. Both run in the same DDP training loop (gloo, CPU, 2 ranks on 127.0.0.1, one thread
each); configurations are interleaved round by round after a warm-up, so the ratios come from the
same minutes of the same machine (absolute times on shared CPUs swing 2-6x between runs).

Reported per configuration, as medians over all timed steps: the whole training step (forward,
backward with DDP's all-reduce, ``opt.step()``, ``zero_grad``) and ``opt.step()`` alone, with their
ratio to ``torch.optim.SGD`` using the same kernel style (for-loop vs foreach).

Usage::

    python bench/ddp_overhead.py                       # both models, defaults below
    python bench/ddp_overhead.py --model deep --rounds 10 --steps 30
"""

from __future__ import annotations

import argparse
import datetime
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

WORLD_SIZE = 2
LR, MOMENTUM = 0.01, 0.9


def make_model(kind: str) -> nn.Module:
    """``wide``: few large tensors (compute and all-reduce dominate); ``deep``: many small ones
    (per-tensor Python and dispatch overhead dominates)."""
    torch.manual_seed(0)
    if kind == "wide":
        return nn.Sequential(
            nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10)
        )
    layers: list[nn.Module] = []
    for _ in range(48):
        layers += [nn.Linear(64, 64), nn.LayerNorm(64), nn.Tanh()]
    return nn.Sequential(nn.Linear(256, 64), *layers, nn.Linear(64, 10))


def optimizers() -> dict[str, tuple[str, Callable[[nn.Module], torch.optim.Optimizer]]]:
    """name -> (torch baseline name, factory)."""
    import msoptim

    return {
        "torch SGD for-loop": (
            "torch SGD for-loop",
            lambda m: torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM, foreach=False),
        ),
        "msoptim Momentum reference": (
            "torch SGD for-loop",
            lambda m: msoptim.Momentum(
                msoptim.trainable_params(m), learning_rate=LR, momentum=MOMENTUM, foreach=False
            ),
        ),
        "torch SGD foreach": (
            "torch SGD foreach",
            lambda m: torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM, foreach=True),
        ),
        "msoptim Momentum foreach": (
            "torch SGD foreach",
            lambda m: msoptim.Momentum(
                msoptim.trainable_params(m), learning_rate=LR, momentum=MOMENTUM, foreach=True
            ),
        ),
    }


def run_rank(rank: int, port: int, args: argparse.Namespace) -> None:
    from torch.nn.parallel import DistributedDataParallel

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", rank=rank, world_size=WORLD_SIZE, timeout=datetime.timedelta(seconds=120)
    )
    configs = optimizers()
    results = {}
    for model_kind in args.model:
        setups = {}
        for name, (_, factory) in configs.items():
            model = make_model(model_kind)
            setups[name] = (DistributedDataParallel(model), factory(model))
        generator = torch.Generator().manual_seed(rank)
        x = torch.randn(args.batch, 256, generator=generator)
        y = torch.randint(0, 10, (args.batch,), generator=generator)
        times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in configs}
        for round_index in range(args.rounds + 1):  # round 0 is the warm-up
            for name, (ddp, opt) in setups.items():
                step_times, opt_times = times[name]
                for _ in range(args.steps):
                    start = time.perf_counter()
                    loss = nn.functional.cross_entropy(ddp(x), y)
                    loss.backward()
                    before_step = time.perf_counter()
                    opt.step()
                    after_step = time.perf_counter()
                    opt.zero_grad(set_to_none=True)
                    end = time.perf_counter()
                    if round_index > 0:
                        step_times.append(end - start)
                        opt_times.append(after_step - before_step)
        numel = sum(p.numel() for p in make_model(model_kind).parameters())
        tensors = len(list(make_model(model_kind).parameters()))
        results[model_kind] = (numel, tensors, times)
    if rank == 0:
        report(results, configs, args)
    dist.barrier()
    dist.destroy_process_group()


def report(results, configs, args) -> None:
    print(
        f"DDP, gloo, CPU, {WORLD_SIZE} ranks x 1 thread, batch {args.batch} per rank; medians of "
        f"{args.rounds} interleaved rounds x {args.steps} steps (after 1 warm-up round); torch "
        f"{torch.__version__}"
    )
    for model_kind, (numel, tensors, times) in results.items():
        print(f"\nmodel '{model_kind}': {tensors} tensors, {numel:,} parameters")
        header = f"{'optimizer':<28}{'step ms':>10}{'opt.step ms':>13}{'step ratio':>12}{'opt ratio':>11}"
        print(header)
        print("-" * len(header))
        medians = {
            name: (statistics.median(s) * 1e3, statistics.median(o) * 1e3)
            for name, (s, o) in times.items()
        }
        for name, (baseline, _) in configs.items():
            step, opt = medians[name]
            base_step, base_opt = medians[baseline]
            print(
                f"{name:<28}{step:>10.3f}{opt:>13.3f}{step / base_step:>12.3f}{opt / base_opt:>11.3f}"
            )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", choices=("wide", "deep"), default=["wide", "deep"])
    parser.add_argument("--rounds", type=int, default=24, help="interleaved rounds after warm-up")
    parser.add_argument("--steps", type=int, default=5, help="steps per config per round")
    parser.add_argument("--batch", type=int, default=32, help="samples per rank")
    args = parser.parse_args(argv)
    mp.spawn(run_rank, args=(free_port(), args), nprocs=WORLD_SIZE, join=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
