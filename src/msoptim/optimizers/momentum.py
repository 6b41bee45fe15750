"""MindSpore ``nn.Momentum``."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch
from torch import Tensor

from msoptim._validate import check_bool, check_float_at_least, check_float_type
from msoptim.kernels import check_impl, select_kernel, together_device
from msoptim.kernels.lars import Rescaling, lars_momentum_step
from msoptim.kernels.momentum import (
    momentum_foreach,
    momentum_fused,
    momentum_native_or_reference,
    momentum_reference,
    momentum_steps_together,
)
from msoptim.optimizer import GroupStep, Optimizer, OwnArgumentChecks

__all__ = ["Momentum"]


class Momentum(Optimizer):
    r"""Momentum SGD, exactly as MindSpore's ``nn.Momentum``.

    .. math::
        v \leftarrow \mu v + g, \qquad
        w \leftarrow w - \eta v \quad\text{or, with Nesterov,}\quad w \leftarrow w - \eta (g + \mu v)

    where ``g`` is the gradient after MindSpore's pipeline (weight decay ``+ wd·w`` on decayed
    parameters, gradient centralization for flagged groups, ``/ loss_scale``) and ``η`` the lr of
    the current ``global_step``. State: ``moments`` (zeros), checkpoint names ``moments.<param>``;
    the constant ``momentum`` is exported as MindSpore's 0-d ``momentum`` Parameter.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: float / 0-d tensor (static), list / 1-D tensor (per step) or a schedule.
            Required, as in MindSpore.
        momentum: float ``>= 0`` (an int such as 0 is a ``TypeError``, as in MindSpore). Required.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule``.
        loss_scale: the static loss scale carried by the gradients.
        use_nesterov: Nesterov momentum.
        foreach: ``None`` (see ``fused``); True: the foreach kernels; False: the reference loop.
        fused: ``True``: on CPU a C kernel built once per machine (``momentum_native.c``, all
            groups in one call), compiled kernels for the tensors it cannot take (other layouts
            or dtypes; the first such step compiles them); on CUDA one multi-tensor Triton
            kernel per group. ``None`` with ``foreach`` unset: the same, with the reference
            instead of compiled kernels on CPU. ``False``: the reference. All bit-identical to
            the reference (see ``bench/RESULTS.md`` for their speed).

    Example:
        >>> import torch, msoptim
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = msoptim.Momentum([("w", w)], learning_rate=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, 0.5]),))
        >>> [round(x, 4) for x in w.tolist()], int(opt.global_step)
        ([0.855, -2.145], 2)

    Note (MindSpore vs torch.optim):
        The same update as ``torch.optim.SGD(momentum=μ, dampening=0)``. Differences: no dampening
        argument; without groups, parameters whose names contain ``beta`` or ``gamma`` are not
        weight-decayed (biases are); the lr has no default.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.Momentum.html
    """

    _ms_names: ClassVar[dict[str, str]] = {"moments": "moments.{name}"}
    _cuda_multi_tensor: ClassVar[bool] = True
    #: Set by a wrapping LARS for the length of one step (fused, or by default on CPU): the
    #: parameters whose gradients it rescales, and how; the rescaling runs inside the update.
    _lars_rescaling: Rescaling | None = None

    def __init__(
        self,
        params: Any,
        learning_rate: Any,
        momentum: float,
        weight_decay: Any = 0.0,
        loss_scale: float = 1.0,
        use_nesterov: bool = False,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        with OwnArgumentChecks() as own:
            check_impl(foreach, fused, "Momentum")
            check_float_type(momentum, "momentum", "Momentum", "a non-negative float")
            # MindSpore: `momentum < 0.0` is the one test, which a NaN and +inf pass
            check_float_at_least(momentum, "momentum", "Momentum", 0.0, nan_fails=False)
            check_bool(use_nesterov, "use_nesterov", "Momentum")
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            loss_scale,
            defaults={
                "momentum": momentum,
                "use_nesterov": use_nesterov,
                "foreach": foreach,
                "fused": fused,
            },
            own_checks=own,
        )

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["moments"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _ms_constants(self) -> dict[str, Tensor]:
        momentum = self.param_groups[0]["momentum"]
        return {"momentum": torch.tensor(momentum, dtype=torch.float32, device=self._device)}

    def _update_rescaled(
        self,
        params: list[Tensor],
        grads: list[Tensor],
        moments: list[Tensor],
        lr: Tensor,
        hyper: dict[str, Any],
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Update the parameters a wrapping LARS rescales, with the rescaling inside the update
        (:func:`~msoptim.kernels.lars.lars_momentum_step`); return the other ones."""
        rescaling = self._lars_rescaling
        assert rescaling is not None
        inside = [id(param) in rescaling.by_param for param in params]
        chosen = [list(itertools.compress(items, inside)) for items in (params, grads, moments)]
        if chosen[0]:
            lars_momentum_step(*chosen, rescaling, lr=lr, **hyper)
        outside = [not flag for flag in inside]
        rest = [list(itertools.compress(items, outside)) for items in (params, grads, moments)]
        return rest[0], rest[1], rest[2]

    def _update_groups(self, batches: list[GroupStep]) -> None:
        """Groups whose momentum agrees share one call of the C kernel (CPU) or one launch of the
        multi-tensor kernel (CUDA), by default and with ``fused=True``, each parameter with its
        group's lr."""
        if self._lars_rescaling:
            super()._update_groups(batches)  # a wrapping LARS's parameters take its kernel
        else:
            kept = self._kept_tables
            self._update_together(
                batches, self._together_key, lambda key, group: _step_together(key, group, kept)
            )

    @staticmethod
    def _together_key(group: dict[str, Any], params: list[Tensor]) -> tuple[Any, ...] | None:
        """The device and hyperparameters under which a group's step may share one call with
        other groups, or None (foreach, the reference, another device)."""
        if group["foreach"] is not None or group.get("fused") is False:
            return None
        device = together_device(params)
        return None if device is None else (device, group["momentum"], bool(group["use_nesterov"]))

    def _update(self, group, params, grads, states, lr) -> None:
        kernel = select_kernel(
            group, params, momentum_reference, momentum_foreach, momentum_fused, multi_tensor=self._cuda_multi_tensor,
            cpu_default=momentum_native_or_reference,  # the C kernel: nothing to compile
        )  # fmt: skip
        moments = [state["moments"] for state in states]
        hyper = {"momentum": group["momentum"], "nesterov": group["use_nesterov"]}
        if self._lars_rescaling:
            params, grads, moments = self._update_rescaled(params, grads, moments, lr, hyper)
        if params:
            kernel(params, grads, moments, lr=lr, **hyper)


def _step_together(
    key: tuple[Any, ...], together: list[GroupStep], kept: dict[Any, Any]
) -> list[int]:
    """Momentum's C kernel over several groups' parameters (``key``: their momentum and
    Nesterov; ``kept``: the optimizer's kept address tables). Returns the positions left for the
    groups' own kernels."""
    lists: tuple[list[Tensor], ...] = ([], [], [])
    params, grads, moments = lists
    lrs = []
    for _, group_params, group_grads, states, lr in together:
        params += group_params
        grads += group_grads
        moments += [state["moments"] for state in states]
        lrs += [lr] * len(group_params)
    _, momentum, nesterov = key
    return momentum_steps_together(lists, lrs, momentum=momentum, nesterov=nesterov, kept=kept)
