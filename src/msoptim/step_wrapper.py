"""The wrapper torch puts around every optimizer's ``step``, without its cost when nobody looks.

``torch.optim.Optimizer`` wraps a subclass's ``step`` once (``profile_hook_step``): it runs the
step pre- and post-hooks (``register_step_pre_hook`` and friends, global ones included) and opens
a profiler range, ``Optimizer.step#<class>.step``. Opening that range is a ``record_function``
call through torch's dispatcher whether or not a profiler runs: about 0.1 ms of a CPU step on
ResNet-50 shapes, whose update has just evicted the caches that code runs from (measured with
``tools/step_overhead.py``), about as much as the Python of the step's own bookkeeping.

msoptim's optimizers keep torch's wrapper while a profiler runs (or dynamo traces the step) and
otherwise run the same hooks in the same order without the range.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import torch
from torch.autograd import profiler
from torch.optim import optimizer as torch_optimizer

__all__ = ["hooked_step"]


def hooked_step(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` with torch's step hooks, and its profiler range while a profiler runs."""
    profiled = torch.optim.Optimizer.profile_hook_step(step)

    @functools.wraps(step)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if profiler._is_profiler_enabled or torch.compiler.is_compiling():
            return profiled(*args, **kwargs)
        optimizer = args[0]
        for hook in itertools.chain(
            torch_optimizer._global_optimizer_pre_hooks.values(),
            optimizer._optimizer_step_pre_hooks.values(),
        ):
            result = hook(optimizer, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        f"{step} must return None or a tuple of (new_args, new_kwargs), but got "
                        f"{result}."
                    )
                args, kwargs = result
        out = step(*args, **kwargs)
        optimizer._optimizer_step_code()
        for hook in itertools.chain(
            optimizer._optimizer_step_post_hooks.values(),
            torch_optimizer._global_optimizer_post_hooks.values(),
        ):
            hook(optimizer, args, kwargs)
        return out

    return wrapper
