"""MindSpore ``.ckpt`` files: read/write, name mapping, and continuing MindSpore's own training.

Fixtures in ``tests/fixtures`` were recorded with real MindSpore 2.10.0 (CPU, PyNative) by
``tools/record_checkpoints.py``: ``Dense(4, 3) -> ReLU -> BatchNorm1d(3) -> Dense(3, 2)`` trained 3
steps with ``nn.Momentum`` (static lr, weight decay) and with ``nn.Adam`` (an 8-entry lr table,
weight decay), saved with ``mindspore.save_checkpoint`` (network and optimizer), then trained 5
more steps whose parameters, optimizer state and losses are in ``<case>_trajectory.npz``.

Continuing from the checkpoint in torch + msoptim must follow MindSpore's trajectory. The tolerance
is float32-sized (rtol 1e-5, atol 1e-6) because the *network* differs, not the optimizer: MindSpore's
CPU kernels and torch sum the matmul, batch-norm and MSE reductions in different orders, so the
gradients differ in the last bits (the optimizer arithmetic is checked bit for bit elsewhere, by
the golden replays).
"""

from __future__ import annotations

import binascii
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import msoptim
from fixtures.optimizer_registry import find_class
from msoptim import checkpoint as ckpt
from msoptim.checkpoint import (
    load_mindspore_checkpoint,
    mindspore_names,
    mindspore_to_torch,
    save_mindspore_checkpoint,
    torch_to_mindspore,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAVE_AT, CONTINUE = 3, 5


class Net(nn.Module):
    """The torch twin of the recorded MindSpore network (same attribute names)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm1d(3)  # torch momentum 0.1 == MindSpore momentum 0.9
        self.fc2 = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc2(self.bn(self.relu(self.fc1(x))))


def _optimizer(case: str, model: nn.Module):
    params = msoptim.trainable_params(model)
    if case == "momentum":
        return msoptim.Momentum(params, 0.1, 0.9, weight_decay=1e-4)
    table = [0.01 * 0.8**i for i in range(SAVE_AT + CONTINUE)]
    return find_class("Adam")(params, learning_rate=table, weight_decay=1e-4)


@pytest.mark.parametrize("case", ["momentum", "adam"])
def test_continue_mindspore_training_in_torch(case):
    data = np.load(FIXTURES / "checkpoint_batches.npz")
    trajectory = np.load(FIXTURES / f"{case}_trajectory.npz")
    torch.manual_seed(0)
    model = Net()
    opt = _optimizer(case, model)
    loaded = load_mindspore_checkpoint(FIXTURES / f"{case}_step{SAVE_AT}.ckpt")
    assert mindspore_to_torch(loaded, model, opt) == ([], [])
    assert int(opt.global_step) == SAVE_AT
    model.train()
    for i in range(CONTINUE):
        x = torch.from_numpy(data["x"][SAVE_AT + i])
        y = torch.from_numpy(data["y"][SAVE_AT + i])
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        assert loss.item() == pytest.approx(trajectory["loss"][i], rel=1e-5)
        state = torch_to_mindspore(model, opt)
        compared = [name for name in state if name in trajectory.files]
        assert len(compared) == len(loaded), sorted(set(loaded) - set(compared))
        for name in compared:
            np.testing.assert_allclose(
                state[name].reshape(trajectory[name][i].shape),
                trajectory[name][i],
                rtol=1e-5,
                atol=1e-6,
                err_msg=f"{case} step {SAVE_AT + i + 1}: {name}",
            )


@pytest.mark.parametrize("case", ["momentum", "adam"])
def test_writer_reproduces_mindspore_bytes(case, tmp_path):
    """Read a MindSpore file, write it back: byte-identical to what MindSpore wrote."""
    source = FIXTURES / f"{case}_step{SAVE_AT}.ckpt"
    target = tmp_path / "copy.ckpt"
    save_mindspore_checkpoint(load_mindspore_checkpoint(source), target)
    assert target.read_bytes() == source.read_bytes()


def test_fixture_contents_and_types():
    loaded = load_mindspore_checkpoint(FIXTURES / "momentum_step3.ckpt")
    assert list(loaded)[:8] == [
        "fc1.weight",
        "fc1.bias",
        "bn.gamma",
        "bn.beta",
        "fc2.weight",
        "fc2.bias",
        "bn.moving_mean",
        "bn.moving_variance",
    ]
    assert loaded["global_step"].dtype == np.int32
    assert loaded["global_step"].shape == (1,)
    assert loaded["global_step"].tolist() == [SAVE_AT]
    assert loaded["learning_rate"].shape == ()
    assert loaded["momentum"].dtype == np.float32
    assert loaded["moments.fc1.weight"].shape == (3, 4)


def test_round_trip_of_every_dtype_scalars_strings_and_crc(tmp_path):
    values = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f16": np.array([1.5, -2.0], dtype=np.float16),
        "f64": np.array(3.25),
        "i8": np.array([-1, 2], dtype=np.int8),
        "u8": np.array([255], dtype=np.uint8),
        "i16": np.array([7], dtype=np.int16),
        "u16": np.array([7], dtype=np.uint16),
        "i32": np.array([[1], [2]], dtype=np.int32),
        "u32": np.array([1], dtype=np.uint32),
        "i64": np.array(-5, dtype=np.int64),
        "u64": np.array([5], dtype=np.uint64),
        "bool": np.array([True, False]),
        "big_endian": np.array([1.0, 2.0], dtype=">f4"),
        "name": "resnet50",
        "int": 3,
        "float": 0.5,
    }
    for crc in (False, True):
        path = tmp_path / f"all-{crc}.ckpt"
        save_mindspore_checkpoint(values, path, crc_check=crc)
        loaded = load_mindspore_checkpoint(path)
        assert list(loaded) == list(values)
        for name, value in values.items():
            expected = np.asarray(value)
            assert loaded[name].shape == expected.shape, name
            if expected.dtype.kind == "U":
                assert str(loaded[name]) == value
            else:
                assert loaded[name].dtype == expected.dtype.newbyteorder("="), name
                np.testing.assert_array_equal(loaded[name], expected)
        assert path.read_bytes()[-17:-10] == (b"crc_num" if crc else path.read_bytes()[-17:-10])


def test_crc_mismatch_and_garbage_raise(tmp_path):
    path = tmp_path / "x.ckpt"
    save_mindspore_checkpoint({"w": np.ones(3, np.float32)}, path, crc_check=True)
    content = bytearray(path.read_bytes())
    content[-20] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="CRC"):
        load_mindspore_checkpoint(path)
    path.write_bytes(b"\x0a\xff\xff\xff\x0f not a checkpoint")
    with pytest.raises(ValueError, match="not a readable MindSpore checkpoint"):
        load_mindspore_checkpoint(path)


def test_crc_trailer_matches_mindspore_layout(tmp_path):
    path = tmp_path / "c.ckpt"
    save_mindspore_checkpoint({"w": np.ones(2, np.float32)}, path, crc_check=True)
    content = path.read_bytes()
    body = content[:-17]
    assert content[-17:-10] == b"crc_num"
    assert int.from_bytes(content[-10:], "big") == binascii.crc32(body)


def test_bfloat16_is_written_as_bfloat16_and_read_as_float32(tmp_path):
    value = torch.tensor([1.0, -0.5, 3.140625], dtype=torch.bfloat16)
    path = tmp_path / "bf16.ckpt"
    save_mindspore_checkpoint({"w": value}, path)
    assert b"BFloat16" in path.read_bytes()
    loaded = load_mindspore_checkpoint(path)["w"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, value.float().numpy())


def test_large_parameters_are_sliced_like_mindspore(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "_SLICE_BYTES", 16)
    value = np.arange(40, dtype=np.float32).reshape(10, 4)
    path = tmp_path / "sliced.ckpt"
    save_mindspore_checkpoint({"w": value, "b": np.ones(2, np.float32)}, path)
    assert path.read_bytes().count(b"Float32") == 11  # ceil(160 / 16) slices + "b"
    loaded = load_mindspore_checkpoint(path)
    np.testing.assert_array_equal(loaded["w"], value)
    assert list(loaded) == ["w", "b"]


def test_unsupported_values_raise(tmp_path):
    with pytest.raises(TypeError, match="complex"):
        save_mindspore_checkpoint({"c": np.ones(2, np.complex64)}, tmp_path / "c.ckpt")
    with pytest.raises(TypeError, match="must be a numpy array"):
        save_mindspore_checkpoint({"o": object()}, tmp_path / "o.ckpt")
    with pytest.raises(TypeError, match="dict"):
        save_mindspore_checkpoint([1, 2], tmp_path / "l.ckpt")


def test_names_map_batch_norm_and_layer_norm():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.LayerNorm(3), nn.Linear(3, 1))
    names = mindspore_names(model)
    assert names == {
        "0.weight": "0.weight",
        "0.bias": "0.bias",
        "1.weight": "1.gamma",
        "1.bias": "1.beta",
        "1.running_mean": "1.moving_mean",
        "1.running_var": "1.moving_variance",
        "2.weight": "2.gamma",
        "2.bias": "2.beta",
        "3.weight": "3.weight",
        "3.bias": "3.bias",
    }
    trainable = [name for name, _ in msoptim.trainable_params(model)]
    assert trainable == [n for k, n in names.items() if "running" not in k]


def test_shared_parameters_have_one_name():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    names = mindspore_names(model)
    assert names["2.weight"] == "0.weight"
    assert list(torch_to_mindspore(model)) == ["0.weight", "0.bias"]


def test_torch_to_mindspore_and_back_with_optimizer():
    torch.manual_seed(1)
    src, dst = Net(), Net()
    opt_src = msoptim.Momentum(msoptim.trainable_params(src), 0.1, 0.9)
    opt_dst = msoptim.Momentum(msoptim.trainable_params(dst), 0.5, 0.9)
    x = torch.randn(8, 4)
    for _ in range(2):
        opt_src.zero_grad()
        src(x).pow(2).mean().backward()
        opt_src.step()
    exported = torch_to_mindspore(src, opt_src)
    assert exported["global_step"].tolist() == [2]
    assert "bn.moving_variance" in exported
    assert "moments.bn.gamma" in exported
    assert mindspore_to_torch(exported, dst, opt_dst) == ([], [])
    assert int(opt_dst.global_step) == 2
    assert float(opt_dst.learning_rate) == float(opt_src.learning_rate)
    for a, b in zip(src.state_dict().values(), dst.state_dict().values()):
        if a.dtype.is_floating_point:
            assert torch.equal(a, b)
    for p, q in zip(opt_src.parameters, opt_dst.parameters):
        assert torch.equal(opt_src.state[p]["moments"], opt_dst.state[q]["moments"])


def test_mindspore_to_torch_strict_errors_change_nothing():
    model = Net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    exported = torch_to_mindspore(Net())
    extra = {**exported, "head.weight": np.ones(2, np.float32)}
    with pytest.raises(KeyError, match=r"not used by the model or optimizer: \['head.weight'\]"):
        mindspore_to_torch(extra, model)
    partial = {k: v for k, v in exported.items() if k != "bn.gamma"}
    with pytest.raises(KeyError, match=r"missing from the checkpoint: \['bn.weight'\]"):
        mindspore_to_torch(partial, model)
    wrong = {**exported, "fc1.weight": np.ones((5, 5), np.float32)}
    with pytest.raises(ValueError, match="shape"):
        mindspore_to_torch(wrong, model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    result = mindspore_to_torch(extra, model, strict=False)
    assert result.unexpected_keys == ["head.weight"]
    assert result.missing_keys == []


def test_optimizer_entries_without_optimizer_are_unexpected():
    model = Net()
    opt = msoptim.Momentum(msoptim.trainable_params(model), 0.1, 0.9)
    exported = torch_to_mindspore(model, opt)
    result = mindspore_to_torch(exported, Net(), strict=False)
    assert "global_step" in result.unexpected_keys
    assert "moments.fc1.weight" in result.unexpected_keys
