"""``msoptim._division.divide_by_number``: one correctly rounded division on every device."""

from __future__ import annotations

import torch

import msoptim
from msoptim._division import divide_by_number


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32)


def test_on_cpu_it_is_the_plain_division():
    x = torch.randn(10_000, generator=torch.Generator().manual_seed(0)) * 1e3
    for number in (3.0, 41.0, 500.0, 768, 0.1):
        assert torch.equal(bits(divide_by_number(x, number)), bits(x / number))


def test_a_reciprocal_multiplication_would_step_a_stair_late():
    """What eager CUDA does with ``tensor / number`` (``x * float32(1/number)``) and why it
    matters: a stair schedule's ``floor(step / decay_steps)`` at step == decay_steps."""
    step = torch.tensor(41.0)
    reciprocal = torch.tensor(1.0) / torch.tensor(41.0)
    assert torch.floor(step * reciprocal).item() == 0.0  # the hazard: 0.99999994
    assert torch.floor(divide_by_number(step, 41.0)).item() == 1.0


def test_off_the_cpu_it_divides_by_a_tensor_of_the_same_device():
    x = torch.empty(5, device="meta")
    out = divide_by_number(x, 7.0)
    assert out.device.type == "meta"
    assert out.shape == x.shape
    assert out.dtype == x.dtype


def test_a_stair_schedule_steps_exactly_at_the_boundary():
    schedule = msoptim.ExponentialDecayLR(0.1, 0.5, 41, is_stair=True)
    before, at = schedule(torch.tensor([40])), schedule(torch.tensor([41]))
    assert before.item() == torch.tensor(0.1).item()
    assert at.item() == (torch.tensor(0.1) * torch.tensor(0.5)).item()
