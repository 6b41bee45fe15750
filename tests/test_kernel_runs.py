"""MindSpore 2.10's CPU optimizer kernels run directly, replayed bit for bit.

``tests/data/<kernel>.json`` (``tools/record_kernel_runs.py``): ``ApplyProximalAdagrad`` on
3-element, ``ApplyRMSProp`` and ``Adam`` (Nesterov or not) on 4-element tensors, which their vector
loops (blocks of 4 and 8) leave entirely to the scalar loop, and ``AdamWeightDecay`` on 16 and 4
elements, over random values and hyper-parameters (zero accumulators included). For the scalar
loops, a second test shows that the vector loop's arithmetic would not pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from msoptim.kernels.adam import _adam_math, bias_corrected_lr
from msoptim.kernels.adam import _constants as adam_constants
from msoptim.kernels.adam_weight_decay import _one_minus, adam_weight_decay_update
from msoptim.kernels.proximal_adagrad import proximal_adagrad_update
from msoptim.kernels.rmsprop import _constants, _rate64, rmsprop_update

DATA = Path(__file__).parent / "data"


def _cases(kernel: str) -> list[dict]:
    return json.loads((DATA / f"{kernel}.json").read_text())["cases"]


def _tensor(values):
    return torch.from_numpy(np.array(values, dtype=np.float64).astype(np.float32))


def _scalar(case, key) -> float:
    return float(np.float32(case[key][0]))


def _same(a, b):
    """The same float32 values bit for bit, any NaN equal to any NaN (its sign is not data)."""
    return bool(((a.view(torch.int32) == b.view(torch.int32)) | (a.isnan() & b.isnan())).all())


def proximal_adagrad(case, *, scalar_tail):
    var, accum = _tensor(case["var"]), _tensor(case["accum"])
    lr = _tensor(case["lr"]).reshape(())
    l1, l2 = _scalar(case, "l1"), _scalar(case, "l2")
    grad = _tensor(case["grad"])
    proximal_adagrad_update(
        var, grad, accum, lr, torch.ones(()), l1=l1, l2=l2, scalar_tail=scalar_tail
    )
    return {"var": var, "accum": accum}


def rmsprop(case, *, scalar_tail):
    var, mean_square = _tensor(case["var"]), _tensor(case["mean_square"])
    moment, grad, lr = _tensor(case["moment"]), _tensor(case["grad"]), _tensor(case["lr"])
    decay = _scalar(case, "decay")
    constants = _constants(decay, _scalar(case, "momentum"), _scalar(case, "epsilon"))
    rmsprop_update(
        var,
        grad,
        mean_square,
        moment,
        lr.reshape(()),
        torch.ones(()),
        **constants,
        rate64=_rate64(decay),
        scalar_tail=scalar_tail,
    )
    return {"var": var, "mean_square": mean_square, "moment": moment}


def adam(case, *, scalar_tail):
    beta1, beta2 = _scalar(case, "beta1"), _scalar(case, "beta2")
    beta1c, beta2c = adam_constants(beta1, beta2)
    powers = (_tensor(case[key]).reshape(()) for key in ("beta1_power", "beta2_power"))
    lr_t = bias_corrected_lr(_tensor(case["lr"]).reshape(()), *powers)
    var, m, v = _adam_math(
        _tensor(case["var"]),
        _tensor(case["grad"]),
        _tensor(case["m"]),
        _tensor(case["v"]),
        lr_t,
        slice(0, 4) if scalar_tail else None,
        beta1=beta1,
        beta1c=beta1c,
        beta2c=beta2c,
        eps=_scalar(case, "eps"),
        nesterov=case["nesterov"][0] == "True",
    )
    return {"var": var, "m": m, "v": v}


def adam_weight_decay(case, *, scalar_tail):
    lr = _tensor(case["lr"]).reshape(())
    var, m, v = _tensor(case["var"]), _tensor(case["m"]), _tensor(case["v"])
    adam_weight_decay_update(
        var,
        _tensor(case["grad"]),
        m,
        v,
        lr,
        _scalar(case, "weight_decay"),
        beta1c=_one_minus(_scalar(case, "beta1")),
        beta2c=_one_minus(_scalar(case, "beta2")),
        eps=_scalar(case, "eps"),
    )
    return {"var": var, "m": m, "v": v}


SCALAR_LOOPS = {"proximal_adagrad": proximal_adagrad, "rmsprop": rmsprop, "adam": adam}
KERNELS = {**SCALAR_LOOPS, "adam_weight_decay": adam_weight_decay}


@pytest.mark.parametrize("kernel", KERNELS)
def test_the_kernel_is_mindspores(kernel):
    for case in _cases(kernel):
        for name, value in KERNELS[kernel](case, scalar_tail=True).items():
            assert _same(value, _tensor(case[f"expect_{name}"])), (name, case)


@pytest.mark.parametrize("kernel", SCALAR_LOOPS)
def test_the_vector_loops_arithmetic_would_differ_on_these_cases(kernel):
    """The recorded cases tell the two loops apart (the test above could fail)."""
    differ = 0
    for case in _cases(kernel):
        result = KERNELS[kernel](case, scalar_tail=False)
        differ += sum(not _same(v, _tensor(case[f"expect_{n}"])) for n, v in result.items())
    assert differ > 20
