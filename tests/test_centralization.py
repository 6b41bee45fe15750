"""Gradient centralization's mean against MindSpore 2.10's CPU ``ReduceMean``, bit for bit.

``tests/data/reduce_mean.json``: random gradients of 2-D and conv-like shapes and their means over
every axis but the first, recorded by ``tools/record_reduce_mean.py`` (the op the golden
``optimizer_gc_emulated`` cases centralize with).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from msoptim.kernels.centralization import centralization_mean

CASES = json.loads((Path(__file__).parent / "data" / "reduce_mean.json").read_text())["cases"]


def _tensor(values, shape):
    return torch.from_numpy(np.array(values, dtype=np.float64).astype(np.float32).reshape(shape))


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{tuple(c['shape'])}-{i}" for i, c in enumerate(CASES)]
)
def test_the_mean_is_mindspores(case):
    x = _tensor(case["x"], case["shape"])
    want = _tensor(case["mean"], (case["shape"][0],) + (1,) * (len(case["shape"]) - 1))
    got = centralization_mean(x)
    assert got.shape == want.shape
    assert torch.equal(got.view(torch.int32), want.view(torch.int32))


def test_torch_mean_would_differ_on_these_gradients():
    """The recorded rows tell MindSpore's order from torch's (the test above could fail)."""
    differ = 0
    for case in CASES:
        x = _tensor(case["x"], case["shape"])
        want = _tensor(case["mean"], (case["shape"][0],) + (1,) * (len(case["shape"]) - 1))
        plain = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
        differ += int((plain != want).sum())
    assert differ > 10
