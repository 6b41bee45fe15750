"""Record MindSpore 2.10's CPU ``ReduceMean`` over every axis but the first (gradient
centralization's mean, as the golden cases emulate it) on random gradients.

Runs in MindSpore's own environment (``make test`` never needs it)::

    /tmp/msvenv/bin/python tools/record_reduce_mean.py --out tests/data/reduce_mean.json

``tests/test_centralization.py`` replays the file against
:func:`msoptim.kernels.centralization.centralization_mean`, bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("GLOG_v", "3")

import mindspore as ms
import numpy as np
from mindspore import Tensor, ops

#: One reduced axis (2-D) of lengths below, at and above multiples of 8, and several axes
#: (conv-like shapes, size-1 axes included).
SHAPES = [
    (3, 16), (4, 32), (2, 48), (5, 17), (3, 40), (3, 8), (2, 24), (1, 160), (3, 5), (2, 100),
    (2, 16, 1, 1), (3, 16, 3, 3), (2, 32, 2, 2), (2, 16, 2, 1), (2, 16, 5), (2, 64, 1, 1),
    (2, 16, 1, 3),
]  # fmt: skip
SCALES = (1e-3, 1.0, 100.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-shape", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    rng = np.random.default_rng(args.seed)
    cases = []
    for shape in SHAPES:
        for n in range(args.per_shape):
            x = (rng.standard_normal(shape) * SCALES[n % len(SCALES)]).astype(np.float32)
            axes = tuple(range(1, len(shape)))
            mean = ops.ReduceMean(keep_dims=True)(Tensor(x), axes).asnumpy()
            cases.append(
                {
                    "shape": list(shape),
                    "x": [str(v) for v in x.ravel()],  # shortest float32 decimals
                    "mean": [str(v) for v in mean.ravel()],
                }
            )
    meta = {"mindspore": ms.__version__, "op": "ops.ReduceMean(keep_dims=True)(x, axes 1..)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "cases": cases}))
    print(f"{len(cases)} cases -> {args.out}")


if __name__ == "__main__":
    main()
