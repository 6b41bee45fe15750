"""The CUDA multi-tensor kernels' bookkeeping (kernels/_triton.py), checked on CPU tensors.

The kernels themselves need Triton (and a GPU: ``tests/gpu``); with Triton installed, the
interpreter check below also runs every kernel on CPU tensors against the reference.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from msoptim.kernels import _triton

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_tables():
    _triton.clear_tables()
    yield
    _triton.clear_tables()


def lists(*lengths: int) -> tuple[list[torch.Tensor], ...]:
    return tuple([torch.zeros(n) for n in lengths] for _ in range(3))


def test_every_element_belongs_to_exactly_one_program():
    params, grads, moments = lists(5000, 1, 2048, 2049, 7)
    table = _triton._table("t", (params, grads, moments), 0)
    covered = [torch.zeros(p.numel(), dtype=torch.int64) for p in params]
    for t, start in zip(table.block_tensor.tolist(), table.block_start.tolist()):
        covered[t][start : start + _triton.BLOCK] += 1
    assert all(bool((c == 1).all()) for c in covered)
    assert table.blocks == 3 + 1 + 1 + 2 + 1
    assert table.numels_device.tolist() == [5000, 1, 2048, 2049, 7]
    assert table.addresses.shape == (3, 5)
    assert table.addresses[1].tolist() == [g.data_ptr() for g in grads]


def test_a_kept_table_is_reused_and_refreshed_when_gradients_move():
    params, grads, moments = lists(300, 40)
    first = _triton._table("t", (params, grads, moments), 0)
    assert _triton._table("t", (params, grads, moments), 0) is first
    new_grads = [g.clone() for g in grads]
    again = _triton._table("t", (params, new_grads, moments), 0)
    assert again is first
    assert first.addresses[1].tolist() == [g.data_ptr() for g in new_grads]


def test_other_lengths_behind_the_same_call_site_get_a_new_table():
    first, last = torch.zeros(16), torch.zeros(24)
    one = _triton._table("t", ([first, torch.zeros(5), last],) * 2, 0)
    other = _triton._table("t", ([first, torch.zeros(7), last],) * 2, 0)
    assert other is not one
    assert other.numels == [16, 7, 24]
    assert other.numels_device.tolist() == [16, 7, 24]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda p, g, m: g.__setitem__(0, torch.zeros(8, 6).t()),  # not contiguous
        lambda p, g, m: m.__setitem__(1, torch.zeros(40, dtype=torch.float64)),  # dtype
        lambda p, g, m: g.__setitem__(1, torch.zeros(41)),  # length
        lambda p, g, m: g.__setitem__(1, torch.zeros(41)[1:]),  # 4 bytes off 16-byte alignment
        # the same state tensor object, its data swapped: re-checked, as its address moved
        lambda p, g, m: setattr(m[1], "data", torch.zeros(40, dtype=torch.float64)),
        lambda p, g, m: setattr(p[0], "data", torch.zeros(6, 8).t()),  # a parameter: always
    ],
    ids=["strided", "float64", "length", "misaligned", "state-data", "param-data"],
)
def test_odd_tensors_are_left_to_the_per_tensor_path(spoil):
    params, grads, moments = lists(48, 40)
    assert _triton._table("fresh", (params, grads, moments), 0) is not None
    spoil(params, grads, moments)
    assert _triton._table("t", (params, grads, moments), 0) is None  # a new call site
    assert _triton._table("fresh", (params, grads, moments), 0) is None  # a kept one


def test_a_tensor_subclass_is_left_to_the_per_tensor_path():
    class Wrapped(torch.Tensor):
        pass

    params, grads, moments = lists(48)
    params[0] = params[0].as_subclass(Wrapped)
    assert _triton._table("t", (params, grads, moments), 0) is None


def test_per_parameter_scalars_must_hold_one_float32_each():
    params, grads, moments = lists(48, 40)
    powers = [torch.ones(1), torch.ones(1)]
    assert _triton._table("t", (params, grads, moments, powers), 1) is not None
    assert _triton._table("u", (params, grads, moments, [torch.ones(2), powers[1]]), 1) is None


def test_per_tensor_lrs_need_one_per_tensor_on_the_call_s_device():
    params, grads, moments = lists(48, 40, 7)
    lrs = [torch.tensor(0.1), torch.tensor(0.1), torch.tensor(0.2)]
    assert _triton._table("t", (params, grads, moments, lrs), 1) is not None
    assert _triton._table("u", (params, grads, moments, lrs[:2]), 1) is None
    assert _triton._table("v", (params, grads, moments, [*lrs[:2], lrs[2].double()]), 1) is None
    assert _triton._per_tensor(lrs[0], (params,)) == [lrs[0]] * 3
    assert _triton._per_tensor(lrs, (params,)) is lrs


def test_two_optimizers_over_the_same_parameters_keep_their_own_tables():
    params, grads, moments = lists(48, 40)
    other_moments = [torch.zeros_like(m) for m in moments]
    lrs = [torch.tensor(0.1)] * 2
    mine = _triton._table("t", (params, grads, moments, lrs), 1)
    theirs = _triton._table("t", (params, grads, other_moments, lrs), 1)
    assert mine is not theirs
    assert _triton._table("t", (params, grads, moments, lrs), 1) is mine


def test_groups_left_by_a_launch_are_all_or_none(monkeypatch):
    params = [torch.zeros(3), torch.zeros(4)]
    assert _triton.steps_together(lambda: True, params) == [0, 1]  # no Triton / CUDA here
    monkeypatch.setattr(_triton, "available", lambda tensors: True)
    assert _triton.steps_together(lambda: True, params) == []
    assert _triton.steps_together(lambda: False, params) == [0, 1]


def test_where_groups_may_share_one_call():
    from msoptim.kernels import together_device

    assert together_device([torch.zeros(3)]) == "cpu"
    assert together_device([]) is None
    assert together_device([torch.zeros(3, device="meta")]) is None


def test_no_triton_or_no_cuda_means_not_available():
    assert not _triton.available([torch.zeros(3)])
    assert not _triton.available([])


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs Triton")
def test_the_kernels_equal_the_reference_in_triton_s_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_triton_kernels.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_kernel_that_cannot_be_built_names_the_way_out():
    class Broken:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                raise ValueError("no ptxas for this GPU")

            return launch

    with pytest.raises(RuntimeError, match=r"fused=False \(or foreach=True\)") as caught:
        _triton._run(Broken(), (1,), 0, BLOCK=_triton.BLOCK)
    assert "no ptxas for this GPU" in str(caught.value)
