"""MindSpore ``nn.AdamWeightDecay``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from msoptim.kernels import check_impl, select_kernel, together_device
from msoptim.kernels.adam_weight_decay import (
    adam_weight_decay_foreach,
    adam_weight_decay_fused,
    adam_weight_decay_native_or_reference,
    adam_weight_decay_reference,
    adam_weight_decay_steps_together,
)
from msoptim.optimizer import GroupStep, Optimizer, OwnArgumentChecks
from msoptim.optimizers.adam import check_betas_and_eps

__all__ = ["AdamWeightDecay"]


def _float32(value: float) -> float:
    return float(np.float32(value))


class AdamWeightDecay(Optimizer):
    r"""Adam with decoupled weight decay and **no** bias correction, as MindSpore's ``nn.AdamWeightDecay``.

    .. math::
        m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
        w \leftarrow w - \eta \left(\frac{m}{\sqrt{v} + \epsilon} + \lambda w\right)

    where ``λ`` is the weight decay of the parameter's group, applied only to parameters whose
    decay flag is on: without groups, names containing neither ``beta`` nor ``gamma`` (biases do
    decay); with groups, the groups whose weight decay is a schedule or ``> 0``. ``λ`` may be a
    ``LearningRateSchedule`` (evaluated at the step's ``global_step``). The gradient is used as
    given: no pipeline decay, no gradient centralization, no loss scale. The float32 arithmetic is
    that of MindSpore's CPU kernel (fused multiply-adds for ``m`` and ``v``, the update in float64
    rounded once; see :mod:`msoptim.kernels.adam_weight_decay`).

    State (MindSpore checkpoint names): ``adam_m.<param>``, ``adam_v.<param>`` (zeros).

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: default 1e-3; float / 0-d tensor (static), list / 1-D tensor (per step) or a
            schedule.
        beta1: float in the open interval (0, 1). Default 0.9.
        beta2: float in the open interval (0, 1). Default 0.999.
        eps: float ``> 0``, added to :math:`\sqrt{v}`. Default 1e-6.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule``. Default 0.0.
        foreach: ``None`` (with ``fused`` unset too: the C kernel on CPU, the multi-tensor
            Triton kernel on CUDA), True or False.
        fused: ``True``: on CPU the C kernel (``msoptim.kernels.adam_weight_decay_native.c``,
            built once per machine) for plain contiguous float32 tensors and a compiled kernel
            for the others; on CUDA one multi-tensor Triton kernel per group. Bit-identical to
            the reference either way (see ``bench/RESULTS.md``). ``None``: the C kernel on CPU
            (the reference where it cannot run) and the Triton kernel on CUDA when ``foreach``
            is unset too. ``False``: neither.

    Example:
        >>> import torch
        >>> from msoptim.optimizers.adam_weight_decay import AdamWeightDecay
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = AdamWeightDecay([("w", w)], learning_rate=0.1, weight_decay=0.01)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.25]),))
        >>> [round(x, 4) for x in w.tolist()], int(opt.global_step)
        ([0.2572, -1.2552], 2)

    Note (MindSpore vs torch.optim):
        Not a drop-in for ``torch.optim.AdamW``: there is no bias correction, so the adaptive
        step is AdamW's times ``(1 - β1ᵗ) / sqrt(1 - β2ᵗ)`` (with the default betas 3.2 at
        t = 1, up to 6.6 near t = 12, tending to 1); the defaults are eps 1e-6 and weight decay
        0.0 (AdamW: 1e-8 and 1e-2); without groups ``beta``/``gamma`` names are not decayed. The
        decay itself is AdamW's: ``w -= lr·λ·w`` from the old ``w``, outside the adaptive step.

    References:
        Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.AdamWeightDecay.html
    """

    _pipeline: ClassVar[tuple[str, ...]] = ()
    _ms_names: ClassVar[dict[str, str]] = {"adam_m": "adam_m.{name}", "adam_v": "adam_v.{name}"}
    _cuda_multi_tensor: ClassVar[bool] = True

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-6,
        weight_decay: Any = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        with OwnArgumentChecks() as own:
            check_impl(foreach, fused, "AdamWeightDecay")
            check_betas_and_eps(beta1, beta2, eps, "AdamWeightDecay")
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            1.0,
            defaults={
                "beta1": beta1,
                "beta2": beta2,
                "eps": eps,
                "foreach": foreach,
                "fused": fused,
            },
            own_checks=own,
        )

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["adam_m"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["adam_v"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _update_groups(self, batches: list[GroupStep]) -> None:
        """Groups whose step is the C kernel (CPU) or the multi-tensor kernel (CUDA), with
        ``fused=True`` or by default, and whose hyperparameters agree share one call of it, each
        parameter with its group's lr and weight decay (0 where its decay flag is off)."""
        self._update_together(batches, self._together_key, self._step_together)

    @staticmethod
    def _together_key(group: dict[str, Any], params: list[Tensor]) -> tuple[Any, ...] | None:
        """The device and hyperparameters under which a group's step may share one call with
        other groups, or None (another kernel: foreach, fused=False, another device)."""
        if group["foreach"] is not None or group.get("fused") is False:
            return None
        device = together_device(params)
        if device is None:
            return None
        return device, _float32(group["beta1"]), _float32(group["beta2"]), _float32(group["eps"])

    def _step_together(self, key: tuple[Any, ...], together: list[GroupStep]) -> list[int]:
        """One call over several groups' parameters (``key``: their device and
        hyperparameters)."""
        lists: tuple[list[Any], ...] = ([], [], [], [], [], [])
        params, grads, adam_m, adam_v, lrs, decays = lists
        for group, group_params, group_grads, states, lr in together:
            weight_decay = self._weight_decay_value(group)
            for param, grad, state in zip(group_params, group_grads, states):
                params.append(param)
                grads.append(grad)
                adam_m.append(state["adam_m"])
                adam_v.append(state["adam_v"])
                lrs.append(lr)
                decays.append(weight_decay if self.decay_flags[self._index_of[id(param)]] else 0.0)
        _, beta1, beta2, eps = key
        hyper = {"beta1": beta1, "beta2": beta2, "eps": eps}
        lists = (params, grads, adam_m, adam_v)
        return adam_weight_decay_steps_together(lists, lrs, decays, **hyper, kept=self._kept_tables)

    def _update(self, group, params, grads, states, lr) -> None:
        kernel = select_kernel(
            group,
            params,
            adam_weight_decay_reference,
            adam_weight_decay_foreach,
            adam_weight_decay_fused,
            multi_tensor=self._cuda_multi_tensor,
            cpu_default=adam_weight_decay_native_or_reference,  # the C kernel: nothing to compile
        )
        weight_decay = self._weight_decay_value(group)
        hyper = {
            "lr": lr,
            "beta1": _float32(group["beta1"]),
            "beta2": _float32(group["beta2"]),
            "eps": _float32(group["eps"]),
        }
        split: dict[bool, list[int]] = {True: [], False: []}
        for i, param in enumerate(params):
            split[self.decay_flags[self._index_of[id(param)]]].append(i)
        for decays, indices in split.items():
            if not indices:
                continue
            kernel(
                [params[i] for i in indices],
                [grads[i] for i in indices],
                [states[i]["adam_m"] for i in indices],
                [states[i]["adam_v"] for i in indices],
                **hyper,
                weight_decay=weight_decay if decays else 0.0,
            )
