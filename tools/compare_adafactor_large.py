"""AdaFactor on tensors larger than the golden set: real MindSpore 2.10 against msoptim, in ulp.

The golden parameters have at most 48 elements; this checks the shapes where msoptim's AdaFactor
takes its other code paths (an RMS over more than one 1,000-element block, rows long enough for
the eight-row vector block, 3x3 and 1x1 convolution kernels). Two steps, two environments::

    /tmp/msvenv/bin/python tools/compare_adafactor_large.py record --out /tmp/adafactor_large.npz
    PYTHONPATH=src .venv/bin/python tools/compare_adafactor_large.py compare \\
        --data /tmp/adafactor_large.npz

``compare`` prints, per parameter and state, the largest distance between MindSpore's and
msoptim's values over all steps (msoptim's default path on CPU: the C kernel), in float32 ulp
element by element and in ulp of the tensor's largest magnitude. Measured (2026-11-26): the row
and column states are equal; tensors of up to 1,000 elements are equal; above that the RMS sums
differ in order (MindSpore splits them across its threads in float32; msoptim sums in float64),
which moves the scalar step size by about an ulp: parameters within 1 ulp of their scale,
``exp_avg`` within 11 (element-wise, values near zero are millions of their own ulps apart).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

SHAPES = {
    "fc.weight": (40, 64),
    "embed.weight": (300, 24),
    "conv3.weight": (16, 8, 3, 3),
    "conv1.weight": (64, 32, 1, 1),
    "bias": (1500,),
    "small.weight": (3, 16),
}
STEPS = 5
CONFIGS = {
    "default": {},
    "fixed-lr": {
        "learning_rate": 0.01,
        "relative_step": False,
        "scale_parameter": False,
        "weight_decay": 0.1,
    },
}


def _data(seed: int = 0) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    weights = {n: rng.standard_normal(s).astype(np.float32) for n, s in SHAPES.items()}
    grads = [
        {n: (0.1 * rng.standard_normal(s)).astype(np.float32) for n, s in SHAPES.items()}
        for _ in range(STEPS)
    ]
    return weights, grads


def record(out: Path) -> None:
    import mindspore as ms
    from mindspore import Parameter, Tensor, nn

    ms.set_context(device_target="CPU")
    weights, grads = _data()
    arrays: dict[str, np.ndarray] = {}
    for config, kwargs in CONFIGS.items():
        params = [Parameter(Tensor(w.copy()), name=n) for n, w in weights.items()]
        opt = nn.AdaFactor(params, **kwargs)
        for step, step_grads in enumerate(grads):
            opt(tuple(Tensor(step_grads[n]) for n in SHAPES))
            for param in params:
                arrays[f"{config}/{step}/param/{param.name}"] = param.asnumpy().copy()
            for state in opt.exp_avg_sq_row + opt.exp_avg_sq_col + opt.exp_avg_sq + opt.exp_avg:
                arrays[f"{config}/{step}/state/{state.name}"] = state.asnumpy().copy()
    np.savez(out, **arrays)
    print(f"wrote {len(arrays)} arrays to {out}")


def _distances(theirs: np.ndarray, mine: np.ndarray) -> tuple[int, float]:
    """The largest distance in float32 ulp, element-wise, and in ulp of the tensor's largest
    magnitude (an element near zero has tiny ulps, so a 1-ulp change of a scalar factor can be
    millions of its own ulps). The golden harness's ulp helpers measure both."""
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    if tests not in sys.path:  # imported here: the record step runs without torch
        sys.path.insert(0, tests)
    from golden_replay import ulp32, ulp_distance

    if not theirs.size:
        return 0, 0.0
    gap = np.abs(theirs.astype(np.float64) - mine.astype(np.float64)).max()
    return int(ulp_distance(theirs, mine).max()), float(gap / ulp32(np.abs(theirs).max()))


def compare(data: Path) -> None:
    import torch

    from msoptim.optimizers.adafactor import AdaFactor

    recorded = np.load(data)
    weights, grads = _data()
    for config, kwargs in CONFIGS.items():
        params = [(n, torch.nn.Parameter(torch.from_numpy(w.copy()))) for n, w in weights.items()]
        opt = AdaFactor(params, **kwargs)
        worst: dict[str, tuple[int, float]] = {}
        for step, step_grads in enumerate(grads):
            opt(tuple(torch.from_numpy(step_grads[n]) for n in SHAPES))
            ours = {f"param/{n}": p.detach().numpy() for n, p in params}
            ours.update({f"state/{k}": v.float().numpy() for k, v in opt.ms_state_dict().items()})
            prefix = f"{config}/{step}/"
            for key in recorded.files:
                if not key.startswith(prefix):
                    continue
                name, theirs = key[len(prefix) :], recorded[key]
                if name not in ours:
                    raise KeyError(f"msoptim has no {name} (MindSpore's state names changed?)")
                mine = ours[name].reshape(theirs.shape)
                ulps, scaled = worst.get(name, (0, 0.0))
                step_ulps, step_scaled = _distances(theirs, mine)
                worst[name] = (max(ulps, step_ulps), max(scaled, step_scaled))
        print(
            f"{config}: over {STEPS} steps, largest distance in ulp (element-wise | of the scale)"
        )
        for name, (ulps, scaled) in sorted(worst.items()):
            print(f"  {name}: {ulps} | {scaled:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("record").add_argument("--out", type=Path, required=True)
    sub.add_parser("compare").add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    if args.mode == "record":
        record(args.out)
    else:
        compare(args.data)


if __name__ == "__main__":
    main()
