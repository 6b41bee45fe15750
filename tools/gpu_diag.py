"""GPU diagnosis: which route each compiled per-tensor kernel takes on CUDA (prints a table)."""

from __future__ import annotations

import time

import torch

import msoptim
from msoptim.kernels import _fused, _triton


def main() -> None:
    shapes = [(50257, 768), (768,), (768, 2304), (2304,), (3, 5)]
    for name, kwargs in (
        ("RMSProp", {"learning_rate": 0.01}),
        ("Adagrad", {"learning_rate": 0.01}),
        ("Adam", {"learning_rate": 0.01}),
    ):
        params = [torch.nn.Parameter(torch.randn(s, device="cuda")) for s in shapes]
        for p in params:
            p.grad = torch.randn_like(p)
        opt = getattr(msoptim, name)(params, **kwargs, fused=True)
        opt.step()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(5):
            opt.step()
        torch.cuda.synchronize()
        print(
            f"{name}: {(time.perf_counter() - start) / 5 * 1e3:.2f} ms/step; tables {len(_triton._STEP_EXTENSION)}"
        )
    for key, kernel in _fused._KERNELS.items():
        print(
            kernel.name,
            key[2],
            "guards",
            kernel._shape_guards,
            "raw",
            kernel._raw is not None,
            "aot",
            kernel._aot is not None,
            "pick",
            kernel._pick is not None,
        )


if __name__ == "__main__":
    main()
