"""Where a CPU step's time goes: msoptim's step against its kernel call alone, and torch's.

Each round evicts the caches first (a 256 MB copy), as a training step's forward and backward
would, then times ``opt.step()`` and the kernel call it makes with the same tensors:

* msoptim Adam / AdamWeightDecay / Momentum / SGD (without momentum; default path: the C kernels):
  the step, and the
  ctypes call of the C kernel inside it;
* torch's fused optimizer of the same math: the step, and ``torch._fused_adam_/_fused_adamw_/
  _fused_sgd_`` on the same lists.

The difference is the Python (and C++) work around the kernel. Usage::

    PYTHONPATH=src:. python tools/step_overhead.py [--optimizer Adam] [--model resnet50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from bench.run import make_params, model_shapes, set_grads

import msoptim
from msoptim.kernels import adam, adam_weight_decay, momentum, sgd

KERNEL_MODULES = {
    "Adam": adam,
    "AdamWeightDecay": adam_weight_decay,
    "Momentum": momentum,
    "SGD": sgd,
}


def _msoptim(name: str, model: str) -> tuple[Callable[[], None], list[float]]:
    """The optimizer's step, and the list each step appends its C call's seconds to."""
    params = make_params(model_shapes(model, False), torch.device("cpu"))
    set_grads(params, torch.device("cpu"))
    extra = {"momentum": 0.9} if name == "Momentum" else {}  # SGD: without momentum
    opt = getattr(msoptim, name)(params, 1e-3, **extra)
    module, calls = KERNEL_MODULES[name], []
    real = module._load_native()

    def timed(*args: object) -> None:
        start = time.perf_counter()
        real(*args)
        calls.append(time.perf_counter() - start)

    module._load_native = lambda: timed
    return opt.step, calls


def _torch(name: str, model: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """torch's fused step, and its fused kernel alone on the same lists."""
    params = [p for _, p in make_params(model_shapes(model, False), torch.device("cpu"))]
    for param in params:
        param.grad = torch.randn_like(param)
    if name in ("Momentum", "SGD"):
        opt = torch.optim.SGD(
            params, lr=1e-3, momentum=0.9 if name == "Momentum" else 0.0, fused=True
        )
    else:
        cls = torch.optim.Adam if name == "Adam" else torch.optim.AdamW
        opt = cls(params, lr=1e-3, fused=True)
    opt.step()
    states = [opt.state[p] for p in params]
    grads = [p.grad for p in params]
    if name in ("Momentum", "SGD"):
        moments = [s["momentum_buffer"] for s in states] if name == "Momentum" else []
        return opt.step, lambda: torch._fused_sgd_(
            params, grads, moments, weight_decay=0.0, momentum=0.9 if moments else 0.0, lr=1e-3,
            dampening=0.0, nesterov=False, maximize=False, is_first_step=False,
        )  # fmt: skip
    m, v, steps = ([s[k] for s in states] for k in ("exp_avg", "exp_avg_sq", "step"))
    fused = torch._fused_adam_ if name == "Adam" else torch._fused_adamw_
    decay = 0.0 if name == "Adam" else 0.01

    def kernel() -> None:
        torch._foreach_add_(steps, 1)
        fused(params, grads, m, v, [], steps, lr=1e-3, beta1=0.9, beta2=0.999,
              weight_decay=decay, eps=1e-8, amsgrad=False, maximize=False)  # fmt: skip

    return opt.step, kernel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="Adam", choices=sorted(KERNEL_MODULES))
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    ours, calls = _msoptim(args.optimizer, args.model)
    theirs, their_kernel = _torch(args.optimizer, args.model)
    for _ in range(3):
        ours(), theirs(), their_kernel()
    big = torch.rand(64 << 20)
    scratch = torch.empty_like(big)
    times: dict[str, list[float]] = {"msoptim step": [], "torch step": [], "torch kernel": []}
    calls.clear()
    for _ in range(args.rounds):
        for label, step in (("msoptim step", ours), ("torch step", theirs),
                            ("torch kernel", their_kernel)):  # fmt: skip
            scratch.copy_(big)
            start = time.perf_counter()
            step()
            times[label].append(time.perf_counter() - start)
    times["msoptim C call"] = calls
    median = {label: statistics.median(values) * 1e3 for label, values in times.items()}
    print(f"{args.optimizer}, {args.model}, {torch.get_num_threads()} threads, median ms of "
          f"{args.rounds} rounds (caches evicted before each)")  # fmt: skip
    for label, value in median.items():
        print(f"  {label:15s} {value:7.3f}")
    print(f"  around the kernel: msoptim {median['msoptim step'] - median['msoptim C call']:.3f}, "
          f"torch {median['torch step'] - median['torch kernel']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
