"""MindSpore ``nn.LARS``: a wrapper that rescales each layer's gradient before its optimizer runs."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from msoptim._validate import check_bool, check_float, describe
from msoptim.kernels import _native, check_impl, use_foreach
from msoptim.kernels.lars import (
    Rescaling,
    lars_foreach,
    lars_fused,
    lars_native_or_reference,
    lars_reference,
)
from msoptim.optimizer import Optimizer, schedule_config
from msoptim.optimizers.momentum import Momentum

__all__ = ["LARS", "ParameterName", "default_lars_filter"]

_API = "LARS"


class ParameterName(str):
    """What ``lars_filter`` receives: a parameter's name (a ``str``) that also carries the parameter.

    ``name`` is the same string, so MindSpore's filters, written for a ``Parameter``
    (``lambda x: 'bias' not in x.name``), run unchanged; filters written for a name
    (``lambda name: 'bias' not in name``) work too. ``param`` is the ``Parameter`` itself, for
    rules on shapes (``lambda p: p.param.ndim > 1``).
    """

    param: nn.Parameter

    def __new__(cls, name: str, param: nn.Parameter) -> ParameterName:
        obj = super().__new__(cls, name)
        obj.param = param
        return obj

    @property
    def name(self) -> str:
        """The name, as MindSpore's ``Parameter.name``."""
        return str(self)


def default_lars_filter(name: str) -> bool:
    """MindSpore's default: LARS applies unless the name contains ``'LayerNorm'`` or ``'bias'``."""
    return "LayerNorm" not in name and "bias" not in name


def _f32(value: float) -> float:
    return float(np.float32(value))


class LARS(Optimizer):
    r"""Layer-wise adaptive rate scaling around another msoptim optimizer, as MindSpore's ``nn.LARS``.

    Each call first rescales the gradients, then runs the wrapped optimizer on them. For every
    parameter that ``lars_filter`` selects (``g`` already divided by the wrapped optimizer's
    ``loss_scale``; ``λ`` its weight decay, 0 where its decay flag is off):

    .. math::
        c = \frac{\text{coefficient}\,\|w\|}{\lambda\|w\| + \|g\| + \epsilon}, \qquad
        c \leftarrow \min(\max(c/\eta, 0), 1)\ \text{(use\_clip)}, \qquad
        g \leftarrow c\,(g + \lambda w)

    Parameters the filter leaves out get ``g / loss_scale`` unchanged (no weight decay). LARS takes
    the weight decay and the loss scale over from the wrapped optimizer (MindSpore copies them and
    switches them off there: its decay flags all False, its weight decay 0, no unscaling), so the
    wrapped optimizer sees plain gradients. ``use_clip`` uses the wrapped optimizer's lr of this
    step ``η``. The epsilon placement is the one of MindSpore's Ascend kernel and of its older
    docstring (MindSpore 2.10 has no CPU/GPU kernel to check it against). The norms are over the
    whole tensor, float64 sums of the squares rounded once (MindSpore sums ``w*w`` and ``g*g``
    in float32 in an order no CPU recording shows; this order-proof definition gives every msoptim
    path, thread count and a DTensor's global norm the same bits).

    A LARS behaves as an optimizer: ``step()``, ``lars(grads)``, ``zero_grad()``, ``param_groups``
    and ``state`` (the wrapped optimizer's, so ``torch.optim.lr_scheduler`` and
    ``torch.amp.GradScaler`` work on it), ``get_lr()``, ``global_step`` (shared), ``state_dict()``,
    ``ms_state_dict()``. Step the LARS, not the wrapped optimizer.

    Args:
        optimizer: the msoptim optimizer to wrap (not another LARS; not one already wrapped).
        epsilon: float, added to the denominator.
        coefficient: float, the trust coefficient.
        use_clip: clip the local rate to ``[0, 1]`` after dividing it by the lr. Not allowed with
            an optimizer that has per-group lrs and a dynamic lr (as in MindSpore).
        lars_filter: called once per parameter with a :class:`ParameterName` (a ``str`` with
            ``.name`` and ``.param``); LARS applies where it returns True. The default is
            MindSpore's, ``'LayerNorm' not in name and 'bias' not in name``. Note that
            ``msoptim.trainable_params`` names normalization parameters ``gamma``/``beta``: to
            leave BatchNorm/LayerNorm out too, pass e.g.
            ``lambda n: not any(k in n for k in ('bias', 'gamma', 'beta'))``.
        foreach: ``None`` (foreach on CUDA), True or False, for the gradient rescaling.
        fused: ``True`` runs the fast rescaling (bit-identical to the reference): on CPU a C
            kernel that visits each parameter once, its norms then, from cache, the rescaling,
            inside Momentum's update around a fused ``Momentum`` (the rescaled gradients never
            written); compiled kernels elsewhere. ``None`` follows the wrapped optimizer (fused
            if any of its groups is); with ``foreach`` unset here and there, on CPU, the C
            kernel too (nothing to compile; the reference where it cannot run).

    Example:
        >>> import torch, msoptim
        >>> from msoptim.optimizers.lars import LARS
        >>> w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
        >>> b = torch.nn.Parameter(torch.tensor([1.0]))
        >>> inner = msoptim.Momentum([("fc.weight", w), ("fc.bias", b)], 0.1, 0.9, weight_decay=0.01)
        >>> opt = LARS(inner, coefficient=0.02)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.6, 0.8]), torch.tensor([1.0])))
        >>> [round(x, 5) for x in w.tolist()], [round(x, 4) for x in b.tolist()]
        ([2.98261, 3.97682], [0.71])
        >>> opt.lars_flags, int(opt.global_step)
        ((True, False), 2)

    Note (MindSpore vs torch.optim):
        torch has no LARS. MindSpore's decays with ``λw`` inside the rescaled gradient (so the
        inner optimizer's momentum sees it) and leaves filtered-out parameters undecayed.
        MindSpore 2.10 advances ``global_step`` twice per call when the wrapped optimizer has a
        dynamic weight decay and a static lr (a leftover of older optimizers that only counted
        dynamic steps); msoptim counts one per call, so a weight-decay schedule is read at the
        same step as the lr. MindSpore's ``LARS.get_lr()`` returns a dummy 0.0; msoptim's returns
        the wrapped optimizer's lr. Deprecated in MindSpore since 2.9.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.LARS.html,
        You et al., "Large Batch Training of Convolutional Networks" (2017).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        epsilon: float = 1e-05,
        coefficient: float = 0.001,
        use_clip: bool = False,
        lars_filter: Callable[[ParameterName], bool] = default_lars_filter,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        if not isinstance(optimizer, Optimizer) or isinstance(optimizer, LARS):
            kind = "another LARS" if isinstance(optimizer, LARS) else describe(optimizer)
            raise TypeError(
                f"{_API}: 'optimizer' must be an msoptim optimizer (not a LARS), but got {kind}. "
                "Wrap e.g. msoptim.Momentum(params, 0.1, 0.9)."
            )
        if getattr(optimizer, "_wrapped_by_lars", False):
            raise ValueError(
                f"{_API}: this {type(optimizer).__name__} is already wrapped by a LARS, which took "
                "its weight decay and loss scale over. Build a new optimizer to wrap."
            )
        check_float(epsilon, "epsilon", _API)
        check_impl(foreach, fused, _API)
        check_float(coefficient, "coefficient", _API)
        check_bool(use_clip, "use_clip", _API)
        if not callable(lars_filter):
            raise TypeError(
                f"{_API}: 'lars_filter' must be a callable taking a parameter name, but got "
                f"{describe(lars_filter)}. Pass e.g. lambda name: 'bias' not in name."
            )
        if use_clip and optimizer.is_group_lr and optimizer.dynamic_lr:
            raise ValueError(
                f"{_API}: 'use_clip=True' needs an optimizer without both per-group and dynamic "
                "learning rates (MindSpore's rule), but this one has both. Use one lr kind, or "
                "use_clip=False."
            )
        flags = tuple(
            bool(lars_filter(ParameterName(name, param)))
            for name, param in zip(optimizer.parameter_names, optimizer.parameters)
        )

        # torch.optim.Optimizer's bookkeeping, without its parameter groups (the wrapped ones).
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()
        self._patch_step_function()
        self._warned_capturable_if_run_uncaptured = True

        self._api = _API
        self.optimizer = optimizer
        self.epsilon = epsilon
        self.coefficient = coefficient
        self.use_clip = use_clip
        self.lars_flags = flags
        self.foreach = foreach
        self.fused = fused
        # Taken over from the wrapped optimizer (MindSpore copies these attributes).
        self.decay_flags = tuple(optimizer.decay_flags)
        self.loss_scale = optimizer.loss_scale
        self.need_scale = optimizer.need_scale
        self.reciprocal_scale = optimizer.reciprocal_scale
        self.dynamic_weight_decay = optimizer.dynamic_weight_decay
        self.exec_weight_decay = optimizer.exec_weight_decay
        self._group_weight_decay = [group["weight_decay"] for group in optimizer.param_groups]
        # Per parameter, the group whose weight decay it takes (None: its flag is off). Fixed once
        # wrapped (groups cannot be added to a LARS), so built here, not filled during a step.
        self._decay_group_list = [
            self._group_of_param(param) if flag else None
            for param, flag in zip(self._parameters, self.decay_flags)
        ]
        self._disable_inner()
        optimizer._wrapped_by_lars = True

    def _disable_inner(self) -> None:
        """Switch weight decay and unscaling off on the wrapped optimizer (they are LARS's now)."""
        inner = self.optimizer
        for group in inner.param_groups:
            group["weight_decay"] = 0.0
        inner.decay_flags = tuple(False for _ in inner.decay_flags)
        inner.exec_weight_decay = False
        inner.dynamic_weight_decay = False
        inner.loss_scale = 1.0
        inner.need_scale = False
        inner.reciprocal_scale = torch.tensor(1.0, dtype=torch.float32)

    # ------------------------------------------------------------------ delegation

    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The wrapped optimizer's parameter groups."""
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property
    def state(self) -> Any:  # type: ignore[override]
        """The wrapped optimizer's state (LARS itself keeps none)."""
        return self.optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        self.optimizer.state = value

    @property
    def defaults(self) -> dict[str, Any]:  # type: ignore[override]
        """The wrapped optimizer's defaults."""
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.optimizer.defaults = value

    @property
    def global_step(self) -> Tensor:  # type: ignore[override]
        """The wrapped optimizer's ``global_step`` (shared, as in MindSpore)."""
        return self.optimizer.global_step

    @property
    def _parameters(self) -> tuple[nn.Parameter, ...]:  # type: ignore[override]
        return self.optimizer.parameters

    @property
    def _names(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.optimizer.parameter_names

    @property
    def _device(self) -> torch.device:  # type: ignore[override]
        return self.optimizer._device

    @property
    def is_group(self) -> bool:  # type: ignore[override]
        """Whether the wrapped optimizer has parameter groups."""
        return self.optimizer.is_group

    @property
    def is_group_lr(self) -> bool:  # type: ignore[override]
        """Whether the wrapped optimizer has per-group learning rates."""
        return self.optimizer.is_group_lr

    @property
    def is_group_params_ordered(self) -> bool:  # type: ignore[override]
        """Whether the wrapped optimizer's groups were given an ``order_params``."""
        return self.optimizer.is_group_params_ordered

    @property
    def dynamic_lr(self) -> bool:  # type: ignore[override]
        """Whether the wrapped optimizer's learning rate is dynamic."""
        return self.optimizer.dynamic_lr

    @property
    def grad_centralization_flags(self) -> tuple[bool, ...]:  # type: ignore[override]
        """The wrapped optimizer's gradient-centralization flags (it centralizes)."""
        return self.optimizer.grad_centralization_flags

    @property
    def learning_rate(self) -> Any:
        """The wrapped optimizer's lr storage (``lars.learning_rate.fill_(0.01)`` works)."""
        return self.optimizer.learning_rate

    def get_lr(self) -> Tensor | tuple[Tensor, ...]:
        """The wrapped optimizer's lr for the next step (MindSpore's LARS returns a dummy 0.0)."""
        return self.optimizer.get_lr()

    def get_lr_parameter(self, param: Any) -> Any:
        """The wrapped optimizer's lr storage for ``param``."""
        return self.optimizer.get_lr_parameter(param)

    @property
    def weight_decay(self) -> Any:
        """The weight decay LARS took over, stored as MindSpore does (``wd * loss_scale``)."""

        def stored(value: Any) -> Any:
            if isinstance(value, nn.Module):
                return value
            return torch.tensor(value * self.loss_scale, dtype=torch.float32)

        if not self.is_group:
            return stored(self._group_weight_decay[0])
        return tuple(
            stored(self._group_weight_decay[self._group_of_param(p)]) for p in self._parameters
        )

    def get_weight_decay(self) -> Tensor | tuple[Tensor, ...]:
        """The weight decay of the next step (``wd * loss_scale``; schedules evaluated)."""
        values = [
            value(self.global_step).reshape(()) * self.loss_scale
            if isinstance(value, nn.Module)
            else torch.tensor(value * self.loss_scale, dtype=torch.float32)
            for value in self._group_weight_decay
        ]
        if not self.is_group:
            return values[0]
        return tuple(values[self._group_of_param(p)] for p in self._parameters)

    def _group_of_param(self, param: Tensor) -> int:
        return self.optimizer._group_index[id(param)]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Not supported: add groups to the optimizer before wrapping it in LARS."""
        raise NotImplementedError(
            f"{_API}.add_param_group: LARS fixes its filter flags and weight decay when it wraps "
            "the optimizer. Add the group to the optimizer first, then build the LARS."
        )

    # ------------------------------------------------------------------ the step

    def _weight_decay_values(self) -> list[float | Tensor]:
        """Per wrapped group: MindSpore's ``(wd * loss_scale) / loss_scale`` in float32."""
        scale = self.loss_scale
        values: list[float | Tensor] = []
        for value in self._group_weight_decay:
            if isinstance(value, nn.Module):
                values.append((value(self.global_step).reshape(()) * scale) / scale)
            else:
                values.append(_f32(np.float32(value * scale) / np.float32(scale)))
        return values

    def _fused_rescaling(self) -> bool:
        fused = getattr(self, "fused", None)
        if fused is None:
            return any(group.get("fused") for group in self.optimizer.param_groups)
        return fused

    def _lars_gradients(self, gradients: Sequence[Tensor | None]) -> list[Tensor | None]:
        """Unscale every gradient, then rescale the LARS-flagged ones (new tensors)."""
        result = list(gradients)
        if len(result) != len(self.lars_flags):
            raise RuntimeError(
                f"{_API}: the wrapped optimizer has {len(result)} parameters but LARS was built for "
                f"{len(self.lars_flags)}. Add parameter groups before wrapping the optimizer."
            )
        present = [i for i, grad in enumerate(result) if grad is not None]
        if self.need_scale and present:
            scaled = torch._foreach_mul([result[i] for i in present], _f32(1.0 / self.loss_scale))
            for i, grad in zip(present, scaled):
                result[i] = grad
        indices = [i for i in present if self.lars_flags[i]]
        if not indices:
            return result
        params = self._parameters
        lrs = None
        if self.use_clip:
            lr = self.optimizer.get_lr()
            lrs = [lr[i] if isinstance(lr, tuple) else lr for i in indices]
        group_values = self._weight_decay_values()
        decay_groups = self._decay_group_list
        decays: list[Any] = [
            0.0 if group is None else group_values[group]
            for group in map(decay_groups.__getitem__, indices)
        ]
        if any(isinstance(value, Tensor) for value in decays):
            device = params[indices[0]].device
            decays = [torch.as_tensor(v, dtype=torch.float32, device=device) for v in decays]
        chosen = [params[i] for i in indices]
        chosen_grads = [result[i] for i in indices]
        arguments = {
            "weight_decays": decays,
            "lrs": lrs,
            "epsilon": _f32(self.epsilon),
            "coefficient": _f32(self.coefficient),
            "use_clip": self.use_clip,
        }
        if self._rescales_inside_momentum(chosen, chosen_grads):
            clip_lrs = lrs if lrs is not None else [None] * len(chosen)
            self.optimizer._lars_rescaling = Rescaling(  # type: ignore[attr-defined]
                dict(zip(map(id, chosen), zip(decays, clip_lrs))),
                epsilon=arguments["epsilon"],
                coefficient=arguments["coefficient"],
                use_clip=self.use_clip,
                compile_rest=self._fused_rescaling(),
            )
            return result  # the wrapped Momentum rescales these inside its kernel
        if self._fused_rescaling():
            kernel: Any = functools.partial(lars_fused, owner=self.optimizer.global_step)
        elif self._native_by_default(chosen):
            kernel = functools.partial(lars_native_or_reference, owner=self.optimizer.global_step)
        else:
            kernel = lars_foreach if use_foreach(self.foreach, chosen) else lars_reference
        rescaled = kernel(chosen, chosen_grads, **arguments)
        for i, grad in zip(indices, rescaled):
            result[i] = grad
        return result

    def _native_by_default(self, params: list[Tensor]) -> bool:
        """No ``fused``/``foreach`` asked for, here or in the wrapped optimizer, on CPU: the C
        kernel (nothing to compile), with the reference where it cannot run."""
        return (
            self.fused is None
            and self.foreach is None
            and all(
                group.get("fused") is None and group.get("foreach") is None
                for group in self.optimizer.param_groups
            )
            and not use_foreach(None, params)
        )

    def _rescales_inside_momentum(self, params: list[Tensor], grads: list[Tensor]) -> bool:
        """Whether the wrapped optimizer's kernel can take the rescaling over: a fused Momentum on
        CPU, plain float32 tensors, and nothing between the rescaling and the kernel (no gradient
        centralization; the loss scale, undone before the norms, is 1). Not while dynamo traces
        (``torch.compile(opt.step)``): the caller's compiler fuses the two steps itself, and the
        hand-over by parameter identity is not something to trace."""
        inner = self.optimizer
        fused = self._fused_rescaling() and all(group.get("fused") for group in inner.param_groups)
        return (
            not torch.compiler.is_compiling()
            and type(inner) is Momentum
            and (fused or self._native_by_default(params))
            and not self.need_scale
            and not any(inner.grad_centralization_flags)
            and _native.all_plain_float32_cpu([*params, *grads])
        )

    def construct(self, gradients: list[Tensor | None]) -> None:
        """Rescale the gradients, then run the wrapped optimizer (which advances ``global_step``)."""
        try:
            self.optimizer._apply(self._lars_gradients(gradients))
        finally:
            self.optimizer.__dict__.pop("_lars_rescaling", None)

    @torch.no_grad()
    def _apply(self, gradients: list[Tensor | None]) -> None:
        self.construct(gradients)

    # ------------------------------------------------------------------ checkpoints

    def _config(self) -> dict[str, Any]:
        def describe_wd(value: Any) -> Any:
            if isinstance(value, nn.Module):
                return {"class": type(value).__qualname__, "config": schedule_config(value)}
            return value

        return {
            "epsilon": self.epsilon,
            "coefficient": self.coefficient,
            "use_clip": self.use_clip,
            "lars_flags": list(self.lars_flags),
            "decay_flags": list(self.decay_flags),
            "loss_scale": self.loss_scale,
            "weight_decay": [describe_wd(value) for value in self._group_weight_decay],
        }

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state dict plus LARS's settings under ``"lars"``."""
        packed = self.optimizer.state_dict()
        packed["lars"] = self._config()
        return packed

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a :meth:`state_dict`; LARS's settings must match (they are checked, not loaded)."""
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"{_API}.load_state_dict: expected a dict from lars.state_dict(), but got "
                f"{describe(state_dict)}."
            )
        saved = state_dict.get("lars")
        if saved is not None:
            ours = self._config()
            differ = sorted(key for key in ours if saved.get(key) != ours[key])
            if differ:
                listing = "; ".join(f"{key}: {saved.get(key)!r} vs {ours[key]!r}" for key in differ)
                raise ValueError(
                    f"{_API}.load_state_dict: the checkpoint's LARS settings differ from this "
                    f"LARS's ({listing}). Build the LARS (and its optimizer) as in the saved run."
                )
        inner = {key: value for key, value in state_dict.items() if key != "lars"}
        self.optimizer.load_state_dict(inner)
        self._disable_inner()

    def ms_state_dict(self) -> dict[str, Tensor]:
        """The wrapped optimizer's state under MindSpore's names (LARS adds no state)."""
        return self.optimizer.ms_state_dict()

    def load_ms_state_dict(self, state: dict[str, Any]) -> None:
        """Load MindSpore-named state into the wrapped optimizer."""
        self.optimizer.load_ms_state_dict(state)

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (
            f"LARS(epsilon={self.epsilon}, coefficient={self.coefficient}, "
            f"use_clip={self.use_clip}, optimizer={self.optimizer!r})"
        )
