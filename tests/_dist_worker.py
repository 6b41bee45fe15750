"""One rank of the multi-process tests in ``test_distributed.py`` (gloo, CPU, 127.0.0.1).

Run as ``python _dist_worker.py --rank R --world-size 2 --port P --out DIR --scenarios a,b``. Every
rank runs the named scenarios in order; each scenario runs a few steps of a tiny model under one
wrapper (DDP, ZeroRedundancyOptimizer, FSDP2) and, in the same process, the single-process reference
on the concatenated batch. Its result (tensors and numbers, or the traceback) is written to
``DIR/<scenario>.rank<R>.pt`` as soon as it finishes, so a later hang loses nothing already done.
The test process compares the files; this module only records.

Starting a process and importing torch costs seconds on the CI machines, so one launch runs every
scenario. Scenario names are ``<kind>-<Optimizer>`` (``ddp-Adam``, ``zero-Momentum``, ``fsdp-Lamb``).
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

import msoptim

#: Per optimizer: keyword arguments besides ``params``/``learning_rate``, and a base lr that keeps
#: a few steps of the tiny model well-conditioned. Only names that exist in msoptim are run.
OPTIMIZERS: dict[str, tuple[dict[str, Any], float]] = {
    "Momentum": ({"momentum": 0.9}, 0.05),
    "SGD": ({"momentum": 0.9}, 0.05),
    "Adam": ({}, 0.01),
    "AdamWeightDecay": ({}, 0.01),
    "AdamOffload": ({}, 0.01),
    "LazyAdam": ({}, 0.01),
    "Lamb": ({}, 0.01),
    "FTRL": ({}, 0.01),
    "RMSProp": ({}, 0.01),
    "ProximalAdagrad": ({}, 0.01),
    "Adagrad": ({}, 0.01),
    "Adadelta": ({}, 0.5),
    "AdaMax": ({}, 0.01),
    "ASGD": ({}, 0.01),
    "Rprop": ({}, 0.01),
    # scale_parameter (lr × RMS of the parameter) and an active update clip: whole-tensor norms.
    "AdaFactor": ({"scale_parameter": True, "relative_step": False, "clip_threshold": 0.5}, 0.01),
    "LARS": ({"momentum": 0.9}, 0.05),  # LARS wraps Momentum; the kwargs are Momentum's
}

WORLD_SIZE = 2
HALF_BATCH = 4
STEPS = 4  # steps before a checkpoint; as many again after it


def available(names: tuple[str, ...] | list[str] = tuple(OPTIMIZERS)) -> list[str]:
    """The names in ``names`` that msoptim exports (others are still being written)."""
    return [name for name in names if hasattr(msoptim, name)]


# ---------------------------------------------------------------------------- model, data, optimizer


class TinyNet(nn.Sequential):
    """Linear -> LayerNorm -> Tanh -> Linear: weights, biases and MindSpore ``gamma``/``beta``."""

    def __init__(self) -> None:
        super().__init__(nn.Linear(6, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 3))
        with torch.no_grad():  # LayerNorm starts at 1/0: perturb so gamma/beta decay shows
            self[1].weight.add_(0.1 * torch.randn(8))
            self[1].bias.add_(0.1 * torch.randn(8))


def make_model(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The global batch of ``step`` (both ranks' halves, concatenated)."""
    generator = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(WORLD_SIZE * HALF_BATCH, 6, generator=generator)
    y = torch.randn(WORLD_SIZE * HALF_BATCH, 3, generator=generator)
    return x, y


def local_batch(step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = batch(step)
    rows = slice(rank * HALF_BATCH, (rank + 1) * HALF_BATCH)
    return x[rows], y[rows]


def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(model(x), y)


def lr_table(base: float, steps: int = 2 * STEPS) -> list[float]:
    """A dynamic lr (one value per step), as ``msoptim.piecewise_constant_lr`` would give."""
    return [base * (1.0 - 0.1 * i) for i in range(steps)]


def supports(name: str, capability: str) -> bool:
    """A capability flag of ``optim_db`` (``"dynamic_lr"``, ``"groups"``); True when not recorded."""
    try:
        from optim_db import CASES_BY_NAME
    except ImportError:
        return True
    case = CASES_BY_NAME.get("Momentum" if name == "LARS" else name)
    return case is None or capability in case.supports


def make_groups(
    name: str, named: list[tuple[str, nn.Parameter]], base: float, *, with_names: bool
) -> list:
    """MindSpore-style groups on ``TinyNet``: three groups, mixed lr kinds, explicit weight decay.

    * weights: ``weight_decay=0.01`` and their own dynamic lr (a table), where the optimizer takes
      per-group lrs (FTRL, as MindSpore's, does not);
    * gamma, beta and the first bias: ``weight_decay=0.0`` (the beta/gamma rule, spelled out);
    * the last bias alone, no keys: the optimizer's ``learning_rate`` (see :func:`top_lr`).

    Under ZeroRedundancyOptimizer on 2 ranks this partition gives each rank one empty group.
    """

    def items(names: list[str]) -> list:
        selected = [(n, p) for n, p in named if n in names]
        return selected if with_names else [param for _, param in selected]

    weights = [n for n, _ in named if n.endswith("weight")]
    last_bias = [named[-1][0]]
    others = [n for n, _ in named if n not in weights and n not in last_bias]
    first = {"params": items(weights), "weight_decay": 0.01}
    if supports(name, "groups") and supports(name, "dynamic_lr"):
        first["lr"] = lr_table(base)
    return [first, {"params": items(others), "weight_decay": 0.0}, {"params": items(last_bias)}]


def top_lr(name: str, base: float) -> Any:
    """A schedule, or the static ``base`` for an optimizer without dynamic lrs."""
    if not supports(name, "dynamic_lr"):
        return base
    return msoptim.CosineDecayLR(0.1 * base, base, 2 * STEPS)


def build(name: str, params: Any, base: float, **extra: Any) -> torch.optim.Optimizer:
    """``msoptim.<name>(params, learning_rate=top_lr(...), ...)`` (LARS wraps a Momentum)."""
    kwargs, _ = OPTIMIZERS[name]
    if name == "LARS":
        inner = msoptim.Momentum(params, learning_rate=top_lr(name, base), **kwargs, **extra)
        # A coefficient large enough that the trust ratio (whole-tensor norms) drives the update.
        return msoptim.LARS(inner, coefficient=0.5)
    cls = getattr(msoptim, name)
    return cls(params, learning_rate=top_lr(name, base), **kwargs, **extra)


def accepts_foreach(name: str) -> bool:
    cls = msoptim.Momentum if name == "LARS" else getattr(msoptim, name)
    return "foreach" in inspect.signature(cls).parameters


def inner_optimizer(opt: Any) -> Any:
    """The msoptim optimizer that owns ``global_step`` (LARS's wrapped one, ZeRO's local one)."""
    for attribute in ("optim", "optimizer"):
        inner = getattr(opt, attribute, None)
        if isinstance(inner, msoptim.Optimizer):
            return inner
    return opt


def lr_values(opt: Any) -> list[float]:
    """``get_lr()`` as floats (one per parameter with group lrs)."""
    lrs = inner_optimizer(opt).get_lr()
    lrs = lrs if isinstance(lrs, tuple) else (lrs,)
    return [float(lr) for lr in lrs]


def train(
    model: nn.Module,
    opt: Any,
    steps: range,
    data: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
) -> list[dict[str, Any]]:
    """Run ``steps``; log each step's lrs and the ``global_step`` after it.

    ``lr``: ``get_lr()`` before the step (one per parameter of this optimizer); ``group_lr``: each
    group's ``lr`` after it (the value the step used, for dynamic lrs), which under ZeRO covers the
    groups of every rank.
    """
    log = []
    for step in steps:
        x, y = data(step)
        opt.zero_grad(set_to_none=True)
        loss_fn(model, x, y).backward()
        lrs = lr_values(opt)
        opt.step()
        inner = inner_optimizer(opt)
        log.append(
            {
                "global_step": int(inner.global_step.item()),
                "lr": lrs,
                "group_lr": [float(group["lr"]) for group in inner.param_groups],
            }
        )
    return log


def plain_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Full (unsharded) float32 copies of the parameters, by name."""
    result = {}
    for name, param in model.named_parameters():
        value = param.detach()
        if hasattr(value, "full_tensor"):
            value = value.full_tensor()
        result[name] = value.clone()
    return result


def gathered(value: Any) -> list[Any]:
    """``value`` from every rank, in rank order."""
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def reference_run(name: str, base: float, *, with_names: bool, steps: int) -> dict[str, Any]:
    """The single-process run on the concatenated batch: the truth every wrapper must match."""
    model = make_model()
    named = msoptim.trainable_params(model)
    opt = build(name, make_groups(name, named, base, with_names=with_names), base)
    log = train(model, opt, range(steps), batch)
    return {"params": plain_state(model), "log": log}


# ---------------------------------------------------------------------------- scenarios


def scenario_ddp(name: str, ctx: Context) -> dict[str, Any]:
    """DDP-wrapped model, optimizer on ``trainable_params(ddp.module)`` (names kept)."""
    from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: N817

    _, base = OPTIMIZERS[name]
    model = make_model()
    ddp = DDP(model)
    opt = build(
        name, make_groups(name, msoptim.trainable_params(ddp.module), base, with_names=True), base
    )
    log = train(ddp, opt, range(2 * STEPS), lambda s: local_batch(s, ctx.rank))
    return {
        "params": plain_state(model),
        "log": log,
        "all_logs": gathered(log),
        "reference": reference_run(name, base, with_names=True, steps=2 * STEPS),
    }


def _zero(name: str, model: nn.Module, base: float) -> Any:
    from torch.distributed.optim import ZeroRedundancyOptimizer

    kwargs, _ = OPTIMIZERS[name]
    groups = make_groups(name, msoptim.trainable_params(model), base, with_names=False)
    return ZeroRedundancyOptimizer(
        groups, optimizer_class=getattr(msoptim, name), learning_rate=top_lr(name, base), **kwargs
    )


def scenario_zero(name: str, ctx: Context) -> dict[str, Any]:
    """DDP + ZeroRedundancyOptimizer(optimizer_class=msoptim.<name>) with group dicts.

    Runs STEPS steps, consolidates on rank 0 and saves with ``torch.save``; a fresh model + ZeRO on
    every rank loads it and runs STEPS more; the first ZeRO also runs STEPS more (uninterrupted).
    """
    from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: N817

    _, base = OPTIMIZERS[name]
    model = make_model()
    ddp = DDP(model)
    zero = _zero(name, model, base)
    local_sizes = [len(group["params"]) for group in zero.optim.param_groups]
    data = lambda s: local_batch(s, ctx.rank)  # noqa: E731
    log = train(ddp, zero, range(STEPS), data)

    zero.consolidate_state_dict(to=0)
    path = ctx.shared / f"zero-{name}.pt"
    if ctx.rank == 0:
        torch.save({"model": model.state_dict(), "optim": zero.state_dict()}, path)
    dist.barrier()
    checkpoint = torch.load(path, weights_only=False)

    resumed_model = make_model(seed=1)  # different init: everything must come from the checkpoint
    resumed_model.load_state_dict(checkpoint["model"])
    resumed_ddp = DDP(resumed_model)
    resumed = _zero(name, resumed_model, base)
    resumed.load_state_dict(checkpoint["optim"])
    resumed_log = train(resumed_ddp, resumed, range(STEPS, 2 * STEPS), data)
    log += train(ddp, zero, range(STEPS, 2 * STEPS), data)

    return {
        "params": plain_state(model),
        "log": log,
        "all_logs": gathered(log),
        "local_sizes": local_sizes,
        "resumed_params": plain_state(resumed_model),
        "resumed_log": resumed_log,
        "reference": reference_run(name, base, with_names=False, steps=2 * STEPS),
    }


def scenario_zerolone(name: str, ctx: Context) -> dict[str, Any]:
    """ZeRO on a one-parameter model: one rank's local optimizer gets no parameter at all."""
    from torch.distributed.optim import ZeroRedundancyOptimizer

    kwargs, base = OPTIMIZERS[name]

    def run(optimizer_for: Callable[[nn.Parameter], Any]) -> tuple[nn.Parameter, Any]:
        torch.manual_seed(0)
        weight = nn.Parameter(torch.randn(1, 4))
        opt = optimizer_for(weight)
        for _ in range(2):
            weight.grad = torch.ones_like(weight)
            opt.step()
        return weight, opt

    weight, zero = run(
        lambda w: ZeroRedundancyOptimizer(
            [w], optimizer_class=getattr(msoptim, name), learning_rate=top_lr(name, base), **kwargs
        )
    )
    zero.consolidate_state_dict(to=0)
    info = {
        "sizes": [len(group["params"]) for group in zero.optim.param_groups],
        "global_step": int(inner_optimizer(zero).global_step.item()),
        "weight": weight.detach().clone(),
    }
    reference, _ = run(lambda w: build(name, [{"params": [w]}], base))
    return {"ranks": gathered(info), "reference": reference.detach().clone()}


def scenario_fsdp(name: str, ctx: Context) -> dict[str, Any]:
    """FSDP2 ``fully_shard`` (DTensor parameters, Shard(0)); DCP save/load of the optimizer state."""
    return _fsdp(name, ctx, foreach=None)


def scenario_fsdpforeach(name: str, ctx: Context) -> dict[str, Any]:
    """As ``fsdp``, with the optimizer's foreach kernels (``torch._foreach_*`` on DTensors)."""
    return _fsdp(name, ctx, foreach=True)


def _fsdp(name: str, ctx: Context, *, foreach: bool | None) -> dict[str, Any]:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_optimizer_state_dict,
        set_optimizer_state_dict,
    )
    from torch.distributed.fsdp import fully_shard

    _, base = OPTIMIZERS[name]
    extra = {"foreach": foreach} if foreach is not None else {}

    def sharded(seed: int) -> tuple[nn.Module, Any]:
        model = make_model(seed)
        fully_shard(model, mesh=ctx.mesh)
        groups = make_groups(name, msoptim.trainable_params(model), base, with_names=True)
        return model, build(name, groups, base, **extra)

    cls = msoptim.Momentum if name == "LARS" else getattr(msoptim, name)
    if getattr(cls, "_dtensor_limitation", ""):
        try:
            sharded(0)
        except TypeError as error:  # the documented refusal, at construction
            return {"raised": str(error)}
        raise AssertionError(f"{name} declares a DTensor limitation but accepted DTensors")
    model, opt = sharded(0)
    data = lambda s: local_batch(s, ctx.rank)  # noqa: E731
    log = train(model, opt, range(STEPS), data)

    folder = ctx.shared / f"dcp-{name}-{foreach}"
    dcp.save(
        {"model": model.state_dict(), "optim": get_optimizer_state_dict(model, opt)},
        checkpoint_id=str(folder),
    )
    resumed_model, resumed = sharded(1)
    state = {
        "model": resumed_model.state_dict(),
        "optim": get_optimizer_state_dict(resumed_model, resumed),
    }
    dcp.load(state, checkpoint_id=str(folder))
    resumed_model.load_state_dict(state["model"])
    set_optimizer_state_dict(resumed_model, resumed, state["optim"])
    resumed_log = train(resumed_model, resumed, range(STEPS, 2 * STEPS), data)
    log += train(model, opt, range(STEPS, 2 * STEPS), data)
    placements = {n: str(getattr(p, "placements", "plain")) for n, p in model.named_parameters()}
    return {
        "params": plain_state(model),
        "log": log,
        "all_logs": gathered(log),
        "resumed_params": plain_state(resumed_model),
        "resumed_log": resumed_log,
        "placements": placements,
        "reference": reference_run(name, base, with_names=True, steps=2 * STEPS),
    }


SCENARIOS: dict[str, Callable[[str, Context], dict[str, Any]]] = {
    "ddp": scenario_ddp,
    "zero": scenario_zero,
    "zerolone": scenario_zerolone,
    "fsdp": scenario_fsdp,
    "fsdpforeach": scenario_fsdpforeach,
}


class Context:
    """What a scenario needs to know about its process."""

    def __init__(self, rank: int, shared: Path) -> None:
        self.rank = rank
        self.shared = shared
        self._mesh = None

    @property
    def mesh(self) -> Any:
        if self._mesh is None:
            from torch.distributed.device_mesh import init_device_mesh

            self._mesh = init_device_mesh("cpu", (dist.get_world_size(),))
        return self._mesh


def run_scenario(key: str, ctx: Context) -> dict[str, Any]:
    kind, name = key.split("-", 1)
    start = time.perf_counter()
    try:
        result = SCENARIOS[kind](name, ctx)
    except Exception:
        result = {"error": traceback.format_exc()}
    result["seconds"] = time.perf_counter() - start
    return result


def error_line(result: dict[str, Any]) -> str:
    """The last line of a scenario's traceback ("" for a success)."""
    return result["error"].strip().splitlines()[-1] if "error" in result else ""


def ranks_in_step(out: Path, key: str, rank: int, world_size: int, error: str) -> bool:
    """Whether every rank left scenario ``key`` the same way, so the next one can start safely.

    True when all succeeded, or all failed with the same error (a deterministic failure, e.g. at
    construction, leaves no collective half done). Otherwise, or if another rank has not written
    its result in time (it may be stuck in a collective this rank skipped), False: the process
    group cannot be trusted any more.
    """
    deadline = time.monotonic() + (3.0 if error else 30.0)
    for other in range(world_size):
        path = out / f"{key}.rank{other}.pt"
        while not path.exists():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        if other != rank and error_line(torch.load(path, weights_only=False)) != error:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--world-size", type=int, default=WORLD_SIZE)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenarios", required=True, help="comma-separated <kind>-<Optimizer>")
    parser.add_argument("--timeout", type=float, default=60.0, help="per collective, seconds")
    args = parser.parse_args(argv)

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(args.port)
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        rank=args.rank,
        world_size=args.world_size,
        timeout=datetime.timedelta(seconds=args.timeout),
    )
    shared = args.out / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    ctx = Context(args.rank, shared)
    for key in filter(None, args.scenarios.split(",")):
        result = run_scenario(key, ctx)
        target = args.out / f"{key}.rank{args.rank}.pt"
        partial = target.with_suffix(".tmp")
        torch.save(result, partial)
        partial.replace(target)  # the test never reads a half-written file
        if not ranks_in_step(args.out, key, args.rank, args.world_size, error_line(result)):
            # Another rank may be waiting in a collective of this scenario: leaving now makes its
            # wait fail at once (connection closed) instead of at the timeout. The test process
            # starts a new launch for the scenarios left.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(3)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
