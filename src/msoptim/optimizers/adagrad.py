"""MindSpore ``nn.Adagrad``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from msoptim._validate import check_bool, check_float_type, check_non_negative_float
from msoptim.kernels import check_impl, select_kernel
from msoptim.kernels.adagrad import adagrad_foreach, adagrad_fused, adagrad_reference
from msoptim.optimizer import Optimizer, OwnArgumentChecks

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad, exactly as MindSpore's ``nn.Adagrad`` (no epsilon, accumulator starts at 0.1).

    .. math::
        a \leftarrow a + g^2 \ (\text{if update\_slots}), \qquad
        w \leftarrow w - \frac{\eta\, g}{\sqrt{a}}

    where ``g`` is the gradient after MindSpore's pipeline (weight decay, gradient centralization,
    ``/ loss_scale``) and ``η`` the lr of the current step. State: ``accum`` (filled with
    ``accum``), checkpoint names ``accum.<param>``.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        accum: float ``>= 0``, the accumulator's initial value. Default 0.1.
        learning_rate: default 0.001; float / 0-d tensor (static), list / 1-D tensor (per step) or
            a schedule.
        update_slots: bool; ``False`` freezes the accumulator at its initial value.
        loss_scale: the static loss scale carried by the gradients.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule``.
        foreach: ``None`` (foreach kernels on CUDA, the reference loop elsewhere), True or False.
        fused: ``True`` runs the compiled kernels (bit-identical to the reference; the first
            step compiles them, then the fastest CPU path; on CUDA one multi-tensor Triton kernel
            per group; see ``bench/RESULTS.md``). ``None``: that kernel on CUDA when ``foreach``
            is unset too, else not compiled. ``False``: never.

    Example:
        >>> import torch, msoptim
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = msoptim.Adagrad([("w", w)], learning_rate=0.1)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.5]),))
        >>> [round(x, 4) for x in w.tolist()], int(opt.global_step)
        ([0.8509, -1.8509], 2)

    Note (MindSpore vs torch.optim):
        ``torch.optim.Adagrad`` adds ``eps=1e-10`` to the denominator and starts the accumulator
        at 0 (``initial_accumulator_value``); MindSpore has no epsilon (``accum=0.0`` with a zero
        gradient gives 0/0 = NaN) and starts at 0.1. Default lr 0.001 (torch 0.01); no lr_decay.
        ``update_slots=False`` follows MindSpore's documented formula (MindSpore 2.10's CPU kernel
        ignores the flag and updates the accumulator anyway; msoptim does not reproduce that).

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.Adagrad.html
    """

    _ms_names: ClassVar[dict[str, str]] = {"accum": "accum.{name}"}
    _cuda_multi_tensor: ClassVar[bool] = True

    def __init__(
        self,
        params: Any,
        accum: float = 0.1,
        learning_rate: Any = 0.001,
        update_slots: bool = True,
        loss_scale: float = 1.0,
        weight_decay: Any = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        with OwnArgumentChecks() as own:
            check_impl(foreach, fused, "Adagrad")
            check_float_type(accum, "accum", "Adagrad")
            check_bool(update_slots, "update_slots", "Adagrad")
            check_non_negative_float(accum, "accum", "Adagrad")
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            loss_scale,
            defaults={
                "accum": accum,
                "update_slots": update_slots,
                "foreach": foreach,
                "fused": fused,
            },
            own_checks=own,
        )

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["accum"] = torch.full_like(param, group["accum"], memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states, lr) -> None:
        kernel = select_kernel(
            group,
            params,
            adagrad_reference,
            adagrad_foreach,
            adagrad_fused,
            multi_tensor=self._cuda_multi_tensor,
        )
        kernel(
            params,
            grads,
            [state["accum"] for state in states],
            lr=lr,
            update_slots=group["update_slots"],
        )
