"""SGD's momentum buffer in MindSpore's float32 arithmetic (its CPU kernel's op order).

The recorded SGD runs (``tests/golden``, ``tests/golden_recorded``) match a kernel that rounds
``momentum * accum`` and ``(1 - dampening) * g`` to float32 before their sum, with ``dampening``
itself a float32 attribute. This pins that form against a NumPy float32 model, element by element,
where the double-precision form ``round(m*a + (1.0 - d)*g)`` would differ.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import msoptim

F32 = np.float32


def mindspore_sgd(w, grads, *, lr, momentum, dampening, nesterov):
    """MindSpore's SGD kernel in NumPy float32: one rounding per operation."""
    lr, m, keep = F32(lr), F32(momentum), F32(1) - F32(dampening)
    accum = None
    for g in grads:
        accum = g.copy() if accum is None else accum * m + keep * g
        direction = g + accum * m if nesterov else accum
        w = w - direction * lr
    return w, accum


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"momentum": 0.9, "dampening": 0.1, "nesterov": False},
        {"momentum": 0.3968, "dampening": 0.6908, "nesterov": False},
        {"momentum": 0.9, "dampening": 0.0, "nesterov": True},
    ],
)
def test_the_momentum_buffer_is_float32_arithmetic(kwargs, foreach):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(4096).astype(F32)
    grads = [rng.standard_normal(4096).astype(F32) for _ in range(4)]
    param = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = msoptim.SGD([("fc.weight", param)], learning_rate=0.1, **kwargs, foreach=foreach)
    for g in grads:
        opt((torch.from_numpy(g),))
    want_w, want_accum = mindspore_sgd(w0, grads, lr=0.1, **kwargs)
    accum = opt.state[param]["accum"].numpy()
    assert np.array_equal(accum.view(np.int32), want_accum.view(np.int32))
    assert np.array_equal(param.detach().numpy().view(np.int32), want_w.view(np.int32))


def test_the_double_precision_form_would_differ_on_these_inputs():
    """The data above tells the two forms apart (otherwise the test could not fail)."""
    rng = np.random.default_rng(0)
    rng.standard_normal(4096)
    g1, g2 = (rng.standard_normal(4096).astype(F32) for _ in range(2))
    accum = g1 * F32(0.9)
    single = accum + (F32(1) - F32(0.1)) * g2
    double = (accum.astype(np.float64) + (1.0 - 0.1) * g2.astype(np.float64)).astype(F32)
    assert (single != double).any()
