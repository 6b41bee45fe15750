"""Compile msoptim's CUDA multi-tensor kernels for sm_90 on any machine and print their registers.

Usage: ``python tools/triton_registers.py [--warps N]`` (needs Triton; no GPU: Triton compiles for
a named target and its bundled ``ptxas`` reports the resources). Registers per thread decide how
many programs an SM runs at once; the H100 measurements in ``bench/RESULTS.md`` fall in the same
order as these counts. ``--sass DIR`` also writes each kernel's machine code (``cuobjdump``), to
compare two versions of a kernel without a GPU.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from msoptim.kernels import _triton

BIN = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
TABLE = {
    "table": "*i64",
    "count": "i32",
    "block_tensor": "*i32",
    "block_start": "*i64",
    "numels": "*i64",
}
KERNELS = {
    "momentum": (
        _triton._momentum_kernel,
        {"lr_ptr": "*fp32", "momentum": "fp32"},
        {"NESTEROV": False},
    ),
    "sgd": (
        _triton._sgd_kernel,
        {"lr_ptr": "*fp32", "keep": "fp32", "momentum": "fp32"},
        {"MOMENTUM": True, "DAMPENED": False, "NESTEROV": False},
    ),
    "adagrad": (_triton._adagrad_kernel, {"lr_ptr": "*fp32"}, {"UPDATE_SLOTS": True}),
    "rmsprop": (
        _triton._rmsprop_kernel,
        {
            "lr_ptr": "*fp32",
            "chunks_ptr": "*fp32",
            "rate": "fp32",
            "decay": "fp32",
            "momentum": "fp32",
            "epsilon": "fp32",
        },
        {
            "CENTERED": False,
            "MAX_PIECES": _triton.RMSPROP_PIECES,
            "TAIL_TENSORS": _triton.RMSPROP_TAIL_TENSORS,
        },
    ),
    "adam": (
        _triton._adam_kernel,
        {"lr_t_ptr": "*fp32", "beta1": "fp32", "beta1c": "fp32", "beta2c": "fp32", "eps": "fp32"},
        {"NESTEROV": False},
    ),
    "adam_weight_decay": (
        _triton._adam_weight_decay_kernel,
        {
            "lr_ptr": "*fp32",
            "decay_ptr": "*fp32",
            "beta1c": "fp32",
            "beta2c": "fp32",
            "eps": "fp32",
        },
        {},
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warps", type=int, default=None, help="default: as shipped")
    parser.add_argument("--sass", type=Path, default=None, help="write <kernel>.sass here")
    args = parser.parse_args()
    work = args.sass or Path("/tmp/msoptim-triton")
    work.mkdir(parents=True, exist_ok=True)
    for name, (kernel, scalars, flags) in KERNELS.items():
        constexprs = dict(flags, BLOCK=_triton.BLOCK)
        signature = {**TABLE, **scalars, **{key: "constexpr" for key in constexprs}}
        source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
        warps = args.warps or _triton.warps(kernel)
        options = dict(_triton._OPTIONS, num_warps=warps)
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options)
        ptx = work / f"{name}.ptx"
        ptx.write_text(compiled.asm["ptx"])
        cubin = work / f"{name}.cubin"
        report = subprocess.run(
            [str(BIN / "ptxas"), "-arch=sm_90a", "-v", str(ptx), "-o", str(cubin)],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        registers = re.findall(r"Used (\d+) registers", report)
        print(f"{name:18} {warps} warps x {_triton.BLOCK} elements: {registers[0]} registers")
        if args.sass:
            sass = subprocess.run(
                [str(BIN / "cuobjdump"), "-sass", str(cubin)], capture_output=True, text=True
            ).stdout
            (work / f"{name}.sass").write_text(sass)


if __name__ == "__main__":
    main()
