"""msoptim's step wrapper (``msoptim.step_wrapper``): torch's step hooks in torch's order, and the
``Optimizer.step#<class>.step`` profiler range only while a profiler runs."""

from __future__ import annotations

import pytest
import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

import msoptim


def _momentum():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = msoptim.Momentum([("w", w)], learning_rate=0.1, momentum=0.9)
    w.grad = torch.tensor([0.5, 0.5])
    return opt


def test_hooks_run_in_torchs_order_without_a_profiler_range(monkeypatch):
    def no_range(*args, **kwargs):
        raise AssertionError("a profiler range was opened with no profiler running")

    monkeypatch.setattr(torch.autograd.profiler, "record_function", no_range)
    opt, calls = _momentum(), []
    handles = [
        register_optimizer_step_pre_hook(lambda *a: calls.append("global pre")),
        opt.register_step_pre_hook(lambda *a: calls.append("pre")),
        opt.register_step_post_hook(lambda *a: calls.append("post")),
        register_optimizer_step_post_hook(lambda *a: calls.append("global post")),
    ]
    try:
        opt.step(lambda: calls.append("closure"))
    finally:
        for handle in handles:
            handle.remove()
    assert calls == ["global pre", "pre", "closure", "post", "global post"]
    assert int(opt.global_step) == 1


def test_a_pre_hook_may_replace_the_arguments():
    opt, seen = _momentum(), []
    opt.register_step_pre_hook(lambda o, args, kwargs: (args, {"closure": lambda: seen.append(1)}))
    opt.step()
    assert seen == [1]


def test_a_pre_hook_returning_something_else_is_an_error():
    opt = _momentum()
    opt.register_step_pre_hook(lambda *a: "not a tuple")
    with pytest.raises(RuntimeError, match="must return None or a tuple"):
        opt.step()
    assert int(opt.global_step) == 0


def test_a_profiler_sees_the_step_range():
    opt = _momentum()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        opt.step()
    names = {event.name for event in prof.events()}
    assert "Optimizer.step#Momentum.step" in names
