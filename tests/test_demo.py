"""``msoptim.demo``: one short run writes every output, and the lr log is what ``get_lr()`` said.

The contract: each logged lr is the value the optimizer used for that step (``opt.get_lr()`` read
before the update, global_step t -> row t), so the conv column is the float32 ``cosine_decay_lr``
table from index 0, and the static groups show MindSpore's float32 ``(lr + 1) - 1`` (a dynamic lr is
mixed with static ones).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import msoptim
from msoptim import demo
from msoptim._resnet import small_resnet

pytest.importorskip("sklearn")


def _plus_one_minus_one(value: float) -> np.float32:
    one = np.float32(1.0)
    return (np.float32(value) + one) - one


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """Two epochs of three steps, so the cosine table changes once (at step 3)."""
    out = tmp_path_factory.mktemp("demo")
    argv = ["--epochs", "2", "--limit-batches", "3", "--out", str(out), "--no-progress"]
    assert demo.main(argv) == 0
    return out


def test_writes_every_output(short_run):
    for name in ("lr.png", "loss.png", "steps.csv", "summary.json", "checkpoint.pt"):
        path = short_run / name
        assert path.is_file(), name
        assert path.stat().st_size > 0, name
    summary = json.loads((short_run / "summary.json").read_text())
    assert summary["result"]["steps"] == 6
    assert 0.0 <= summary["result"]["accuracy"] <= 1.0
    assert [row["group"] for row in summary["groups"]] == ["conv", "bn", "dense", "other"]


def test_lr_log_is_what_get_lr_returned(short_run):
    with (short_run / "steps.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == list(range(6))
    assert [int(row["epoch"]) for row in rows] == [0, 0, 0, 1, 1, 1]
    k = demo.RECIPES["Momentum"].scale
    table = np.asarray(msoptim.cosine_decay_lr(0.0, 1e-3 * k, 6, 3, 2), dtype=np.float32)
    column = {
        name: np.array([np.float32(r[f"lr_{name}"]) for r in rows]) for name in demo.GROUP_NAMES
    }
    np.testing.assert_array_equal(column["conv"], table)  # step t used table[t]
    assert column["conv"][0] == column["conv"][2] != column["conv"][3]
    np.testing.assert_array_equal(column["bn"], _plus_one_minus_one(1e-4 * k))
    np.testing.assert_array_equal(column["dense"], _plus_one_minus_one(1e-3 * k))
    np.testing.assert_array_equal(column["other"], _plus_one_minus_one(1e-3 * k))
    assert column["bn"][0] != np.float32(1e-4 * k)  # the rounding is visible: 0.01 -> 0.00999999


def test_checkpoint_resumes_into_the_same_groups(short_run):
    checkpoint = torch.load(short_run / "checkpoint.pt", weights_only=True)
    assert set(checkpoint) == {"model", "optimizer"}
    net = small_resnet()
    net.load_state_dict(checkpoint["model"])
    k = demo.RECIPES["Momentum"].scale
    groups, _ = demo.build_groups(
        net, msoptim.cosine_decay_lr(0.0, 1e-3 * k, 6, 3, 2), 1e-4 * k, 1e-3 * k
    )
    opt = msoptim.Momentum(groups, learning_rate=1e-3 * k, momentum=0.9)
    opt.load_state_dict(checkpoint["optimizer"])
    assert int(opt.global_step) == 6
    with pytest.raises(msoptim.LearningRateTableExhaustedError):
        opt.get_lr()  # the 6-step table is used up, as in MindSpore


def test_groups_partition_the_parameters():
    net = small_resnet()
    groups, names = demo.build_groups(net, 0.1, 0.01, 0.1)
    assert names == ["conv", "bn", "dense", "other"]
    assert list(groups[0]) == ["order_params"]
    seen = [id(p) for group in groups[1:] for _, p in group["params"]]
    assert sorted(seen) == sorted(id(p) for _, p in msoptim.trainable_params(net))
    bn_names = [name for name, _ in groups[2]["params"]]
    assert all(name.endswith(("gamma", "beta")) for name in bn_names)
    assert [name for name, _ in groups[3]["params"]] == ["fc.weight"]
    assert [name for name, _ in groups[4]["params"]] == ["fc.bias"]


def test_only_existing_optimizers_are_offered(capsys):
    offered = demo.available_optimizers()
    assert "Momentum" in offered
    assert all(isinstance(getattr(msoptim, name), type) for name in offered)
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--epochs", "--batch-size", "--device", "--out", "--seed", "--optimizer"):
        assert option in text
    assert "--limit-batches" in text


@pytest.mark.parametrize("name", demo.available_optimizers())
def test_every_offered_optimizer_takes_the_recipe(name):
    torch.manual_seed(0)
    net = small_resnet()
    opt, groups, names = demo.make_optimizer(name, net, step_per_epoch=2, epochs=2)
    indices = demo.group_lr_reader(opt, groups)
    images, labels = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(4):
        lrs = demo.read_group_lrs(opt, indices)
        assert lrs.shape == (len(names),)
        torch.nn.functional.cross_entropy(net(images), labels).backward()
        opt.step()
        opt.zero_grad()
    assert int(opt.global_step) == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    with pytest.raises(msoptim.LearningRateTableExhaustedError):
        opt.step()  # the conv table covers exactly the 4 steps


@pytest.mark.parametrize(
    "argv", [["--epochs", "0"], ["--device", "nonsense"], ["--optimizer", "NoSuchOptimizer"]]
)
def test_bad_options_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args(argv)
    assert exit_info.value.code == 2
