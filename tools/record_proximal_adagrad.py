"""Record MindSpore 2.10's CPU ``ApplyProximalAdagrad`` on 3-element tensors (its scalar loop
alone: the vector loops take blocks of 4) over random values, lrs, l1 and l2.

Runs in MindSpore's own environment (``make test`` never needs it)::

    /tmp/msvenv/bin/python tools/record_proximal_adagrad.py --out tests/data/proximal_adagrad.json

``tests/test_proximal_adagrad_scalar_loop.py`` replays the file, bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("GLOG_v", "3")

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    rng = np.random.default_rng(args.seed)
    op = ops.ApplyProximalAdagrad()
    cases = []
    for k in range(args.count):
        var = (rng.standard_normal(3) * rng.choice([0.01, 1, 10])).astype(np.float32)
        accum = (rng.random(3) * rng.choice([1e-6, 0.1, 10])).astype(np.float32)
        if k % 7 == 0:
            accum[:] = 0  # a zero accumulator: 0/0 and inf where the gradient is 0 too
        grad = (rng.standard_normal(3) * rng.choice([1e-3, 0.1, 1, 10])).astype(np.float32)
        grad[rng.random(3) < 0.1] = 0
        lr = np.float32(rng.choice([0.001, 0.01, 0.1, 0.5]) * rng.uniform(0.5, 1.5))
        l1 = np.float32(rng.choice([0.0, 0.0, 0.001, 0.01, 0.1]) * rng.uniform(0.5, 1.5))
        l2 = np.float32(rng.choice([0.0, 0.001, 0.01, 0.1, 1.0]) * rng.uniform(0.5, 1.5))
        v, a = Parameter(Tensor(var.copy()), name="v"), Parameter(Tensor(accum.copy()), name="a")
        op(v, a, Tensor(lr), Tensor(l1), Tensor(l2), Tensor(grad))
        values = {"var": var, "accum": accum, "grad": grad, "lr": [lr], "l1": [l1], "l2": [l2]}
        case = {key: [str(x) for x in value] for key, value in values.items()}
        case["expect_var"] = [str(x) for x in v.asnumpy()]
        case["expect_accum"] = [str(x) for x in a.asnumpy()]
        cases.append(case)
    meta = {"mindspore": ms.__version__, "op": "ops.ApplyProximalAdagrad() on (3,) tensors"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "cases": cases}))
    print(f"{len(cases)} cases -> {args.out}")


if __name__ == "__main__":
    main()
