"""What is timed: each msoptim optimizer, its torch.optim anchor at the same math, bytes per step.

``bytes_per_param`` is the float32 traffic a single pass must move per parameter: every tensor read
once (parameter, gradient, state) and every updated tensor written once. It is the roofline unit:
effective GB/s = bytes_per_param * parameters / time. Optimizers that need extra passes (norms:
Lamb, LARS, AdaFactor) are still counted at one pass, so their GB/s is a lower bound on traffic
(Lamb cannot move less than 40 B/param: its update waits for two whole-tensor norms; LARS 28;
AdaFactor 32 on long rows, more on convolution kernels, whose row and column states are as large
as the kernel itself for a 1x1 kernel: see bench/RESULTS.md).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

import msoptim


@dataclass(frozen=True)
class Spec:
    """One msoptim optimizer and its torch.optim anchor (None: no torch optimizer has its math)."""

    name: str
    kwargs: dict[str, Any]
    bytes_per_param: int
    torch_cls: type[torch.optim.Optimizer] | None = None
    torch_kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    wrap: Callable[[msoptim.Optimizer], msoptim.Optimizer] | None = None
    #: The least bytes per parameter the algorithm must move, for those needing more than one
    #: pass (a function of the model's shapes); None: one pass, ``bytes_per_param``.
    least_bytes: Callable[[list[tuple[int, ...]]], float] | None = None
    #: torch's state entries that are msoptim's under another name (torch's key -> msoptim's):
    #: the head to head points torch's at msoptim's tensors, so both step the same memory.
    shared_state: dict[str, str] = field(default_factory=dict)

    def build(self, params: list[tuple[str, torch.nn.Parameter]], **impl: Any) -> Any:
        """The msoptim optimizer over ``params`` with a path (``foreach``/``fused``) selected."""
        inner_name = "Momentum" if self.wrap is not None else self.name
        opt = getattr(msoptim, inner_name)(params, **self.kwargs, **impl)
        return self.wrap(opt) if self.wrap is not None else opt

    def paths(self) -> list[tuple[str, dict[str, Any]]]:
        """The msoptim paths this optimizer offers: reference, foreach, fused."""
        cls = getattr(msoptim, "Momentum" if self.wrap is not None else self.name)
        accepted = inspect.signature(cls.__init__).parameters
        paths = [("reference", {"foreach": False})]
        if "foreach" in accepted:
            paths.append(("foreach", {"foreach": True}))
        if "fused" in accepted:
            paths.append(("fused", {"fused": True}))
        return paths


def _lars(opt: msoptim.Optimizer) -> msoptim.Optimizer:
    return msoptim.LARS(opt)


def _bytes(value: float) -> Callable[[list[tuple[int, ...]]], float]:
    return lambda shapes: value


def adafactor_least_bytes(shapes: list[tuple[int, ...]]) -> float:
    """AdaFactor's least float32 traffic per parameter over ``shapes``.

    Its update waits for two whole-tensor RMS values, and a factored one for the whole row and
    column sums first: the gradient is read (row/column sums), read with the parameter (RMS), and
    read again with the parameter and ``exp_avg``, both written (20 B): 32 B, plus its row and
    column states read and written (8 B per state element: as many as the parameter for a 1x1
    convolution kernel). A vector (``ndim < 2``): its second moment and the gradient read, the
    moment written, the parameter read (16 B), then the update (24 B): 40 B.
    """
    moved = elements = 0
    for shape in shapes:
        numel = math.prod(shape)
        if len(shape) < 2:
            moved += 40 * numel
        else:
            batch = math.prod(shape[:-2])
            moved += 32 * numel + 8 * batch * (shape[-2] + shape[-1])
        elements += numel
    return moved / elements


SPECS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec(
            "Momentum",
            {"learning_rate": 0.01, "momentum": 0.9},
            20,
            torch.optim.SGD,
            {"lr": 0.01, "momentum": 0.9},
            shared_state={"momentum_buffer": "moments"},
        ),
        Spec("SGD", {"learning_rate": 0.01}, 12, torch.optim.SGD, {"lr": 0.01}),
        Spec(
            "Adam",
            {"learning_rate": 1e-3},
            28,
            torch.optim.Adam,
            {"lr": 1e-3},
            "eps placement differs (MindSpore folds it into the step size); same bytes",
            shared_state={"exp_avg": "moment1", "exp_avg_sq": "moment2"},
        ),
        Spec(
            "AdamWeightDecay",
            {"learning_rate": 1e-3, "weight_decay": 0.01},
            28,
            torch.optim.AdamW,
            {"lr": 1e-3, "weight_decay": 0.01},
            shared_state={"exp_avg": "adam_m", "exp_avg_sq": "adam_v"},
        ),
        Spec("AdaMax", {"learning_rate": 1e-3}, 28, torch.optim.Adamax, {"lr": 1e-3}),
        Spec("Adagrad", {"learning_rate": 0.01}, 20, torch.optim.Adagrad, {"lr": 0.01}),
        Spec(
            "RMSProp",
            {"learning_rate": 0.01, "momentum": 0.9},
            28,
            torch.optim.RMSprop,
            {"lr": 0.01, "momentum": 0.9},
        ),
        Spec("Adadelta", {"learning_rate": 1.0}, 28, torch.optim.Adadelta, {"lr": 1.0}),
        Spec("ASGD", {"learning_rate": 0.01}, 20, torch.optim.ASGD, {"lr": 0.01}),
        Spec("Rprop", {"learning_rate": 0.01}, 28, torch.optim.Rprop, {"lr": 0.01}),
        Spec(
            "Lamb",
            {"learning_rate": 1e-3},
            28,
            note="two passes around its trust ratios: 40 B/param at the least",
            least_bytes=_bytes(40),
        ),
        Spec(
            "LARS",
            {"learning_rate": 0.01, "momentum": 0.9},
            20,
            note="LARS(Momentum); its norms read w and g first: 28 B/param at the least",
            wrap=_lars,
            least_bytes=_bytes(28),
        ),
        Spec("FTRL", {"learning_rate": 0.01}, 28),
        Spec("ProximalAdagrad", {"learning_rate": 0.01, "l1": 0.001, "l2": 0.001}, 20),
        Spec(
            "AdaFactor",
            {},
            20,
            note="factored second moment; three passes (see adafactor_least_bytes)",
            least_bytes=adafactor_least_bytes,
        ),
    )
}


def torch_paths(spec: Spec, device: torch.device) -> list[tuple[str, dict[str, Any]]]:
    """torch.optim's for-loop / foreach / fused paths for the anchor (those it supports here)."""
    if spec.torch_cls is None:
        return []
    paths = [("for-loop", {"foreach": False}), ("foreach", {"foreach": True})]
    probe = torch.nn.Parameter(torch.zeros(2, device=device))
    probe.grad = torch.zeros_like(probe)
    try:  # some refuse a device only at their first step (Adagrad on CUDA)
        spec.torch_cls([probe], **spec.torch_kwargs, fused=True).step()
    except (RuntimeError, TypeError, ValueError):
        return paths
    return [*paths, ("fused", {"fused": True})]
