"""``msoptim._division.divide_by_number``: one correctly rounded division on every device."""

from __future__ import annotations

import pytest
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


def _stair(step):
    from msoptim._division import divide

    return torch.floor(divide(step, torch.full_like(step, 41.0)))


def _compiled_stair_code(steps):
    """The stair compiled afresh (no cached graph: the lowering's branch is not in its key)."""
    from torch._inductor import config
    from torch._inductor.utils import run_and_get_code

    torch._dynamo.reset()
    with config.patch(fx_graph_cache=False):
        compiled = torch.compile(_stair, fullgraph=True, dynamic=False)
        got, (code, *_) = run_and_get_code(compiled, steps)
    assert torch.equal(bits(got), bits(torch.floor(steps / 41.0)))
    return code


STEPS = torch.arange(0, 200, dtype=torch.float32)


def test_compiled_division_is_lowered_to_one_pointwise_division():
    """Under torch.compile the division is msoptim's ``divide`` op, which Inductor lowers to a
    plain division (a constant divisor would otherwise become a reciprocal multiplication off
    the CPU) where the compile divides exactly: the code divides in place, no call of the op."""
    from torch._inductor import config, lowering

    from msoptim.kernels._fused import exact_compile_options

    with config.patch(exact_compile_options()):
        code = _compiled_stair_code(STEPS)
    assert torch.ops.msoptim.divide.default in lowering.lowerings
    assert "msoptim" not in code


def test_with_div_rn_it_divides_in_place_under_any_options():
    from torch._inductor.ops_handler import OpsHandler

    if not hasattr(OpsHandler, "div_rn"):
        pytest.skip("this torch has no ops.div_rn (torch 2.11)")
    assert "msoptim" not in _compiled_stair_code(STEPS)


def test_without_div_rn_or_exact_options_it_calls_the_eager_op(monkeypatch):
    """torch 2.11 has no ``ops.div_rn``, and Triton's ``/`` approximates unless the compile asks
    for IEEE division: the op is then called as it is, one exact division."""
    from torch._inductor.ops_handler import OpsHandler

    monkeypatch.delattr(OpsHandler, "div_rn", raising=False)
    assert "msoptim" in _compiled_stair_code(STEPS)


def test_divide_by_number_under_compile_uses_the_op(monkeypatch):
    """Off the CPU and compiling, ``divide_by_number`` routes through ``divide`` with the number
    as a tensor divisor (the meta device stands in for CUDA); on the CPU it stays ``/``."""
    from msoptim import _division

    calls = []
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    monkeypatch.setattr(_division, "divide", lambda a, b: calls.append((a, b)) or a)
    x = torch.empty(3, device="meta")
    assert divide_by_number(x, 41.0) is x
    ((dividend, divisor),) = calls
    assert dividend is x
    assert divisor.device.type == "meta"
    assert divisor.shape == x.shape
    divide_by_number(torch.ones(3), 41.0)
    assert len(calls) == 1
