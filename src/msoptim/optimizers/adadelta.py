"""MindSpore ``nn.Adadelta``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from msoptim._validate import (
    check_float_in_range,
    check_float_type,
    check_non_negative_float,
    describe,
)
from msoptim.kernels import check_impl, select_kernel
from msoptim.kernels.adadelta import adadelta_foreach, adadelta_fused, adadelta_reference
from msoptim.optimizer import Optimizer, OwnArgumentChecks

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta, exactly as MindSpore's ``nn.Adadelta``.

    .. math::
        a \leftarrow \rho a + (1 - \rho) g^2, \quad
        \delta = \frac{\sqrt{u + \epsilon}}{\sqrt{a + \epsilon}}\, g, \quad
        u \leftarrow \rho u + (1 - \rho) \delta^2, \quad
        w \leftarrow w - \eta\, \delta

    where ``g`` is the gradient after MindSpore's pipeline (weight decay, gradient
    centralization, ``/ loss_scale``) and ``η`` the lr of the current step. State: ``accum`` and
    ``accum_update`` (zeros), checkpoint names ``accum.<param>``, ``accum_update.<param>``.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: default 1.0; float / 0-d tensor (static), list / 1-D tensor (per step) or a
            schedule.
        rho: float in the closed interval [0, 1]. Default 0.9.
        epsilon: float ``>= 0``, inside both square roots. Default 1e-6.
        loss_scale: the static loss scale carried by the gradients.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule``.
        foreach: ``None`` (foreach kernels on CUDA, the reference loop elsewhere), True or False.
        fused: ``True`` runs the compiled kernels (bit-identical to the reference; the first
            step compiles them, then the fastest CPU path; see ``bench/RESULTS.md``).
            ``None``/``False``: not compiled (opt-in, like ``torch.optim``'s ``fused``).

    Raises:
        TypeError: at a step, ``opt(grads)`` with ``grads`` not a tuple (a list included), as in
            MindSpore.

    Example:
        >>> import torch, msoptim
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = msoptim.Adadelta([("w", w)], learning_rate=1.0)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.5]),))
        >>> [round(x, 6) for x in w.tolist()], int(opt.global_step)
        ([0.993593, -1.993593], 2)

    Note (MindSpore vs torch.optim):
        The same update and defaults as ``torch.optim.Adadelta`` (lr 1.0, rho 0.9, eps 1e-6).
        Differences: without groups, ``beta``/``gamma`` names are not weight-decayed; no
        ``maximize``; ``opt(grads)`` needs a tuple.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.Adadelta.html
    """

    _ms_names: ClassVar[dict[str, str]] = {
        "accum": "accum.{name}",
        "accum_update": "accum_update.{name}",
    }

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 1.0,
        rho: float = 0.9,
        epsilon: float = 1e-6,
        loss_scale: float = 1.0,
        weight_decay: Any = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        with OwnArgumentChecks() as own:
            check_impl(foreach, fused, "Adadelta")
            check_float_type(rho, "rho", "Adadelta")
            check_float_type(epsilon, "epsilon", "Adadelta")
            check_float_in_range(
                rho, "rho", "Adadelta", 0.0, 1.0, low_inclusive=True, high_inclusive=True
            )
            check_non_negative_float(epsilon, "epsilon", "Adadelta")
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            loss_scale,
            defaults={"rho": rho, "epsilon": epsilon, "foreach": foreach, "fused": fused},
            own_checks=own,
        )

    def __call__(self, gradients: Sequence[Tensor]) -> None:
        """``opt(grads)`` with a tuple of gradients; MindSpore's Adadelta rejects a list."""
        if not isinstance(gradients, tuple):
            raise TypeError(
                f"Adadelta: 'grads' must be a tuple of tensors, but got {describe(gradients)}. "
                "Pass tuple(grads) (MindSpore's Adadelta rejects a list)."
            )
        super().__call__(gradients)

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["accum"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["accum_update"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states, lr) -> None:
        kernel = select_kernel(group, params, adadelta_reference, adadelta_foreach, adadelta_fused)
        kernel(
            params,
            grads,
            [state["accum"] for state in states],
            [state["accum_update"] for state in states],
            lr=lr,
            rho=group["rho"],
            epsilon=group["epsilon"],
        )
