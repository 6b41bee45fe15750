"""Record MindSpore 2.10's CPU optimizer kernels run directly on small tensors, over random values
and hyper-parameters: ``ApplyProximalAdagrad`` on 3 elements and ``ApplyRMSProp`` and ``Adam``
(Nesterov and not) on 4, lengths their vector loops (blocks of 4 and 8) leave entirely to the
scalar loop, and ``AdamWeightDecay`` on 16 (vector blocks) and 4.

Runs in MindSpore's own environment (``make test`` never needs it)::

    /tmp/msvenv/bin/python tools/record_kernel_runs.py --out tests/data

``tests/test_kernel_runs.py`` replays the files, bit for bit.
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


def _f32(value) -> np.float32:
    return np.float32(value)


def proximal_adagrad(rng: np.random.Generator, k: int) -> dict:
    var = (rng.standard_normal(3) * rng.choice([0.01, 1, 10])).astype(np.float32)
    accum = (rng.random(3) * rng.choice([1e-6, 0.1, 10])).astype(np.float32)
    if k % 7 == 0:
        accum[:] = 0  # a zero accumulator: 0/0 and inf where the gradient is 0 too
    grad = (rng.standard_normal(3) * rng.choice([1e-3, 0.1, 1, 10])).astype(np.float32)
    grad[rng.random(3) < 0.1] = 0
    lr = _f32(rng.choice([0.001, 0.01, 0.1, 0.5]) * rng.uniform(0.5, 1.5))
    l1 = _f32(rng.choice([0.0, 0.0, 0.001, 0.01, 0.1]) * rng.uniform(0.5, 1.5))
    l2 = _f32(rng.choice([0.0, 0.001, 0.01, 0.1, 1.0]) * rng.uniform(0.5, 1.5))
    v, a = Parameter(Tensor(var.copy()), name="v"), Parameter(Tensor(accum.copy()), name="a")
    ops.ApplyProximalAdagrad()(v, a, Tensor(lr), Tensor(l1), Tensor(l2), Tensor(grad))
    inputs = {"var": var, "accum": accum, "grad": grad, "lr": [lr], "l1": [l1], "l2": [l2]}
    return {**inputs, "expect_var": v.asnumpy(), "expect_accum": a.asnumpy()}


def rmsprop(rng: np.random.Generator, k: int) -> dict:
    var = rng.standard_normal(4).astype(np.float32)
    mean_square = (rng.random(4) * rng.choice([1e-8, 1e-3, 1.0])).astype(np.float32)
    moment = (rng.standard_normal(4) * rng.choice([0, 1e-3, 0.1])).astype(np.float32)
    grad = (rng.standard_normal(4) * rng.choice([1e-3, 0.1, 1, 10])).astype(np.float32)
    lr = _f32(rng.choice([0.001, 0.01, 0.1]) * rng.uniform(0.5, 1.5))
    decay = _f32(rng.choice([0.9, 0.99, 0.5, 0.7]))
    momentum = _f32(rng.choice([0.0, 0.9, 0.5, 0.3]))
    epsilon = _f32(rng.choice([1e-10, 1e-6, 1e-3, 1e-8]))
    v = Parameter(Tensor(var.copy()), name="v")
    ms_, mom = Parameter(Tensor(mean_square.copy()), name="m"), Parameter(Tensor(moment.copy()))
    ops.ApplyRMSProp()(
        v, ms_, mom, Tensor(lr), Tensor(grad), float(decay), float(momentum), float(epsilon)
    )
    inputs = {"var": var, "mean_square": mean_square, "moment": moment, "grad": grad, "lr": [lr]}
    hyper = {"decay": [decay], "momentum": [momentum], "epsilon": [epsilon]}
    outputs = {"expect_var": v.asnumpy(), "expect_mean_square": ms_.asnumpy()}
    return {**inputs, **hyper, **outputs, "expect_moment": mom.asnumpy()}


def adam(rng: np.random.Generator, k: int) -> dict:
    nesterov = k % 2 == 0
    var = rng.standard_normal(4).astype(np.float32)
    m = (rng.standard_normal(4) * rng.choice([0, 1e-3, 0.1])).astype(np.float32)
    v = (rng.random(4) * rng.choice([0, 1e-6, 1e-2])).astype(np.float32)
    grad = (rng.standard_normal(4) * rng.choice([1e-3, 0.1, 1])).astype(np.float32)
    beta1, beta2 = _f32(rng.choice([0.9, 0.8, 0.3567, 0.5])), _f32(rng.choice([0.999, 0.99, 0.9]))
    powers = [_f32(beta1 ** rng.integers(1, 6)), _f32(beta2 ** rng.integers(1, 6))]
    lr = _f32(rng.choice([0.001, 0.01, 0.1]) * rng.uniform(0.5, 1.5))
    eps = _f32(rng.choice([1e-8, 1e-6, 1e-3]))
    w, mm, vv = (Parameter(Tensor(x.copy()), name=n) for x, n in ((var, "w"), (m, "m"), (v, "v")))
    scalars = (*powers, lr, beta1, beta2, eps)
    ops.Adam(use_nesterov=nesterov)(w, mm, vv, *map(Tensor, scalars), Tensor(grad))
    inputs = {"var": var, "m": m, "v": v, "grad": grad, "beta1_power": [powers[0]]}
    hyper = {"beta2_power": [powers[1]], "lr": [lr], "beta1": [beta1], "beta2": [beta2]}
    outputs = {"expect_var": w.asnumpy(), "expect_m": mm.asnumpy(), "expect_v": vv.asnumpy()}
    return {**inputs, **hyper, "eps": [eps], "nesterov": [nesterov], **outputs}


def adam_weight_decay(rng: np.random.Generator, k: int) -> dict:
    n = 16 if k % 2 == 0 else 4
    var = (rng.standard_normal(n) * rng.choice([0.1, 1, 3])).astype(np.float32)
    m = (rng.standard_normal(n) * rng.choice([0, 1e-3, 0.1])).astype(np.float32)
    v = (rng.random(n) * rng.choice([0, 1e-6, 1e-2])).astype(np.float32)
    grad = (rng.standard_normal(n) * rng.choice([1e-3, 0.1, 1])).astype(np.float32)
    beta1, beta2 = _f32(rng.choice([0.9, 0.7502, 0.5])), _f32(rng.choice([0.999, 0.9, 0.99]))
    lr = _f32(rng.choice([0.001, 0.01, 0.1]) * rng.uniform(0.5, 1.5))
    eps, decay = _f32(rng.choice([1e-8, 1e-6])), _f32(rng.choice([0.0, 0.01, 0.0701, 0.1]))
    w, mm, vv = (Parameter(Tensor(x.copy()), name=n) for x, n in ((var, "w"), (m, "m"), (v, "v")))
    scalars = (lr, beta1, beta2, eps, decay)
    ops.AdamWeightDecay()(w, mm, vv, *map(Tensor, scalars), Tensor(grad))
    inputs = {"var": var, "m": m, "v": v, "grad": grad, "lr": [lr], "beta1": [beta1]}
    hyper = {"beta2": [beta2], "eps": [eps], "weight_decay": [decay]}
    outputs = {"expect_var": w.asnumpy(), "expect_m": mm.asnumpy(), "expect_v": vv.asnumpy()}
    return {**inputs, **hyper, **outputs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--out", type=Path, required=True, help="a folder")
    args = parser.parse_args()
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    args.out.mkdir(parents=True, exist_ok=True)
    kernels = (
        ("proximal_adagrad", proximal_adagrad),
        ("rmsprop", rmsprop),
        ("adam", adam),
        ("adam_weight_decay", adam_weight_decay),
    )
    for name, record in kernels:
        rng = np.random.default_rng(args.seed)
        cases = [
            {key: [str(x) for x in value] for key, value in record(rng, k).items()}
            for k in range(args.count)
        ]
        meta = {"mindspore": ms.__version__, "kernel": name, "seed": args.seed}
        path = args.out / f"{name}.json"
        path.write_text(json.dumps({"meta": meta, "cases": cases}))
        print(f"{len(cases)} cases -> {path}")


if __name__ == "__main__":
    main()
