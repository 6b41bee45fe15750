"""AdaFactor's C kernel on one large parameter: one thread against a team of N threads.

A parameter larger than an even share of the step is walked by all threads together (from
``TEAM_MIN_THREADS`` threads on, see ``msoptim/kernels/adafactor_native.c``). This times one such
parameter alone, stepping with 1 and with N threads in alternation (``torch.set_num_threads`` is
read at every call), so both sides see the same minutes of the machine.

A team needs three threads by default; ``--threads 2`` builds the kernel with teams of two
allowed (``-DTEAM_MIN_THREADS=2``), which is how the two-thread figures of ``bench/RESULTS.md``
were taken. Usage::

    PYTHONPATH=src:. python -m bench.adafactor_threads                 # N = 2, three shapes
    PYTHONPATH=src:. python -m bench.adafactor_threads --threads 4 --rounds 21
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from msoptim.kernels import adafactor as kernels
from msoptim.optimizers.adafactor import AdaFactor

SHAPES = {
    "embedding 50257 x 768": (50257, 768),
    "conv 2048 x 512 x 3 x 3": (2048, 512, 3, 3),
    "conv 4096 x 2048 x 1 x 1": (4096, 2048, 1, 1),
}


def one_step_seconds(opt: AdaFactor, grads: tuple[torch.Tensor, ...], threads: int) -> float:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    opt(grads)
    return time.perf_counter() - start


def measure(shape: tuple[int, ...], threads: int, rounds: int) -> tuple[float, float, list[float]]:
    """Median seconds with one thread and with ``threads``, and the per-round speed-ups."""
    param = torch.nn.Parameter(torch.randn(shape))
    opt = AdaFactor([("w", param)], fused=True)
    grads = (torch.randn(shape),)
    for _ in range(2):  # builds the kernel, touches the state and scratch
        opt(grads)
    alone, team, ratios = [], [], []
    for index in range(rounds):
        order = (1, threads) if index % 2 else (threads, 1)
        times = {count: one_step_seconds(opt, grads, count) for count in order}
        alone.append(times[1])
        team.append(times[threads])
        ratios.append(times[1] / times[threads])
    return statistics.median(alone), statistics.median(team), ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="the team's size (default 2)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    before = torch.get_num_threads()
    if args.threads < 3:  # the kernel's TEAM_MIN_THREADS
        kernels.NATIVE_FLAGS = (f"-DTEAM_MIN_THREADS={args.threads}",)
    print(f"torch {torch.__version__}, {args.rounds} alternating rounds, medians")
    print(f"| parameter | 1 thread ms | {args.threads} threads ms | speed-up | quartiles |")
    print("|---|---|---|---|---|")
    try:
        for name, shape in SHAPES.items():
            alone, team, ratios = measure(shape, args.threads, args.rounds)
            low, _, high = statistics.quantiles(ratios, n=4)
            print(
                f"| {name} | {alone * 1e3:.1f} | {team * 1e3:.1f} | "
                f"{statistics.median(ratios):.2f} | {low:.2f}-{high:.2f} |"
            )
    finally:
        torch.set_num_threads(before)


if __name__ == "__main__":
    main()
