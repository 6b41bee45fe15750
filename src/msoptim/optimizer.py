"""``msoptim.Optimizer``: MindSpore's ``nn.Optimizer`` as a ``torch.optim.Optimizer``.

One place runs MindSpore's fixed per-call pipeline::

    check dynamic-lr tables → decay_weight → gradients_centralization → scale_grad
    → lr = source(global_step) per group → kernel → global_step += 1

Each optimizer supplies its state initialization (``_init_state``) and its update (``_update``);
custom optimizers may instead override ``construct(gradients)`` and use the same building blocks,
as in MindSpore's tutorial.

Storage (what torch tools see): one ``param_groups`` entry per MindSpore group (one in total without
groups). ``group["lr"]`` is always a 0-d float32 tensor: the live static value (re-assignable in
place, so ``torch.optim.lr_scheduler`` works), or, for a dynamic lr, the value used by the most
recent step (a mirror for monitors such as Lightning's ``LearningRateMonitor``). A dynamic lr's source
is ``group["lr_schedule"]`` (a ``LearningRateSchedule``: a user schedule, a ``TableLR`` or a
``ConstantLR``). ``group["global_step"]`` is the optimizer's one int32 ``(1,)`` step tensor.
"""

from __future__ import annotations

import itertools
import math
import operator
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from msoptim._validate import collect_refusals, describe, stop_collecting
from msoptim.errors import (
    DuplicateParameterError,
    LearningRateTableExhaustedError,
    NestedLearningRateError,
    UnsupportedLrKindError,
)
from msoptim.groups import (
    ResolvedParams,
    check_parameter_list,
    default_names,
    overlapping_parameters,
    resolve_params,
)
from msoptim.kernels import use_fused
from msoptim.kernels._native import advance_counter
from msoptim.kernels.centralization import centralization_mean
from msoptim.kernels.lr import evaluate_lrs
from msoptim.lr_sources import (
    ConstantLR,
    LrSpec,
    RefusedLrError,
    TableLR,
    parse_lr,
    parse_weight_decay,
)
from msoptim.step_wrapper import hooked_step

__all__ = ["Optimizer"]

Gradients = list[Tensor | None]
#: One group's share of a step: ``(group, params, grads, states, lr)`` (see ``_update``).
GroupStep = tuple[dict[str, Any], list[Tensor], list[Tensor], list[dict[str, Any]], Tensor]


#: The largest ``global_step``: MindSpore's step counter is an int32 tensor.
_INT32_MAX = 2**31 - 1


_GRAD = operator.attrgetter("grad")
_LAYOUT = operator.attrgetter("layout")


def _is_integer(tensor: Tensor) -> bool:
    return not (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool)


def _float32(value: float) -> float:
    """``value`` rounded to float32, as MindSpore stores its scalar hyper-parameters."""
    return float(np.float32(value))


def _check_loss_scale(value: Any, api: str) -> float:
    # MindSpore converts ints (and bools) to float, then requires a finite value > 0.
    if not isinstance(value, int | float):
        raise TypeError(
            f"{api}: 'loss_scale' must be a float > 0, but got {describe(value)}. "
            "Pass a Python float such as 1024.0."
        )
    result = float(value)
    if not math.isfinite(result) or result <= 0:
        raise ValueError(
            f"{api}: 'loss_scale' must be a finite float > 0, but got {describe(value)}. "
            "Use 1.0 for no loss scaling."
        )
    return result


def _is_dtensor(tensor: Tensor) -> bool:
    """True for a ``torch.distributed.tensor.DTensor`` (without importing torch.distributed)."""
    return any(cls.__name__ == "DTensor" for cls in type(tensor).__mro__)


def schedule_config(schedule: nn.Module) -> dict[str, Any]:
    """The frozen scalar arguments of a schedule, for checkpoints and comparisons."""
    return {
        key: value
        for key, value in vars(schedule).items()
        if not key.startswith("_") and key != "training" and isinstance(value, int | float | str)
    }


def _describe_source(source: nn.Module | None) -> dict[str, Any]:
    """A checkpoint-friendly (``torch.load(weights_only=True)``) description of an lr source."""
    if source is None:
        return {"kind": "static"}
    if isinstance(source, TableLR):
        return {"kind": "table", "table": source.learning_rate.detach().clone()}
    if isinstance(source, ConstantLR):
        return {"kind": "constant"}
    return {
        "kind": "schedule",
        "class": type(source).__qualname__,
        "config": schedule_config(source),
    }


#: Modules whose calls build an optimizer from groups that repeat its keyword arguments:
#: ZeroRedundancyOptimizer copies every argument into every group dict it hands a rank.
_GROUP_ECHOING_MODULES = ("torch.distributed.optim",)


def _built_by_torch_distributed() -> bool:
    """Whether this constructor runs inside ``torch.distributed.optim`` (its wrappers' group dicts
    repeat the optimizer's arguments; a user's group that does so gets MindSpore's KeyError)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(_GROUP_ECHOING_MODULES):
            return True
        frame = frame.f_back
    return False


class OwnArgumentChecks:
    """An optimizer's checks of its own arguments, run first, raised after the base class's.

    MindSpore's optimizers call the base ``Optimizer.__init__`` (parameters, lr, groups, weight
    decay) before checking their own arguments, so with mistakes on both sides the base class's
    error wins. A subclass runs its checks inside ``with OwnArgumentChecks() as own:`` (the first
    ``TypeError``/``ValueError`` is kept, later ones dropped) and passes ``own_checks=own``.
    msoptim's own refusals of values MindSpore takes (:func:`msoptim._validate.refuse`: a NaN
    beta, an infinite momentum) are collected in ``later`` and raised after every other check.
    """

    def __init__(self) -> None:
        self.error: Exception | None = None
        #: msoptim's own refusals (:func:`msoptim._validate.refuse`), raised after everything else.
        self.later: list[ValueError] = []
        self._tokens: list[Any] = []

    def __enter__(self) -> OwnArgumentChecks:
        self._tokens.append(collect_refusals(self.later))
        return self

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> bool:
        stop_collecting(self._tokens.pop())
        if isinstance(error, TypeError | ValueError):
            self.error = self.error or error
            return True
        return False

    def raise_later(self) -> None:
        if self.later:
            raise self.later[0]


class Optimizer(torch.optim.Optimizer):
    """Base class of every msoptim optimizer: MindSpore's ``nn.Optimizer`` on ``torch.optim``.

    Subclasses implement ``_init_state(param, state, group)`` (called once per parameter, at
    construction, so the state exists before the first step as in MindSpore) and
    ``_update(group, params, grads, states, lr)`` (the kernel for one group, after the pipeline).
    A custom optimizer may instead override :meth:`construct` and use :meth:`decay_weight`,
    :meth:`gradients_centralization`, :meth:`scale_grad`, :meth:`get_lr` and :meth:`clone_state`.

    Args:
        learning_rate: float, 0-d tensor (static), list/tuple/1-D tensor (one lr per step) or a
            :class:`~msoptim.LearningRateSchedule`.
        parameters: an ``nn.Module``, a list of ``Parameter`` or ``(name, Parameter)``, or group dicts.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule`` (added as ``wd * w`` to the grad).
        loss_scale: the static loss scale the gradients carry; they are divided by it.
        defaults: the optimizer's own hyper-parameters, stored in every group (torch convention).

    Example:
        >>> import torch, msoptim
        >>> class PlainSGD(msoptim.Optimizer):
        ...     def __init__(self, params, learning_rate=0.1):
        ...         super().__init__(learning_rate, params)
        ...     def construct(self, gradients):
        ...         gradients = self.scale_grad(self.decay_weight(gradients))
        ...         lr = self.get_lr()
        ...         for param, grad in zip(self.parameters, gradients):
        ...             param.sub_(grad * lr)
        >>> w = torch.nn.Parameter(torch.ones(2))
        >>> opt = PlainSGD([("w", w)])
        >>> opt((torch.ones(2),))
        >>> w.tolist(), int(opt.global_step)
        ([0.8999999761581421, 0.8999999761581421], 1)
    """

    #: Which of MindSpore's grad pre-processing steps this optimizer's ``construct`` runs.
    _pipeline: ClassVar[tuple[str, ...]] = ("decay", "centralize", "scale")
    #: State key -> MindSpore checkpoint name; ``{name}`` is the parameter's name. Keys without
    #: ``{name}`` are optimizer-wide scalars (stored per parameter; the first one is exported).
    _ms_names: ClassVar[dict[str, str]] = {}
    #: Group keys a wrapper may repeat in group dicts with the optimizer's own value.
    _echo_keys: ClassVar[tuple[str, ...]] = ()
    #: Why this optimizer cannot update DTensor parameters (FSDP2 ``fully_shard``, tensor
    #: parallel), or "" if it can: construction on DTensor parameters then raises, naming it.
    _dtensor_limitation: ClassVar[str] = ""
    #: On CUDA, with neither ``fused`` nor ``foreach`` given, the step is a multi-tensor Triton
    #: kernel (:func:`msoptim.kernels.use_fused`), and the groups' lrs are compiled too.
    _cuda_multi_tensor: ClassVar[bool] = False
    #: The subclass checks its own arguments after ``__init__`` (as FTRL does, after MindSpore's
    #: base class), and raises ``_refused_lr`` (msoptim's refusal of an lr MindSpore accepts: a
    #: NaN, or ``None`` in a list) after them.
    _checks_after_base: ClassVar[bool] = False

    def __init__(
        self,
        learning_rate: Any,
        parameters: Any,
        weight_decay: Any = 0.0,
        loss_scale: float = 1.0,
        *,
        defaults: dict[str, Any] | None = None,
        own_checks: OwnArgumentChecks | None = None,
    ) -> None:
        api = type(self).__name__
        self._api = api
        defaults = dict(defaults or {})
        echo = {"learning_rate": learning_rate, "loss_scale": loss_scale, **defaults}
        echo.update({key: defaults[key] for key in self._echo_keys if key in defaults})
        echo_keys = echo if _built_by_torch_distributed() else {}
        parameters = check_parameter_list(  # MindSpore: before the loss scale and the lr
            parameters, api=api, echo_keys=echo_keys, arguments=list(echo)
        )
        loss_scale = echo["loss_scale"] = _check_loss_scale(loss_scale, api)
        try:
            top_lr, refused = parse_lr(learning_rate, where="learning_rate", api=api), None
        except RefusedLrError as error:  # msoptim's own refusal: after MindSpore's checks
            top_lr, refused = error.stand_in, error
        # An empty or nested top-level table serves no step and is left out of the length check,
        # as MindSpore leaves it out (the first step raises: _check_tables).
        usable = top_lr.kind == "table" and top_lr.table_length > 0 and top_lr.unusable is None
        resolved = resolve_params(
            parameters,
            api=api,
            echo_keys=echo_keys,
            arguments=list(echo),
            top_table=(top_lr.where, top_lr.table_length) if usable else None,
            refuse_later=True,
        )
        top_wd = parse_weight_decay(weight_decay, where="weight_decay", api=api)  # after the groups
        if own_checks is not None and own_checks.error is not None:
            raise own_checks.error  # after the base class's checks, as in MindSpore
        refused = refused or resolved.refused
        if refused is not None and not self._checks_after_base:
            raise refused
        if own_checks is not None:
            own_checks.raise_later()  # msoptim's own refusals: last
        self._refused_lr = refused  # raised by the subclass, after its own checks
        devices = {param.device for param in resolved.order}
        if len(devices) > 1:
            raise ValueError(
                f"{api}: all parameters must be on one device, but they are on "
                f"{sorted(str(d) for d in devices)}. Build one optimizer per device, or move the "
                "model first (model.to(device))."
            )
        # A wrapper's rank may own no parameter at all (ZeroRedundancyOptimizer with more ranks than
        # parameters): its optimizer then only counts steps, on the CPU.
        device = devices.pop() if devices else torch.device("cpu")
        if self._dtensor_limitation and any(map(_is_dtensor, resolved.order)):
            raise TypeError(
                f"{api} cannot update DTensor parameters (FSDP2 fully_shard, tensor parallel): "
                f"{self._dtensor_limitation} Use it with DistributedDataParallel or "
                "ZeroRedundancyOptimizer instead."
            )

        self.loss_scale = loss_scale
        self.need_scale = loss_scale != 1.0
        self.reciprocal_scale = torch.tensor(1.0 / loss_scale, dtype=torch.float32)
        self.is_group = resolved.is_group
        self.is_group_lr = any(group.lr is not None for group in resolved.groups)
        self.is_group_params_ordered = resolved.ordered
        group_specs = [group.lr for group in resolved.groups if group.lr is not None]
        self.dynamic_lr = any(spec.kind != "static" for spec in [top_lr, *group_specs])
        self.global_step = torch.zeros(1, dtype=torch.int32, device=device)
        self._host_step = 0
        self._device = device
        self._parameters = tuple(resolved.order)
        self._names = default_names(resolved.order, resolved.names)
        self._name_of = dict(zip(map(id, self._parameters), self._names))
        self._index_of = {id(param): i for i, param in enumerate(self._parameters)}
        self._kept_tables: dict[Any, Any] = {}  # the C kernels' (kernels._native.KeptTable)
        if top_wd != 0.0 and not resolved.names and not resolved.is_group:
            warnings.warn(
                f"{api}: weight decay is on but the parameters have no names, so MindSpore's rule "
                "'skip names containing beta or gamma' cannot apply and every parameter decays. "
                "Pass (name, Parameter) pairs, e.g. msoptim.trainable_params(model).",
                stacklevel=3,
            )
        if top_wd != 0.0 and not resolved.names and any(g.extra for g in resolved.groups):
            warnings.warn(
                f"{api}: the parameter groups repeat this optimizer's arguments, as "
                "ZeroRedundancyOptimizer passes them, and weight_decay is on: the parameters come "
                "without names, so MindSpore's rule 'skip names containing beta or gamma' cannot "
                "apply and every parameter of a group without its own 'weight_decay' decays. Give "
                "each group an explicit 'weight_decay' (0.0 for gamma/beta) and leave weight_decay "
                "out of the wrapper's arguments.",
                stacklevel=3,
            )

        groups = self._build_groups(resolved, top_lr, top_wd, defaults)
        self._building = True
        super().__init__(groups, defaults)
        self._building = False
        self._live_groups = [self._live_values(group) for group in self.param_groups]
        self._refresh_param_info()
        for param in self._parameters:
            self._init_state(param, self.state[param], self._group_of(param))

    @staticmethod
    def profile_hook_step(func: Callable[..., Any]) -> Callable[..., Any]:  # type: ignore[override]
        """torch wraps each optimizer class's ``step`` with this once: its hooks, and its profiler
        range only while a profiler runs (:mod:`msoptim.step_wrapper`)."""
        return hooked_step(func)

    def __getstate__(self) -> dict[str, Any]:
        # torch keeps only defaults, state and param_groups, which would lose the names, flags and
        # lr storage this class keeps beside them; pickling and deepcopy need all of it.
        state = dict(self.__dict__)
        for lookup in ("_name_of", "_index_of", "_group_index", "_static_lr_values"):
            state.pop(lookup, None)  # keyed by id(): rebuilt for the copied parameters
        state.pop("_kept_tables", None)  # raw addresses: the copy's first step builds its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._kept_tables = {}
        if "_parameters" in state:
            self._name_of = dict(zip(map(id, self._parameters), self._names))
            self._index_of = {id(param): i for i, param in enumerate(self._parameters)}
            self._refresh_param_info()

    # ------------------------------------------------------------------ construction helpers

    def _make_lr_storage(self, spec: LrSpec) -> tuple[Tensor, nn.Module | None]:
        """(group['lr'] tensor, lr source or None) for one parsed lr on this optimizer's device."""
        if spec.kind == "static":
            value = spec.value
            if isinstance(value, Tensor):
                lr = value.detach().to(self._device, torch.float32).clone().reshape(())
            else:
                lr = torch.tensor(value, dtype=torch.float32, device=self._device)
            if self.is_group_lr and self.dynamic_lr:
                return lr, ConstantLR(lr)
            return lr, None
        if spec.kind == "table":
            table = torch.as_tensor(spec.value, dtype=torch.float32, device=self._device)
            source: nn.Module = TableLR(table, spec.unusable)
            if not len(table):  # no step can use it: the first one raises (_check_tables)
                return torch.zeros((), device=self._device), source
        else:
            source = spec.value.to(self._device)
        first = self._first_value(spec.where, source, "learning rate")
        return first.reshape(()).clone(), source

    def _first_value(self, where: str, source: nn.Module, what: str) -> Tensor:
        """``source(0)``, checked to be one finite number, so a bad schedule fails at construction."""
        step = torch.zeros(1, dtype=torch.int32, device=self._device)
        first = torch.as_tensor(source(step), dtype=torch.float32).detach()
        label = where if "[" in where else f"'{where}'"
        if first.numel() != 1:
            raise ValueError(
                f"{self._api}: {label} ({type(source).__name__}) returns a tensor of shape "
                f"{tuple(first.shape)} at step 0, but a {what} is one number: return a 0-d tensor "
                "from forward()."
            )
        if first.device.type != "meta" and not math.isfinite(float(first)):
            raise ValueError(
                f"{self._api}: {label} ({type(source).__name__}) returns {float(first)} at step 0. "
                f"A {what} must be finite: check the schedule's arguments."
            )
        return first

    def _build_groups(
        self,
        resolved: ResolvedParams,
        top_lr: LrSpec,
        top_wd: Any,
        defaults: dict[str, Any],
    ) -> list[dict[str, Any]]:
        default_lr, default_source = self._make_lr_storage(top_lr)
        self._default_lr = default_lr
        groups = []
        for group in resolved.groups:
            if group.lr is None:
                lr, source, lr_name = default_lr, default_source, "learning_rate"
            else:
                lr, source = self._make_lr_storage(group.lr)
                lr_name = f"learning_rate_group_{group.index}"
            weight_decay = top_wd if group.weight_decay is None else group.weight_decay
            if isinstance(weight_decay, nn.Module):
                weight_decay = weight_decay.to(self._device)
                where = (
                    "weight_decay"
                    if group.weight_decay is None
                    else f"param_groups[{group.index}]['weight_decay']"
                )
                self._first_value(where, weight_decay, "weight decay")
            groups.append(
                {
                    "params": list(group.params),
                    "lr": lr,
                    "lr_schedule": source,
                    "lr_name": lr_name,
                    "weight_decay": weight_decay,
                    "grad_centralization": bool(group.grad_centralization or False),
                    "global_step": self.global_step,
                    **defaults,
                }
            )
        return groups

    @staticmethod
    def _live_values(group: dict[str, Any]) -> tuple[Tensor, Any, Any]:
        return group["lr"], group["lr_schedule"], group["weight_decay"]

    def _adopt_group_values(self) -> None:
        """Take back this optimizer's own objects where a wrapper replaced them in ``param_groups``.

        ``ZeroRedundancyOptimizer.load_state_dict`` never calls :meth:`load_state_dict`: it copies
        every key of the checkpoint's groups into this optimizer's groups, so ``global_step``, ``lr``
        and the lr source arrive as the checkpoint's objects (for an in-memory checkpoint, another
        optimizer's live tensors). Their values are copied into ours and ours put back, so the step
        counts on from the restored step and no two optimizers share a tensor. A plain value
        assigned to a static ``group["lr"]`` (torch style) is taken over the same way. Identity
        checks only: free, and no host sync unless something was replaced.

        Such a wrapper also replaces each parameter's state dict wholesale, which undoes what a
        subclass's ``load_state_dict`` re-establishes (a buffer shared by all parameters, a storage
        dtype): after a replaced ``global_step`` the optimizer therefore reloads its own state once
        through :meth:`load_state_dict`, a round trip that changes no value.
        """
        replaced = False
        for group, (lr, source, weight_decay) in zip(self.param_groups, self._live_groups):
            step = group["global_step"]
            if step is not self.global_step:
                self.global_step.copy_(torch.as_tensor(step).reshape(self.global_step.shape))
                self._host_step = int(self.global_step.item())
                group["global_step"] = self.global_step
                replaced = True
            if group["lr"] is not lr:
                lr.copy_(torch.as_tensor(group["lr"]).reshape(()))
                group["lr"] = lr
                self._mirror_versions = {}
            saved = group["lr_schedule"]
            if saved is not source:
                if isinstance(source, TableLR):
                    table = saved.learning_rate if isinstance(saved, TableLR) else saved["table"]
                    source.learning_rate.copy_(table)
                group["lr_schedule"] = source
            if isinstance(weight_decay, nn.Module):
                group["weight_decay"] = weight_decay
        if replaced:
            self.load_state_dict(self.state_dict())

    def _refresh_param_info(self) -> None:
        """Per-parameter flags (decay, centralization) and the group each parameter is in."""
        self._group_index = {}
        for index, group in enumerate(self.param_groups):
            for param in group["params"]:
                self._group_index[id(param)] = index
        decay, centralize = [], []
        for param in self._parameters:
            group = self._group_of(param)
            decay.append(self._decay_filter(param, group))
            centralize.append(self.is_group and group["grad_centralization"])
        self.decay_flags = tuple(decay)
        self.grad_centralization_flags = tuple(centralize)
        self.dynamic_weight_decay = any(
            isinstance(group["weight_decay"], nn.Module) for group in self.param_groups
        )
        self.exec_weight_decay = self.dynamic_weight_decay or any(
            group["weight_decay"] > 0 for group in self.param_groups
        )

    def _decay_filter(self, param: Tensor, group: dict[str, Any]) -> bool:
        """MindSpore's decay flag: by name without groups, by the group's weight decay with them."""
        if self.is_group:
            wd = group["weight_decay"]
            return isinstance(wd, nn.Module) or wd > 0
        name = self._name_of[id(param)]
        return "beta" not in name and "gamma" not in name

    def _group_of(self, param: Tensor) -> dict[str, Any]:
        return self.param_groups[self._group_index[id(param)]]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group after construction; validated like the constructor's groups.

        The new group must not change the optimizer's lr mode (static/dynamic, grouped or not).
        """
        if getattr(self, "_building", False):
            super().add_param_group(param_group)
            return
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{self._api}.add_param_group: 'param_group' must be a dict, but got "
                f"{describe(param_group)}."
            )
        if "order_params" in param_group:
            raise ValueError(
                f"{self._api}.add_param_group: 'order_params' fixes the order of all parameters "
                "at construction and cannot be added later. Pass a group with 'params'."
            )
        echo = {key: self.defaults[key] for key in self.defaults}
        resolved = resolve_params([param_group], api=self._api, echo_keys=echo)
        new = resolved.groups[0]
        clash = [p for p in new.params if id(p) in self._index_of]
        if clash:
            name = self._name_of[id(clash[0])]
            raise ValueError(
                f"{self._api}.add_param_group: parameter '{name}' is already in this optimizer "
                f"(param_groups[{self._group_index[id(clash[0])]}]). Put each parameter in one group."
            )
        if new.lr is not None and (new.lr.kind != "static") != self.dynamic_lr:
            raise ValueError(
                f"{self._api}.add_param_group: the new group's lr kind ({new.lr.kind}) would change "
                "how every other group's lr is computed. Build the optimizer with all groups."
            )
        self._check_new_group(new, resolved.names)
        new.index = len(self.param_groups)
        top = LrSpec("static", 0.0, "learning_rate")
        (group,) = self._build_groups(
            ResolvedParams([new], list(new.params), resolved.names, True, False),
            top,
            self.param_groups[0]["weight_decay"],
            {key: self.defaults[key] for key in self.defaults},
        )
        if new.lr is None:
            first = self.param_groups[0]
            group.update(lr=first["lr"], lr_schedule=first["lr_schedule"], lr_name=first["lr_name"])
        self._building = True
        try:
            super().add_param_group(group)
        finally:
            self._building = False
        self._live_groups.append(self._live_values(group))
        start = len(self._parameters)
        self._parameters = self._parameters + tuple(new.params)
        names = [
            resolved.names.get(id(p), f"params[{start + i}]") for i, p in enumerate(new.params)
        ]
        self._names = self._names + tuple(names)
        self._name_of.update(zip(map(id, new.params), names))
        self._index_of = {id(param): i for i, param in enumerate(self._parameters)}
        self.is_group = True
        self.is_group_lr = self.is_group_lr or new.lr is not None
        self._refresh_param_info()
        for param in new.params:
            self._init_state(param, self.state[param], group)

    def _check_new_group(self, new: Any, names: dict[int, str]) -> None:
        """What the constructor checks across groups, for a group added later (before any change)."""
        where = f"{self._api}.add_param_group"
        for param in new.params:
            if param.device != self._device:
                raise ValueError(
                    f"{where}: all parameters must be on this optimizer's device ({self._device}), "
                    f"but '{names.get(id(param), 'a new parameter')}' is on {param.device}. Move it "
                    "first, or build one optimizer per device."
                )
            name = names.get(id(param))
            if name is not None and name in self._names:
                raise DuplicateParameterError(
                    f"{where}: a different parameter is already named '{name}' in this "
                    "optimizer. Names key checkpoints and MindSpore's weight-decay rule: give each "
                    "parameter its own name."
                )
        new_ids = {id(param) for param in new.params}
        for first, second in overlapping_parameters([*self._parameters, *new.params]):
            if id(first) in new_ids or id(second) in new_ids:
                label = {**self._name_of, **names}
                raise DuplicateParameterError(
                    f"{where}: parameters '{label.get(id(first), 'new')}' and "
                    f"'{label.get(id(second), 'new')}' share memory, so a step would update those "
                    "elements twice. Give the new parameter its own storage (tensor.clone())."
                )
        if new.lr is not None and new.lr.kind == "table":
            lengths = {
                len(group["lr_schedule"])
                for group in self.param_groups
                if isinstance(group["lr_schedule"], TableLR)
            }
            if lengths and lengths != {new.lr.table_length}:
                raise ValueError(
                    f"{where}: the new group's lr table has {new.lr.table_length} values but this "
                    f"optimizer's tables have {sorted(lengths)[0]}: every dynamic learning-rate "
                    "table must have the same length (one entry per step)."
                )

    # ------------------------------------------------------------------ public MindSpore surface

    @property
    def parameters(self) -> tuple[nn.Parameter, ...]:
        """The parameters in MindSpore order (after ``order_params``)."""
        return self._parameters

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Each parameter's name, aligned with :attr:`parameters`."""
        return self._names

    @property
    def learning_rate(self) -> Any:
        """The lr storage, as MindSpore exposes it.

        Without group lrs: the static 0-d float32 tensor (``opt.learning_rate.fill_(0.01)`` changes
        the next step's lr), or the dynamic source (table or schedule). With group lrs: a tuple with
        one entry per parameter (the group's static tensor or dynamic source).
        """
        if not self.is_group_lr:
            group = self.param_groups[0]
            source = group["lr_schedule"]
            return group["lr"] if source is None or isinstance(source, ConstantLR) else source
        return tuple(self._lr_storage(self._group_of(p)) for p in self._parameters)

    @staticmethod
    def _lr_storage(group: dict[str, Any]) -> Any:
        source = group["lr_schedule"]
        return group["lr"] if source is None or isinstance(source, ConstantLR) else source

    @property
    def weight_decay(self) -> Any:
        """The stored weight decay (``wd * loss_scale``): a float32 tensor, or one per parameter."""

        def stored(group: dict[str, Any]) -> Any:
            wd = group["weight_decay"]
            if isinstance(wd, nn.Module):
                return wd
            return torch.tensor(wd * self.loss_scale, dtype=torch.float32)

        if not self.is_group:
            return stored(self.param_groups[0])
        return tuple(stored(self._group_of(p)) for p in self._parameters)

    def get_weight_decay(self) -> Tensor | tuple[Tensor, ...]:
        """The weight decay the next step applies (``wd * loss_scale``; schedules evaluated)."""
        values = [self._weight_decay_value(group) for group in self.param_groups]
        if not self.is_group:
            return torch.as_tensor(values[0], dtype=torch.float32)
        return tuple(
            torch.as_tensor(values[self._group_index[id(p)]], dtype=torch.float32)
            for p in self._parameters
        )

    def get_lr(self) -> Tensor | tuple[Tensor, ...]:
        """The learning rate the next step uses (pure: no side effect).

        Returns:
            A 0-d float32 tensor, or with group lrs a tuple with one per parameter (in
            :attr:`parameters` order).

        Raises:
            LearningRateTableExhaustedError: (an ``IndexError`` and ``RuntimeError``) past the end of a
                dynamic lr table, as MindSpore's ``get_lr()`` does.
        """
        self._adopt_group_values()
        self._check_tables()
        lrs = self._group_lrs(update_mirrors=False)
        if not self.is_group_lr:
            return lrs[0]
        return tuple(lrs[self._group_index[id(p)]] for p in self._parameters)

    def get_lr_parameter(self, param: Any) -> Any:
        """The lr storage of ``param`` (a Parameter) or of each item of ``param`` (a list).

        Static lrs give the live 0-d tensor (the exact value, even where MindSpore's ``+1-1``
        rounding applies to the update), tables give the 1-D table, schedules the schedule.
        """
        if isinstance(param, list):
            return [self._lr_parameter_of(item) for item in param]
        if isinstance(param, nn.Parameter):
            return self._lr_parameter_of(param)
        raise TypeError(
            f"{self._api}.get_lr_parameter: 'param' must be a Parameter or a list of Parameters, "
            f"but got {describe(param)}."
        )

    def _lr_parameter_of(self, param: Any) -> Any:
        if not isinstance(param, nn.Parameter):
            raise TypeError(
                f"{self._api}.get_lr_parameter: every item must be a Parameter, but got "
                f"{describe(param)}."
            )
        if id(param) not in self._index_of:
            raise ValueError(
                f"{self._api}.get_lr_parameter: the parameter of shape {tuple(param.shape)} is not "
                "in this optimizer."
            )
        storage = self._lr_storage(self._group_of(param))
        return storage.learning_rate if isinstance(storage, TableLR) else storage

    # ------------------------------------------------------------------ building blocks

    def clone_state(self, prefix: str, init: str | float = "zeros") -> tuple[Tensor, ...]:
        """Create one buffer per parameter under ``state[p][prefix]`` (MindSpore ``clone``).

        Args:
            prefix: the state key and MindSpore checkpoint prefix (``moments`` → ``moments.<name>``).
            init: ``"zeros"``, ``"ones"`` or a float fill value.

        Returns:
            The buffers, aligned with :attr:`parameters`.
        """
        fill = {"zeros": 0.0, "ones": 1.0}.get(init, init) if isinstance(init, str) else init
        if not isinstance(fill, int | float):
            raise ValueError(f"{self._api}.clone_state: unknown init {init!r}.")
        buffers = []
        for param in self._parameters:
            state = self.state[param]
            if prefix not in state:
                state[prefix] = torch.full_like(
                    param, float(fill), memory_format=torch.preserve_format
                )
            buffers.append(state[prefix])
        if prefix not in self._ms_names:
            # Instance-level names, so a custom optimizer's buffers appear in ms_state_dict().
            self._ms_names = {**self._ms_names, prefix: prefix + ".{name}"}
        return tuple(buffers)

    def decay_weight(self, gradients: Sequence[Tensor | None]) -> Gradients:
        """Add ``wd * loss_scale * w`` to the (still loss-scaled) gradient of each decayed parameter."""
        result = list(gradients)
        if not self.exec_weight_decay:
            return result
        for group in self.param_groups:
            wd = self._weight_decay_value(group)
            if not isinstance(wd, Tensor) and wd == 0.0:
                continue
            indices = [
                i
                for i in (self._index_of[id(p)] for p in group["params"])
                if self.decay_flags[i] and result[i] is not None
            ]
            if not indices:
                continue
            params = [self._parameters[i] for i in indices]
            terms = torch._foreach_mul(params, wd)
            decayed = torch._foreach_add([result[i] for i in indices], terms)
            for i, grad in zip(indices, decayed):
                result[i] = grad
        return result

    def _weight_decay_value(self, group: dict[str, Any]) -> float | Tensor:
        wd = group["weight_decay"]
        if isinstance(wd, nn.Module):
            return wd(self.global_step).reshape(()) * self.loss_scale
        return _float32(wd * self.loss_scale)

    def gradients_centralization(self, gradients: Sequence[Tensor | None]) -> Gradients:
        """Centralize flagged gradients with ndim >= 2 and shape[1] % 16 == 0 (groups only).

        ``g - mean(g, dims=1..ndim-1, keepdim=True)``: the mean over every axis but the first,
        rounded as MindSpore's CPU ``ReduceMean`` (:func:`~msoptim.kernels.centralization.centralization_mean`).
        """
        result = list(gradients)
        if not self.is_group:
            return result
        for i, grad in enumerate(result):
            if grad is None or not self.grad_centralization_flags[i]:
                continue
            if grad.ndim >= 2 and grad.shape[1] % 16 == 0:
                result[i] = grad - centralization_mean(grad)
        return result

    def scale_grad(self, gradients: Sequence[Tensor | None]) -> Gradients:
        """Multiply every gradient by ``1 / loss_scale`` (a float32 constant), if ``loss_scale != 1``."""
        result = list(gradients)
        if not self.need_scale:
            return result
        indices = [i for i, grad in enumerate(result) if grad is not None]
        scale = _float32(1.0 / self.loss_scale)
        for i, grad in zip(indices, torch._foreach_mul([result[i] for i in indices], scale)):
            result[i] = grad
        return result

    # ------------------------------------------------------------------ the step

    def construct(self, gradients: Gradients) -> None:
        """One update from ``gradients`` (aligned with :attr:`parameters`; ``None`` = skip).

        The standard pipeline; ``global_step`` is advanced by the caller afterwards.
        """
        if "decay" in self._pipeline:
            gradients = self.decay_weight(gradients)
        if "centralize" in self._pipeline:
            gradients = self.gradients_centralization(gradients)
        if "scale" in self._pipeline:
            gradients = self.scale_grad(gradients)
        if self._step_reads_lrs():
            lrs = self._group_lrs(update_mirrors=True)
        else:
            lrs = [None] * len(self.param_groups)
        batches = []
        for group, lr in zip(self.param_groups, lrs):
            params, grads, states = [], [], []
            for param in group["params"]:
                grad = gradients[self._index_of[id(param)]]
                if grad is not None:
                    params.append(param)
                    grads.append(grad)
                    states.append(self.state[param])
            if params:
                batches.append((group, params, grads, states, lr))
        self._update_groups(batches)

    def _update_groups(self, batches: list[GroupStep]) -> None:
        """Every group's update: ``batches`` holds ``(group, params, grads, states, lr)`` for each
        group with a gradient, in order. One :meth:`_update` call per group; an optimizer whose
        kernel can step several groups in one call overrides this (:meth:`_update_together`)."""
        for batch in batches:
            self._update(*batch)

    def _update_together(
        self,
        batches: list[GroupStep],
        key_of: Callable[[dict[str, Any], list[Tensor]], Any],
        step_together: Callable[[Any, list[GroupStep]], list[int]],
    ) -> None:
        """Groups whose ``key_of(group, params)`` is equal (not None: those whose step is a C
        kernel that takes several groups at once, under the same hyperparameters) go to one
        ``step_together(key, batches)`` call, which returns the positions it left (ascending, in
        the groups' parameters one after another); those and the other groups take
        :meth:`_update`. One kernel call instead of one per group: no per-group set-up, one team
        of threads for all."""
        by_key: dict[Any, list[GroupStep]] = {}
        for batch in batches:
            key = key_of(batch[0], batch[1])
            if key is None:
                self._update(*batch)
            else:
                by_key.setdefault(key, []).append(batch)
        for key, together in by_key.items():
            rest = iter(step_together(key, together))
            start, position = 0, next(rest, None)
            for group, params, grads, states, lr in together:
                end = start + len(params)
                mine = []
                while position is not None and position < end:
                    mine.append(position - start)
                    position = next(rest, None)
                if mine:
                    picked = ([items[i] for i in mine] for items in (params, grads, states))
                    self._update(group, *picked, lr)
                start = end

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Create ``param``'s state buffers (called once, at construction)."""

    def _update(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        states: list[dict[str, Any]],
        lr: Tensor,
    ) -> None:
        raise NotImplementedError(
            f"{self._api} must implement _update(group, params, grads, states, lr) or construct()."
        )

    def _step_reads_lrs(self) -> bool:
        """Whether a step uses the groups' lrs (AdaFactor's relative steps replace them)."""
        return True

    def _group_lrs(self, *, update_mirrors: bool) -> list[Tensor]:
        """Each group's lr for the current ``global_step``; shared sources are evaluated once."""
        cache: dict[int, Tensor] = {}
        compiled = self._compiled_lrs() if update_mirrors else {}
        lrs = []
        for index, group in enumerate(self.param_groups):
            source = group["lr_schedule"]
            if source is None:
                lrs.append(group["lr"])
                continue
            if index in compiled:
                lrs.append(compiled[index])
                continue
            key = id(source)
            if key not in cache:
                value = source(self.global_step).reshape(()).to(torch.float32)
                cache[key] = value
                if update_mirrors and not isinstance(source, ConstantLR):
                    group["lr"].copy_(value)
            lrs.append(cache[key])
        return lrs

    def _compiled_lrs(self) -> dict[int, Tensor]:
        """The lrs of fused groups that compiled kernels evaluate (:func:`evaluate_lrs`: one
        kernel per group, or one for all on CUDA), by group index, each written straight into
        the tensor the step reads. Fused: as the group's update kernel (:func:`use_fused`):
        ``fused=True``, or on CUDA where Triton runs the default of an optimizer whose step is
        a multi-tensor kernel there. Empty while dynamo traces (evaluate_lrs declines then, and
        :meth:`_lr_out` fills a cache)."""
        if torch.compiler.is_compiling():
            return {}
        chosen = [
            (index, group["lr_schedule"], self._lr_out(group, group["lr_schedule"]))
            for index, group in enumerate(self.param_groups)
            if group["lr_schedule"] is not None
            and use_fused(group, group["params"], self._cuda_multi_tensor)
        ]
        if not chosen:
            return {}
        sources = [source for _, source, _ in chosen]
        outs = [out for _, _, out in chosen]
        taken = evaluate_lrs(sources, self.global_step, outs)
        return {index: out for (index, _, out), ok in zip(chosen, taken) if ok}

    def _lr_out(self, group: dict[str, Any], source: nn.Module) -> Tensor:
        """Where a fused group's lr is written: its mirror, or (static lr) a tensor of its own."""
        if not isinstance(source, ConstantLR):
            return group["lr"]
        values = self.__dict__.setdefault("_static_lr_values", {})
        kept = values.get(id(source))
        if kept is None or kept[1].device != source.lr.device:
            kept = values[id(source)] = (source, torch.zeros((), device=source.lr.device))
        return kept[1]

    def _check_tables(self) -> None:
        """Past the end of a dynamic lr table: raise before anything changes (host-side count)."""
        for index, group in enumerate(self.param_groups):
            source = group["lr_schedule"]
            if isinstance(source, TableLR) and source.unusable:
                raise NestedLearningRateError(f"{source.unusable} Nothing was updated.")
            if isinstance(source, TableLR) and self._host_step >= len(source):
                where = (
                    "learning_rate"
                    if group["lr_name"] == "learning_rate"
                    else (f"the 'lr' of param_groups[{group['lr_name'].rsplit('_', 1)[-1]}]")
                )
                valid = f"valid for global_step 0..{len(source) - 1}" if len(source) else "empty"
                raise LearningRateTableExhaustedError(
                    f"{self._api}: the dynamic learning rate ({where}) is a table of "
                    f"{len(source)} values ({valid}), but "
                    f"global_step is {self._host_step} (param_groups[{index}]). Nothing was updated. "
                    "Build the table for the whole run (total_step = epochs * steps_per_epoch), or "
                    "stop training here."
                )

    def _check_step_limit(self) -> None:
        """Refuse the step that would take the int32 ``global_step`` past 2**31 - 1.

        MindSpore's counter would wrap to -2**31 there (and a table lr or schedule would then be
        read at a negative step); msoptim raises instead, before anything changes. The check reads
        the host-side step count, so it costs no device sync.
        """
        if self._host_step >= _INT32_MAX:
            raise OverflowError(
                f"{self._api}: global_step is {self._host_step}, the largest value of its int32 "
                "counter (MindSpore's type), so one more step would wrap it to a negative number. "
                "Nothing was updated. Save a checkpoint and start a new optimizer, with the "
                "learning rate the schedule has reached, to train further."
            )

    def _check_lr_not_driven(self) -> None:
        """Refuse a torch lr scheduler (or any in-place write) on a dynamic group's ``lr`` mirror.

        For a table or schedule group, ``group["lr"]`` only mirrors the lr of the last step: a torch
        ``LRScheduler`` (which adds ``initial_lr`` to every group) or ``ReduceLROnPlateau`` writing
        into it would be overwritten by this step without effect. Host-side checks only (a dict key
        and the tensor's version counter), so no device sync.
        """
        seen = getattr(self, "_mirror_versions", {})
        for index, group in enumerate(self.param_groups):
            source = group["lr_schedule"]
            if source is None or isinstance(source, ConstantLR):
                continue
            lr, (mirror, version) = group["lr"], seen.get(index, (None, 0))
            written = lr is mirror and lr._version != version
            if "initial_lr" in group or written or not isinstance(lr, Tensor):
                raise UnsupportedLrKindError(
                    f"{self._api}: param_groups[{index}]['lr'] is being driven from outside (a "
                    "torch.optim.lr_scheduler such as StepLR, OneCycleLR or ReduceLROnPlateau, or "
                    "an in-place write), but this group's learning rate is dynamic "
                    f"({type(source).__name__}, evaluated from global_step at every step), so the "
                    "change would be silently overwritten. Nothing was updated. Use a static "
                    "learning_rate (a float) with torch lr schedulers, or express the schedule as a "
                    "list of lrs or an msoptim.LearningRateSchedule."
                )

    @torch.no_grad()
    def _apply(self, gradients: Gradients) -> None:
        self._host_checks()
        self.construct(gradients)
        advance_counter(self.global_step)
        self._host_bookkeeping()

    # Host-side state (the step count, lr-mirror versions) is kept out of torch.compile: dynamo
    # would guard on its values (a recompile per step) or drop its updates (past-the-end checks
    # then never fire). Under torch.compile(opt.step) these two are graph breaks; eagerly they
    # are plain calls (about 0.5 us each).
    @torch.compiler.disable
    def _host_checks(self) -> None:
        self._check_lr_not_driven()
        self._adopt_group_values()
        if self._step_reads_lrs():
            self._check_tables()
        self._check_step_limit()

    @torch.compiler.disable
    def _host_bookkeeping(self) -> None:
        self._host_step += 1
        self._mirror_versions = {
            index: (group["lr"], group["lr"]._version)
            for index, group in enumerate(self.param_groups)
            if group["lr_schedule"] is not None
        }

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One update from each parameter's ``.grad`` (parameters without a grad are skipped).

        Args:
            closure: optional; re-evaluates the model and returns the loss (torch convention).

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        gradients: Gradients = list(map(_GRAD, self._parameters))
        # C-level passes (a step's bookkeeping runs with caches a large update just evicted).
        present = gradients
        if any(map(operator.is_, gradients, itertools.repeat(None))):
            present = [grad for grad in gradients if grad is not None]
        if not all(map(operator.is_, map(_LAYOUT, present), itertools.repeat(torch.strided))):
            name = next(
                name
                for name, grad in zip(self._names, gradients)
                if grad is not None and grad.layout != torch.strided
            )
            raise TypeError(
                f"{self._api}: parameter '{name}' has a sparse gradient; msoptim updates dense "
                "gradients only. Use a dense embedding (sparse=False)."
            )
        self._apply(gradients)
        return loss

    def __call__(self, gradients: Sequence[Tensor]) -> None:
        """MindSpore call style: ``opt(grads)`` with one gradient per parameter, in order."""
        if isinstance(gradients, Tensor) or not isinstance(gradients, tuple | list):
            raise TypeError(
                f"{self._api}: gradients must be a tuple with one tensor per parameter, but got "
                f"{describe(gradients)}."
            )
        if len(gradients) != len(self._parameters):
            raise ValueError(
                f"{self._api}: got {len(gradients)} gradients for {len(self._parameters)} "
                "parameters. Pass one gradient per parameter, in opt.parameters order."
            )
        checked: Gradients = []
        for name, param, grad in zip(self._names, self._parameters, gradients):
            checked.append(self._check_gradient(name, param, grad))
        self._apply(checked)

    def _check_gradient(self, name: str, param: Tensor, grad: Any) -> Tensor | None:
        if grad is None:
            return None
        if not isinstance(grad, Tensor):
            raise TypeError(
                f"{self._api}: the gradient of '{name}' must be a tensor, but got {describe(grad)}."
            )
        if grad.shape != param.shape:
            raise ValueError(
                f"{self._api}: the gradient of '{name}' has shape {tuple(grad.shape)} but the "
                f"parameter has shape {tuple(param.shape)}. Check the gradient order "
                "(opt.parameter_names)."
            )
        if grad.dtype != param.dtype or grad.device != param.device:
            raise TypeError(
                f"{self._api}: the gradient of '{name}' is {grad.dtype} on {grad.device} but the "
                f"parameter is {param.dtype} on {param.device}. Cast or move the gradient."
            )
        if grad.is_sparse:
            raise TypeError(
                f"{self._api}: the gradient of '{name}' is sparse; msoptim updates dense "
                "gradients only."
            )
        return grad

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """torch's state dict plus lr sources and ``global_step``; loadable with ``weights_only``."""
        self._adopt_group_values()
        packed = super().state_dict()
        for group in packed["param_groups"]:
            group["lr_schedule"] = _describe_source(group["lr_schedule"])
            if isinstance(group["weight_decay"], nn.Module):
                group["weight_decay"] = _describe_source(group["weight_decay"])
            group["global_step"] = group["global_step"].detach().clone()
            group["lr"] = group["lr"].detach().clone()
        packed["msoptim"] = {
            "version": 1,
            "param_names": [
                [self._name_of[id(p)] for p in group["params"]] for group in self.param_groups
            ],
        }
        return packed

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a checkpoint from :meth:`state_dict`; a different layout raises and changes nothing."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict:
            raise TypeError(
                f"{self._api}.load_state_dict: expected a dict from opt.state_dict(), but got "
                f"{describe(state_dict)}."
            )
        self._adopt_group_values()
        saved_groups = state_dict["param_groups"]
        self._check_saved_groups(state_dict)
        self._check_layout(state_dict)
        self._check_state_keys(state_dict)
        sources = [self._check_group_source(i, g) for i, g in enumerate(saved_groups)]
        live = [
            (group["lr"], group["lr_schedule"], group["weight_decay"], group["global_step"])
            for group in self.param_groups
        ]
        inner = dict(state_dict)
        inner.pop("msoptim", None)
        # A key an older checkpoint lacks (a hyper-parameter added since) keeps this optimizer's
        # value, as torch optimizers' ``__setstate__`` fills it in.
        inner["param_groups"] = [
            {**{key: value for key, value in group.items() if key != "params"}, **saved}
            for group, saved in zip(self.param_groups, saved_groups)
        ]
        super().load_state_dict(inner)
        for group, saved, (lr, source, wd, step), table in zip(
            self.param_groups, saved_groups, live, sources
        ):
            lr.copy_(torch.as_tensor(saved["lr"]).reshape(()))
            if table is not None:
                source.learning_rate.copy_(table)
            step.copy_(saved["global_step"])
            group.update(lr=lr, lr_schedule=source, global_step=step)
            if isinstance(wd, nn.Module):
                group["weight_decay"] = wd
        self._host_step = int(self.global_step.item())
        self._mirror_versions = {}
        self._refresh_param_info()

    def _check_saved_groups(self, state_dict: dict[str, Any]) -> None:
        """Refuse, before anything changes, groups that no msoptim ``state_dict()`` produces."""
        where = f"{self._api}.load_state_dict"
        if not isinstance(state_dict.get("state", {}), dict):
            raise TypeError(
                f"{where}: 'state' must be a dict, but got {describe(state_dict['state'])}. "
                "Pass the dict from opt.state_dict()."
            )
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, list | tuple) or not all(
            isinstance(group, dict) for group in saved_groups
        ):
            raise TypeError(
                f"{where}: 'param_groups' must be a list of dicts, but got "
                f"{describe(saved_groups)}. Pass the dict from opt.state_dict()."
            )
        for index, saved in enumerate(saved_groups):
            missing = [key for key in ("params", "lr", "global_step") if key not in saved]
            if missing:
                raise ValueError(
                    f"{where}: param_groups[{index}] has no {', '.join(map(repr, missing))}, so "
                    "it is not a checkpoint of an msoptim optimizer (a torch.optim state_dict "
                    "has no 'global_step'). Save it with an msoptim optimizer's state_dict()."
                )
            step = saved["global_step"]
            value = torch.as_tensor(step) if isinstance(step, Tensor | int) else None
            if (
                value is None
                or isinstance(step, bool)
                or value.numel() != 1
                or value.is_floating_point()
                or value.is_complex()
                or value.dtype == torch.bool
                or not 0 <= int(value.reshape(())) <= _INT32_MAX
            ):
                raise ValueError(
                    f"{where}: param_groups[{index}]['global_step'] must be one integer in "
                    f"[0, {_INT32_MAX}] (MindSpore's int32 step counter), but got "
                    f"{describe(step)}. The checkpoint is damaged."
                )
            lr = saved["lr"]
            value = torch.as_tensor(lr) if isinstance(lr, Tensor | float | int) else None
            if (
                value is None
                or isinstance(lr, bool)
                or value.numel() != 1
                or value.is_complex()
                or not math.isfinite(float(value.reshape(())))
            ):
                raise ValueError(
                    f"{where}: param_groups[{index}]['lr'] must be one finite number, but got "
                    f"{describe(lr)}. The checkpoint is damaged."
                )

    def _check_state_keys(self, state_dict: dict[str, Any]) -> None:
        """Each parameter's saved state has this optimizer's keys (not another optimizer's)."""
        saved_state = state_dict.get("state", {})
        for index, (saved, group) in enumerate(zip(state_dict["param_groups"], self.param_groups)):
            for position, (key, param) in enumerate(zip(saved["params"], group["params"])):
                ours, theirs = set(self.state[param]), set(saved_state.get(key, {}))
                if ours != theirs:
                    raise ValueError(
                        f"{self._api}.load_state_dict: param_groups[{index}]['params'][{position}] "
                        f"('{self._name_of[id(param)]}') has state {sorted(theirs)} in the "
                        f"checkpoint but {sorted(ours)} here: the checkpoint is of another "
                        "optimizer or configuration (e.g. use_amsgrad). Build the same optimizer "
                        "as the run that saved it."
                    )

    def _check_layout(self, state_dict: dict[str, Any]) -> None:
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{self._api}.load_state_dict: the checkpoint has {len(saved_groups)} parameter "
                f"groups, this optimizer has {len(self.param_groups)}. Build the optimizer with the "
                "same groups as the run that saved it."
            )
        for index, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{self._api}.load_state_dict: param_groups[{index}] has "
                    f"{len(saved['params'])} parameters in the checkpoint and "
                    f"{len(group['params'])} here. Build the optimizer with the same groups."
                )
        saved_state = state_dict.get("state", {})
        for index, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            for position, (key, param) in enumerate(zip(saved["params"], group["params"])):
                for name, value in saved_state.get(key, {}).items():
                    ours = self.state[param].get(name)
                    tensors = isinstance(value, Tensor) and isinstance(ours, Tensor)
                    if tensors and value.shape != ours.shape:
                        raise ValueError(
                            f"{self._api}.load_state_dict: param_groups[{index}]['params']"
                            f"[{position}] has state '{name}' of shape {tuple(value.shape)} in "
                            f"the checkpoint but {tuple(ours.shape)} here. The parameters "
                            "differ: build the optimizer over the same parameters, in the "
                            "same order, as the run that saved it."
                        )
        names = state_dict.get("msoptim", {}).get("param_names")
        if names is None:
            return
        for index, (saved_names, group) in enumerate(zip(names, self.param_groups)):
            here = [self._name_of[id(p)] for p in group["params"]]
            for position, (old, new) in enumerate(zip(saved_names, here)):
                if old != new:
                    raise ValueError(
                        f"{self._api}.load_state_dict: param_groups[{index}]['params'][{position}] "
                        f"is '{old}' in the checkpoint but '{new}' here. The groups differ: build "
                        "the optimizer with the same groups and order as the run that saved it."
                    )

    def _check_group_source(self, index: int, saved: dict[str, Any]) -> Tensor | None:
        """Check a saved group's lr source against ours; return a table to copy in, if any."""
        ours = _describe_source(self.param_groups[index]["lr_schedule"])
        theirs = saved.get("lr_schedule", {"kind": "static"})
        where = f"{self._api}.load_state_dict: param_groups[{index}]"
        if not isinstance(theirs, dict) or theirs.get("kind") != ours["kind"]:
            kind = theirs.get("kind") if isinstance(theirs, dict) else theirs
            raise ValueError(
                f"{where} has a {kind} learning rate in the checkpoint but a {ours['kind']} one "
                "here. Build the optimizer with the same kind of learning rate."
            )
        if ours["kind"] == "table":
            table = theirs["table"]
            if table.shape != ours["table"].shape:
                raise ValueError(
                    f"{where}: the checkpoint's lr table has {table.shape[0]} values, this one "
                    f"{ours['table'].shape[0]}. Build the table for the same total_step."
                )
            return table
        if ours["kind"] == "schedule" and (
            theirs.get("class") != ours["class"] or theirs.get("config") != ours["config"]
        ):
            raise ValueError(
                f"{where}: the checkpoint's schedule is {theirs.get('class')}"
                f"({theirs.get('config')}) but this optimizer's is {ours['class']}"
                f"({ours['config']}). Build the optimizer with the same schedule."
            )
        return None

    def ms_state_dict(self) -> dict[str, Tensor]:
        """The optimizer's state under MindSpore's checkpoint names.

        ``global_step``, ``learning_rate`` / ``learning_rate_group_<i>`` (static values or tables),
        the optimizer's constants (e.g. ``momentum``) and every state buffer (``moments.<param>``,
        ``beta1_power``, ...), exactly as MindSpore names them.
        """
        self._adopt_group_values()
        result: dict[str, Tensor] = {"global_step": self.global_step}
        for group in self.param_groups:
            storage = self._lr_storage(group)
            if isinstance(storage, TableLR):
                result[group["lr_name"]] = storage.learning_rate
            elif isinstance(storage, Tensor):
                result[group["lr_name"]] = storage
        result.update(self._ms_constants())
        for name, param in zip(self._names, self._parameters):
            state = self.state[param]
            for key, template in self._ms_names.items():
                if key not in state:
                    continue
                ms_name = template.format(name=name)
                if "{name}" in template or ms_name not in result:
                    result[ms_name] = state[key]
        return result

    def _ms_constants(self) -> dict[str, Tensor]:
        """Hyper-parameters MindSpore keeps as Parameters (e.g. Momentum's ``momentum``)."""
        return {}

    @torch.no_grad()
    def load_ms_state_dict(self, state: dict[str, Any]) -> None:
        """Load state saved under MindSpore's names (see :meth:`ms_state_dict`).

        Every name must be known and every shape must match; nothing changes otherwise.
        """
        if not isinstance(state, dict):
            raise TypeError(
                f"{self._api}.load_ms_state_dict: expected a dict of name -> array, but got "
                f"{describe(state)}."
            )
        ours = self.ms_state_dict()
        unknown = sorted(set(state) - set(ours))
        if unknown:
            raise ValueError(
                f"{self._api}.load_ms_state_dict: unknown names {unknown[:5]}; this optimizer's "
                f"names are {sorted(ours)[:8]}... Check the parameter names (trainable_params)."
            )
        missing = sorted(name for name in ours if name not in state and "power" not in name)
        missing = [name for name in missing if not name.startswith("learning_rate")]
        if missing:
            raise ValueError(
                f"{self._api}.load_ms_state_dict: missing names {missing[:5]}. A MindSpore "
                "checkpoint of this optimizer holds every state buffer."
            )
        values = {}
        for name, value in state.items():
            try:
                tensor = torch.as_tensor(
                    np.asarray(value) if not isinstance(value, Tensor) else value
                )
            except (TypeError, ValueError, RuntimeError):
                tensor = None
            if tensor is None or not (tensor.is_floating_point() or _is_integer(tensor)):
                raise TypeError(
                    f"{self._api}.load_ms_state_dict: '{name}' must be a real numeric array or "
                    f"tensor, but got {describe(value)}."
                )
            if name == "global_step" and not (
                _is_integer(tensor)
                and tensor.numel() == 1
                and 0 <= int(tensor.reshape(())) <= _INT32_MAX
            ):
                raise ValueError(
                    f"{self._api}.load_ms_state_dict: 'global_step' must be one integer in "
                    f"[0, {_INT32_MAX}] (MindSpore's int32 counter), but got {describe(value)}."
                )
            target = ours[name]
            if tensor.numel() != target.numel():
                raise ValueError(
                    f"{self._api}.load_ms_state_dict: '{name}' has shape {tuple(tensor.shape)} but "
                    f"this optimizer's has shape {tuple(target.shape)}."
                )
            values[name] = tensor.reshape(target.shape)
        shared = {template for template in self._ms_names.values() if "{name}" not in template}
        for name, tensor in values.items():
            ours[name].copy_(tensor)
            if name in shared:
                key = next(k for k, t in self._ms_names.items() if t == name)
                for param in self._parameters:
                    if key in self.state[param]:
                        self.state[param][key].copy_(tensor.reshape(self.state[param][key].shape))
        self._host_step = int(self.global_step.item())
