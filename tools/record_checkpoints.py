"""Record MindSpore checkpoint fixtures for ``tests/test_checkpoint.py`` (needs real MindSpore).

Runs in its own environment, never in msoptim's (``make test`` does not need MindSpore)::

    python3 -m venv /tmp/msvenv
    /tmp/msvenv/bin/pip install mindspore==2.10.0 'numpy<2'
    /tmp/msvenv/bin/python tools/record_checkpoints.py tests/fixtures

For each case (``momentum``: ``nn.Momentum`` with a static lr and weight decay; ``adam``: ``nn.Adam``
with a per-step lr table) it builds ``Dense(4, 3) -> ReLU -> BatchNorm1d(3) -> Dense(3, 2)``, trains
``SAVE_AT`` steps on fixed batches with an MSE loss, writes ``<case>_step3.ckpt`` with
``mindspore.save_checkpoint`` (network and optimizer: ``moments.*``, ``moment1.*``, ``beta1_power``,
``learning_rate``, ``global_step``, ...), then trains ``CONTINUE`` more steps and stores every
parameter and the loss after each of them in ``<case>_trajectory.npz``. The batches of every step are
in ``checkpoint_batches.npz``. With ``--verify FILE.ckpt`` it instead loads a checkpoint written by
msoptim's own writer with ``mindspore.load_checkpoint`` and prints what it holds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import nn

SAVE_AT = 3
CONTINUE = 5
BATCH = 8
SEED = 2024


class Net(nn.Cell):
    """Dense(4, 3) -> ReLU -> BatchNorm1d(3) -> Dense(3, 2); parameter names fc1.*, bn.*, fc2.*.

    The ReLU sits before the batch norm so that fc1's bias has a real gradient (right before a
    batch norm its gradient is zero up to rounding, which Adam would amplify into noise).
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Dense(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(3, 2)

    def construct(self, x):
        return self.fc2(self.bn(self.relu(self.fc1(x))))


def batches() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    steps = SAVE_AT + CONTINUE
    return {
        "x": rng.standard_normal((steps, BATCH, 4)).astype(np.float32),
        "y": rng.standard_normal((steps, BATCH, 2)).astype(np.float32),
    }


def make_optimizer(case: str, net: Net) -> nn.Optimizer:
    if case == "momentum":
        return nn.Momentum(net.trainable_params(), 0.1, 0.9, weight_decay=1e-4)
    if case == "adam":
        table = [0.01 * 0.8**i for i in range(SAVE_AT + CONTINUE)]
        return nn.Adam(net.trainable_params(), learning_rate=table, weight_decay=1e-4)
    raise ValueError(f"unknown case {case!r}")


def record(case: str, data: dict[str, np.ndarray], out: Path) -> None:
    ms.set_seed(SEED)
    net = Net()
    optimizer = make_optimizer(case, net)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), optimizer)
    train.set_train()
    for step in range(SAVE_AT):
        train(ms.Tensor(data["x"][step]), ms.Tensor(data["y"][step]))
    ms.save_checkpoint(train, str(out / f"{case}_step{SAVE_AT}.ckpt"))
    trajectory: dict[str, np.ndarray] = {}
    names = [p.name for p in train.get_parameters()]
    for step in range(SAVE_AT, SAVE_AT + CONTINUE):
        loss = train(ms.Tensor(data["x"][step]), ms.Tensor(data["y"][step]))
        trajectory.setdefault("loss", []).append(float(loss.asnumpy()))
        for param in train.get_parameters():
            trajectory.setdefault(param.name, []).append(param.asnumpy().copy())
    arrays = {name: np.stack(values) for name, values in trajectory.items() if name != "loss"}
    arrays["loss"] = np.asarray(trajectory["loss"], dtype=np.float64)
    np.savez_compressed(out / f"{case}_trajectory.npz", **arrays)
    print(f"{case}: {len(names)} checkpoint entries: {names}")


def verify(path: Path) -> None:
    loaded = ms.load_checkpoint(str(path))
    for name, param in loaded.items():
        value = param.asnumpy() if hasattr(param, "asnumpy") else param
        print(name, getattr(value, "dtype", type(value)), getattr(value, "shape", ()), value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", nargs="?", default="tests/fixtures", help="output directory")
    parser.add_argument("--verify", type=Path, help="load this .ckpt with MindSpore and print it")
    args = parser.parse_args(argv)
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    if args.verify is not None:
        verify(args.verify)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = batches()
    np.savez_compressed(out / "checkpoint_batches.npz", **data)
    for case in ("momentum", "adam"):
        record(case, data, out)
    print(f"MindSpore {ms.__version__}, numpy {np.__version__}: fixtures in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
