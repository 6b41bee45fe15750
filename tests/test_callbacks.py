"""``msoptim.LearningRateScheduler``: MindSpore's callback reads the lr as NumPy prints it.

MindSpore 2.10 evaluates ``float(np.array2string(opt.learning_rate.asnumpy()))`` (NumPy 1.26) before
calling the user's function, so the function sees at most 8 digits after the decimal point (or 8
after the mantissa's point in scientific notation), not the float32 value. The expected values below
are NumPy 1.26's; more are replayed from ``tests/golden_recorded`` (``tools/record_golden_callback.py``).
"""

from __future__ import annotations

import pytest
import torch

import msoptim
from msoptim.callbacks import printed_float32

NUMPY_1_26 = [
    # (float32 value, float(np.array2string(np.array(value, np.float32))) with NumPy 1.26)
    (0.0013889475, 0.00138895),
    (0.011111109, 0.01111111),
    (0.0012345666, 0.00123457),
    (0.0004115233, 0.00041152),
    (0.001539, 0.001539),
    (1.2345678e-05, 1.2345678e-05),
    (1e-05, 1e-05),
    (123.45679, 123.45679),
    (76936728.0, 76936728.0),
    (0.0, 0.0),
]


@pytest.mark.parametrize(("value", "printed"), NUMPY_1_26)
def test_the_lr_is_read_as_numpy_1_26_prints_it(value, printed):
    assert printed_float32(value) == printed


def test_a_negative_lr_from_the_function_is_assigned_as_in_mindspore():
    param = torch.nn.Parameter(torch.zeros(3))
    opt = msoptim.Momentum([param], 0.1, 0.9)
    msoptim.LearningRateScheduler(lambda lr, step: lr - 0.25).step_end(opt, 1)
    assert opt.learning_rate.item() == pytest.approx(-0.15)
