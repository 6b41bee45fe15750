"""Record ``lr_scheduler_callback`` cases from real MindSpore 2.10 on random functions.

Manual mode (the default):

Each case builds ``nn.Momentum([fc.weight], learning_rate=<lr>, momentum=0.9)``, then for steps
1..N sets ``cb_params.cur_step_num`` and calls ``LearningRateScheduler(eval(fn_src)).step_end``
(no optimizer step), and records ``opt.learning_rate`` after each call, in the golden schema
(``tests/golden/README.md``, family ``lr_scheduler_callback``, ``mode: "manual"``). The functions
are drawn from templates (step decays, multiplicative and additive changes, resets, values with
many digits, tiny changes near ``math.isclose``'s 1e-10 tolerance) and the initial lrs include
values whose 8-significant-digit printout (MindSpore reads the lr through ``np.array2string``)
differs from the float32 value. Runs with the MindSpore environment, never in msoptim's::

    /tmp/msvenv/bin/python tools/record_golden_callback.py --seed 1 --count 200 --out /tmp/cb/s1
    PYTHONPATH=src .venv/bin/python -m pytest -q tests/test_golden.py --golden-dir /tmp/cb/s1 \
        -k lr_scheduler_callback

``--model-train``: the sample's ``mode: "model_train"`` cases on random data, initial weights,
epochs, functions and optimizers (Momentum, SGD, Adam, AdamWeightDecay, RMSProp, Adagrad):
``Model(nn.Dense(4, 2), loss_fn=nn.MSELoss(), optimizer=opt).train(epochs, dataset,
callbacks=[LearningRateScheduler(fn), recorder], dataset_sink_mode=False)``, the recorder noting
each step's lr at its beginning and after the scheduler, the loss and the parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

os.environ.setdefault("GLOG_v", "3")

import mindspore
import numpy as np
from mindspore import Parameter, Tensor, nn
from mindspore.train import LearningRateScheduler
from mindspore.train.callback import RunContext
from mindspore.train.callback._callback import InternalCallbackParam

CALL = (
    "cb = LearningRateScheduler(eval(fn_src)); for step in 1..N: cb_params.cur_step_num = step; "
    "cb.step_end(RunContext(cb_params)) with cb_params.optimizer = opt (no optimizer step is taken)"
)


def f32(value: float) -> float:
    """The shortest decimal that round-trips through float32 (the golden float encoding)."""
    return float(str(np.float32(value)))


def random_lr(rng: random.Random) -> float:
    return rng.choice(
        [
            0.1,
            0.01,
            round(rng.uniform(1e-4, 0.5), rng.randint(2, 12)),
            rng.uniform(1e-6, 1.0),  # many digits: the 8-digit printout rounds
            3.0e-5 * rng.randint(1, 99),
            1.0 / 3.0,
        ]
    )


def random_function(rng: random.Random) -> str:
    k = rng.randint(1, 5)
    factor = rng.choice([0.1, 0.5, 0.9, 0.95, 0.3333333, 1.0000000001, 0.99999999999, 2.0])
    value = random_lr(rng)
    templates = [
        f"lambda lr, step: lr * {factor} if step % {k} == 0 else lr",
        f"lambda lr, step: lr * {factor}",
        f"lambda lr, step: lr + {value * 1e-3!r}",
        f"lambda lr, step: {value!r} if step >= {k} else lr",
        f"lambda lr, step: {value!r} / step",
        f"lambda lr, step: lr * (1 + 1e-{rng.choice([9, 10, 11, 12])})",
        f"lambda lr, step: max(lr * {factor}, {value * 1e-2!r})",
        "lambda lr, step: lr",
        f"lambda lr, step: lr - {value * 1e-4!r} * step",
    ]
    return rng.choice(templates)


def record_case(rng: random.Random, case_id: str) -> dict:
    fn_src = random_function(rng)
    lr = random_lr(rng)
    kind = rng.choice(["static", "static", "tensor_scalar"])
    steps = rng.randint(4, 10)
    param = Parameter(Tensor(np.zeros((3, 16), np.float32)), name="fc.weight")
    given = lr if kind == "static" else Tensor(np.float32(lr), mindspore.float32)
    opt = nn.Momentum([param], learning_rate=given, momentum=0.9)
    callback = LearningRateScheduler(eval(fn_src))  # fn_src: one of our own templates
    cb_params = InternalCallbackParam()  # a dict with attribute access, as Model passes
    cb_params.optimizer = opt
    case = {
        "family": "lr_scheduler_callback",
        "id": case_id,
        "mode": "manual",
        "fn_src": fn_src,
        "optimizer": "Momentum",
        "kwargs": {"momentum": 0.9},
        "learning_rate": {"kind": kind, "value": lr},
        "call": CALL,
        "mindspore_version": mindspore.__version__,
    }
    expect = []
    try:
        for step in range(1, steps + 1):
            cb_params.cur_step_num = step
            callback.step_end(RunContext(cb_params))
            value = opt.learning_rate.asnumpy().reshape(-1)
            expect.append({"step": step, "optimizer_learning_rate": [f32(v) for v in value]})
    except Exception as error:  # recorded like the sample's failing cases
        message = str(error).split("\n")[0]
        case["error"] = {"type": type(error).__name__, "message": message, "full_message": message}
        return case
    case["error"] = None
    case["expect"] = expect
    return case


TRAIN_CALL = (
    "Model(net, loss_fn=nn.MSELoss(), optimizer=opt).train(epochs, dataset, "
    "callbacks=[LearningRateScheduler(eval(fn_src)), recorder], dataset_sink_mode=False)"
)
NETWORK = (
    "nn.Dense(4, 2) (y = x @ W.T + b), weight 'dense.weight' (2,4), bias 'dense.bias' (2,); "
    "loss nn.MSELoss() (mean over all elements)"
)
TRAIN_OPTIMIZERS = [
    ("Momentum", {"momentum": 0.9}),
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("Adam", {}),
    ("AdamWeightDecay", {"weight_decay": 0.01}),
    ("RMSProp", {}),
    ("Adagrad", {}),
]


class StepRecorder(mindspore.train.Callback):
    """Each step's lr at its beginning and after the scheduler, loss and parameters."""

    def __init__(self, net: nn.Cell) -> None:
        super().__init__()
        self.net, self.rows, self.lr_begin = net, [], None

    @staticmethod
    def _lr(cb_params) -> list[float]:
        return [f32(v) for v in cb_params.optimizer.learning_rate.asnumpy().reshape(-1)]

    def on_train_step_begin(self, run_context) -> None:
        self.lr_begin = self._lr(run_context.original_args())

    def on_train_step_end(self, run_context) -> None:
        cb = run_context.original_args()
        params = {
            f"dense.{p.name}": [f32(v) for v in p.asnumpy().ravel()]
            for p in self.net.trainable_params()
        }
        self.rows.append(
            {
                "cur_step_num": int(cb.cur_step_num),
                "cur_epoch_num": int(cb.cur_epoch_num),
                "lr_at_step_begin": self.lr_begin,
                "lr_at_step_end_after_scheduler": self._lr(cb),
                "loss": f32(cb.net_outputs.asnumpy()),
                "params": params,
            }
        )


def record_training_case(rng: random.Random, case_id: str) -> dict:
    import mindspore.dataset as ds
    from mindspore.train import Model

    fn_src = random_function(rng)
    lr = random_lr(rng)
    optimizer, kwargs = rng.choice(TRAIN_OPTIMIZERS)
    data_rng = np.random.default_rng(rng.randrange(2**32))
    x = data_rng.standard_normal((8, 4)).astype(np.float32)
    y = data_rng.standard_normal((8, 2)).astype(np.float32)
    weight = (0.5 * data_rng.standard_normal((2, 4))).astype(np.float32)
    bias = np.zeros(2, np.float32) if rng.random() < 0.5 else data_rng.standard_normal(2)
    bias = bias.astype(np.float32)
    epochs = rng.randint(1, 3)
    net = nn.Dense(4, 2)
    net.weight.set_data(Tensor(weight))
    net.bias.set_data(Tensor(bias))
    opt = getattr(nn, optimizer)(net.trainable_params(), learning_rate=lr, **kwargs)
    dataset = ds.NumpySlicesDataset({"x": x, "y": y}, shuffle=False).batch(2, drop_remainder=True)
    recorder = StepRecorder(net)
    callbacks = [LearningRateScheduler(eval(fn_src)), recorder]  # fn_src: our own templates
    case = {
        "family": "lr_scheduler_callback",
        "id": case_id,
        "mode": "model_train",
        "fn_src": fn_src,
        "optimizer": optimizer,
        "kwargs": kwargs,
        "learning_rate": {"kind": "static", "value": lr},
        "network": NETWORK,
        "data": {
            "x": [[f32(v) for v in row] for row in x],
            "y": [[f32(v) for v in row] for row in y],
            "batch_size": 2,
            "shuffle": False,
            "drop_remainder": True,
        },
        "init": {
            "dense.weight": [f32(v) for v in weight.ravel()],
            "dense.bias": [f32(v) for v in bias],
        },
        "epochs": epochs,
        "call": TRAIN_CALL,
        "mindspore_version": mindspore.__version__,
    }
    try:
        Model(net, loss_fn=nn.MSELoss(), optimizer=opt).train(
            epochs, dataset, callbacks=callbacks, dataset_sink_mode=False
        )
    except Exception as error:
        message = str(error).split("\n")[0]
        case["error"] = {"type": type(error).__name__, "message": message, "full_message": message}
        return case
    case["error"] = None
    case["expect"] = recorder.rows
    return case


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model-train", action="store_true", help="Model.train cases")
    args = parser.parse_args()
    mindspore.set_context(mode=mindspore.PYNATIVE_MODE, device_target="CPU")
    rng = random.Random(args.seed)
    make, prefix = (
        (record_training_case, "fuzz-cb-train") if args.model_train else (record_case, "fuzz-cb")
    )
    cases = [make(rng, f"{prefix}-{args.seed}-{n:04d}") for n in range(args.count)]
    meta = {
        "mindspore": mindspore.__version__,
        "numpy": np.__version__,
        "mode": "PYNATIVE_MODE",
        "device": "CPU",
        "generator": f"tools/record_golden_callback.py --seed {args.seed} --count {args.count}"
        + (" --model-train" if args.model_train else ""),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    document = {"meta": meta, "family": "lr_scheduler_callback", "cases": cases}
    (args.out / "lr_scheduler_callback.json").write_text(json.dumps(document))
    print(f"{len(cases)} cases, {sum(1 for c in cases if c['error'])} with an error")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
