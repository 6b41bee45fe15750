"""ProximalAdagrad's scalar loop against MindSpore 2.10's CPU kernel, bit for bit.

``tests/data/proximal_adagrad.json`` (``tools/record_proximal_adagrad.py``): ``ApplyProximalAdagrad``
on 3-element tensors, which its vector loops (blocks of 4) leave entirely to the scalar loop, over
random values, lrs, l1 and l2 (zero accumulators included).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from msoptim.kernels.proximal_adagrad import proximal_adagrad_update

CASES = json.loads((Path(__file__).parent / "data" / "proximal_adagrad.json").read_text())["cases"]


def _tensor(values):
    return torch.from_numpy(np.array(values, dtype=np.float64).astype(np.float32))


def _same(a, b):
    """The same float32 values bit for bit, any NaN equal to any NaN (its sign is not data)."""
    return bool(((a.view(torch.int32) == b.view(torch.int32)) | (a.isnan() & b.isnan())).all())


def _replay(case, *, scalar_tail):
    var, accum = _tensor(case["var"]), _tensor(case["accum"])
    lr = _tensor(case["lr"]).reshape(())
    l1, l2 = (float(np.float32(case[k][0])) for k in ("l1", "l2"))
    proximal_adagrad_update(
        var, _tensor(case["grad"]), accum, lr, torch.ones(()), l1=l1, l2=l2, scalar_tail=scalar_tail
    )
    return var, accum


@pytest.mark.parametrize("start", range(0, len(CASES), 50))
def test_the_scalar_loop_is_mindspores(start):
    for case in CASES[start : start + 50]:
        var, accum = _replay(case, scalar_tail=True)
        assert _same(accum, _tensor(case["expect_accum"])), case
        assert _same(var, _tensor(case["expect_var"])), case


def test_the_vector_loops_arithmetic_would_differ_on_these_cases():
    """The recorded cases tell the two loops apart (the test above could fail)."""
    differ = 0
    for case in CASES:
        var, _ = _replay(case, scalar_tail=False)
        differ += not _same(var, _tensor(case["expect_var"]))
    assert differ > 20
