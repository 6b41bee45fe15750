"""Repeat the CUDA-graph timing of msoptim's multi-tensor kernels: rounds x warps, one process.

Usage: ``python tools/gpu_repeat.py [--model gpt2-small] [--optimizers Adam,AdamWeightDecay]
[--rounds 4] [--warps 4,8]`` (needs CUDA). Each round allocates the model's parameters afresh and
times each optimizer's fused step as a CUDA-graph replay (median of ``--repeats``) under each
warp count, beside torch's fused anchor where there is one: tells a kernel change from
run-to-run spread (one H100 call measured Adam at 1.21 and 1.37 ms with the same code).
"""

from __future__ import annotations

import argparse

import torch
from bench.cuda_graph import Captured, copy_bandwidth, device_ms, variants
from bench.run import make_params, model_shapes, set_grads
from bench.variants import SPECS

import msoptim
from msoptim.kernels import _triton

KERNELS = {
    "Momentum": "_momentum_kernel",
    "SGD": "_sgd_kernel",
    "Adagrad": "_adagrad_kernel",
    "RMSProp": "_rmsprop_kernel",
    "Adam": "_adam_kernel",
    "AdamWeightDecay": "_adam_weight_decay_kernel",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2-small")
    parser.add_argument("--optimizers", default="Adam,AdamWeightDecay")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warps", default="4,8")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    copy = copy_bandwidth()
    print(f"{torch.cuda.get_device_name()}; copy {copy:.0f} GB/s; model {args.model}")
    warps = [int(w) for w in args.warps.split(",")]
    print(
        "| round | optimizer | "
        + " | ".join(f"{w} warps ms" for w in warps)
        + " | torch fused ms |"
    )
    print("|---|---|" + "---|" * (len(warps) + 1))
    for round_ in range(args.rounds):
        params = make_params(model_shapes(args.model, False), torch.device("cuda"))
        set_grads(params, torch.device("cuda"))
        for name in args.optimizers.split(","):
            spec, cells = SPECS[name], []
            for count in warps:
                _triton.KERNEL_WARPS[KERNELS[name]] = count
                optimizer = getattr(msoptim, name)(params, **spec.kwargs, fused=True)
                cells.append(f"{device_ms(Captured(optimizer.step), args.repeats):.3f}")
            anchor = dict(variants(spec, params)).get("torch fused")
            try:
                torch_ms = f"{device_ms(Captured(anchor(True).step), args.repeats):.3f}"
            except Exception as error:  # no torch fused anchor for this optimizer on CUDA
                torch_ms = type(error).__name__
            print(f"| {round_} | {name} | " + " | ".join(cells) + f" | {torch_ms} |", flush=True)
        del params
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
