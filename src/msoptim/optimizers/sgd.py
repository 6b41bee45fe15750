"""MindSpore ``nn.SGD``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from msoptim._validate import check_bool, check_float_at_least, fail
from msoptim.kernels import check_impl, select_kernel, together_device
from msoptim.kernels.sgd import (
    sgd_foreach,
    sgd_fused,
    sgd_native_or_reference,
    sgd_reference,
    sgd_steps_together,
)
from msoptim.optimizer import GroupStep, Optimizer, OwnArgumentChecks
from msoptim.schedules import LearningRateSchedule

__all__ = ["SGD"]


def _check_momentum_like(value: Any, name: str) -> float:
    # MindSpore's SGD converts an int (a bool too) to float, then wants a float >= 0.
    if isinstance(value, int):
        value = float(value)
    if not isinstance(value, float):
        fail("SGD", name, "a float >= 0", value, "Pass a Python float.", exc=TypeError)
    return check_float_at_least(value, name, "SGD", 0.0, nan_fails=False)


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, exactly as MindSpore's ``nn.SGD``.

    .. math::
        a \leftarrow \begin{cases} g & \text{first step} \\ \mu a + (1 - d) g & \text{after} \end{cases},
        \qquad
        w \leftarrow w - \eta \cdot \begin{cases} g + \mu a & \text{Nesterov} \\ a & \text{otherwise} \end{cases}

    With ``momentum == 0``: ``w ← w − η g`` (the buffers are untouched). State: ``accum`` (zeros)
    and ``stat`` (ones: "first step not taken yet", per element); checkpoint names
    ``accum.<param>``, ``stat.<param>`` and the 0-d ``momentum``.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: default 0.1; static, per-step table or schedule.
        momentum: float (ints are converted) ``>= 0``.
        dampening: float (ints are converted) ``>= 0``.
        weight_decay: float ``>= 0`` (a schedule is rejected, as in MindSpore).
        nesterov: requires ``momentum > 0`` and ``dampening == 0``.
        loss_scale: the static loss scale carried by the gradients.
        foreach: ``None`` (foreach on CUDA), True or False.
        fused: ``True`` runs the compiled kernels (bit-identical to the reference; the first
            step compiles them, then the fastest CPU path; on CUDA one multi-tensor Triton kernel
            per group; see ``bench/RESULTS.md``). ``None``: that kernel on CUDA when ``foreach``
            is unset too, else not compiled. ``False``: never.

    Example:
        >>> import torch, msoptim
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = msoptim.SGD([("w", w)], learning_rate=0.1, momentum=0.9, dampening=0.5)
        >>> for _ in range(2):
        ...     opt((torch.tensor([1.0]),))
        >>> round(w.item(), 4)
        0.76

    Note (MindSpore vs torch.optim):
        Same math as ``torch.optim.SGD`` (the first buffer is the raw gradient, undampened).
        Differences: default lr 0.1; without groups, ``beta``/``gamma`` names are not decayed; no
        ``maximize``; weight decay is applied by the pipeline before loss-scale unscaling.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.SGD.html
    """

    _ms_names: ClassVar[dict[str, str]] = {"accum": "accum.{name}", "stat": "stat.{name}"}
    _cuda_multi_tensor: ClassVar[bool] = True

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 0.1,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: Any = 0.0,
        nesterov: bool = False,
        loss_scale: float = 1.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        with OwnArgumentChecks() as own:
            check_impl(foreach, fused, "SGD")
            momentum = _check_momentum_like(momentum, "momentum")
            dampening = _check_momentum_like(dampening, "dampening")
            check_bool(nesterov, "nesterov", "SGD")
            if nesterov and (momentum <= 0.0 or dampening != 0.0):
                raise ValueError(
                    f"SGD: 'nesterov=True' needs momentum > 0 and dampening == 0, but got momentum "
                    f"{momentum} and dampening {dampening}. Set momentum (e.g. 0.9) and "
                    "dampening=0.0, or nesterov=False."
                )
            if isinstance(weight_decay, LearningRateSchedule):
                raise TypeError(
                    "SGD: 'weight_decay' must be a float, but got a LearningRateSchedule: SGD does "
                    "not support dynamic weight decay (as in MindSpore). Use Momentum, or a float."
                )
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            loss_scale,
            defaults={
                "momentum": momentum,
                "dampening": dampening,
                "nesterov": nesterov,
                "foreach": foreach,
                "fused": fused,
            },
            own_checks=own,
        )
        for index, group in enumerate(self.param_groups):
            if isinstance(group["weight_decay"], nn.Module):
                raise TypeError(
                    f"SGD: param_groups[{index}]['weight_decay'] is a schedule: SGD does not "
                    "support dynamic weight decay (as in MindSpore). Use a float."
                )

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["accum"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["stat"] = torch.ones_like(param, memory_format=torch.preserve_format)

    def _ms_constants(self) -> dict[str, Tensor]:
        momentum = self.param_groups[0]["momentum"]
        return {"momentum": torch.tensor(momentum, dtype=torch.float32, device=self._device)}

    def _update_groups(self, batches: list[GroupStep]) -> None:
        """Groups whose step is the C kernel (CPU) or the multi-tensor kernel (CUDA), with
        ``fused=True`` or by default, share one call of it, each parameter with its group's lr."""
        kept = self._kept_tables
        self._update_together(
            batches, self._together_key, lambda key, together: _step_together(key, together, kept)
        )

    @staticmethod
    def _together_key(group: dict[str, Any], params: list[Tensor]) -> tuple[Any, ...] | None:
        """The device and hyperparameters under which a group's step may share one call with
        other groups, or None (foreach, fused=False, another device)."""
        if group["foreach"] is not None or group.get("fused") is False:
            return None
        device = together_device(params)
        if device is None:
            return None
        return device, group["momentum"], group["dampening"], bool(group["nesterov"])

    def _update(self, group, params, grads, states, lr) -> None:
        kernel = select_kernel(
            group,
            params,
            sgd_reference,
            sgd_foreach,
            sgd_fused,
            multi_tensor=self._cuda_multi_tensor,
            cpu_default=sgd_native_or_reference,  # the C kernel: nothing to compile
        )
        kernel(
            params,
            grads,
            [state["accum"] for state in states],
            [state["stat"] for state in states],
            lr=lr,
            momentum=group["momentum"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
        )


def _step_together(
    key: tuple[Any, ...], together: list[GroupStep], kept: dict[Any, Any]
) -> list[int]:
    """SGD's C kernel (CPU) or multi-tensor kernel (CUDA) over several groups' parameters
    (``key``: their device, momentum, dampening and Nesterov; ``kept``: the optimizer's kept
    address tables). Returns the positions left for the groups' own kernels."""
    device, momentum, dampening, nesterov = key
    lists: tuple[list[Tensor], ...] = ([], [], [], [])
    params, grads, accums, stats = lists
    lrs = []
    for _, group_params, group_grads, states, lr in together:
        params += group_params
        grads += group_grads
        if momentum > 0 or device != "cpu":  # without momentum the C kernel never reads them
            accums += [state["accum"] for state in states]
            stats += [state["stat"] for state in states]
        lrs += [lr] * len(group_params)
    hyper = {"momentum": momentum, "dampening": dampening, "nesterov": nesterov}
    return sgd_steps_together(lists, lrs, **hyper, kept=kept)
