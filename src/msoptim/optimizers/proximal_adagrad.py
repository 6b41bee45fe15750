"""MindSpore ``nn.ProximalAdagrad``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from msoptim._validate import check_bool, check_float_type, check_non_negative_float
from msoptim.kernels import check_impl, select_kernel
from msoptim.kernels._launch import launch_chunks
from msoptim.kernels.proximal_adagrad import (
    proximal_adagrad_foreach,
    proximal_adagrad_fused,
    proximal_adagrad_reference,
)
from msoptim.optimizer import Optimizer, OwnArgumentChecks

__all__ = ["ProximalAdagrad"]


class ProximalAdagrad(Optimizer):
    r"""Adagrad with an l1/l2 proximal step, exactly as MindSpore's ``nn.ProximalAdagrad``.

    .. math::
        a \leftarrow a + g^2, \quad \eta_t = \frac{\eta}{\sqrt{a}}, \quad
        v = w - \eta_t g, \quad
        w \leftarrow \frac{\operatorname{sign}(v)\,\max(|v| - \eta_t l_1,\ 0)}{1 + \eta_t l_2}

    The l1 threshold and the l2 shrinkage use the *adaptive* lr :math:`\eta_t` (MindSpore's
    kernel). ``g`` is the gradient after MindSpore's pipeline (weight decay, gradient
    centralization, ``/ loss_scale``). State: ``accum`` (filled with ``accum``), checkpoint names
    ``accum.<param>``.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        accum: float ``>= 0``, the accumulator's initial value. Default 0.1.
        learning_rate: default 0.001; float / 0-d tensor (static), list / 1-D tensor (per step) or
            a schedule.
        l1: float ``>= 0``, l1 regularization strength. Default 0.0.
        l2: float ``>= 0``, l2 regularization strength. Default 0.0.
        use_locking: bool, accepted and ignored (no numeric effect), as in MindSpore.
        loss_scale: the static loss scale carried by the gradients.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule``.
        foreach: ``None`` (foreach kernels on CUDA, the reference loop elsewhere), True or False.
        fused: ``True`` runs the compiled kernels (bit-identical to the reference; the first
            step compiles them, then the fastest CPU path; see ``bench/RESULTS.md``).
            ``None``/``False``: not compiled (opt-in, like ``torch.optim``'s ``fused``).

    Example:
        >>> import torch, msoptim
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = msoptim.ProximalAdagrad([("w", w)], learning_rate=0.1, l1=0.01, l2=0.1)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.5]),))
        >>> [round(x, 4) for x in w.tolist()], int(opt.global_step)
        ([0.8222, -1.793], 2)

    Note (MindSpore vs torch.optim):
        There is no ``torch.optim`` equivalent. MindSpore's docstring writes the proximal step with
        the raw lr; its kernels (and msoptim) use :math:`\eta_t = \eta/\sqrt{a}`, which agrees with
        the docstring only when ``l1 == l2 == 0``. No epsilon; the accumulator starts at 0.1.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.ProximalAdagrad.html
    """

    _ms_names: ClassVar[dict[str, str]] = {"accum": "accum.{name}"}

    def __init__(
        self,
        params: Any,
        accum: float = 0.1,
        learning_rate: Any = 0.001,
        l1: float = 0.0,
        l2: float = 0.0,
        use_locking: bool = False,
        loss_scale: float = 1.0,
        weight_decay: Any = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        api = "ProximalAdagrad"
        with OwnArgumentChecks() as own:
            check_impl(foreach, fused, "ProximalAdagrad")
            for name, value in (("accum", accum), ("l1", l1), ("l2", l2)):
                check_float_type(value, name, api)
            check_bool(use_locking, "use_locking", api)
            for name, value in (("accum", accum), ("l1", l1), ("l2", l2)):
                check_non_negative_float(value, name, api)
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            loss_scale,
            defaults={
                "accum": accum,
                "l1": l1,
                "l2": l2,
                "use_locking": use_locking,
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
            proximal_adagrad_reference,
            proximal_adagrad_foreach,
            proximal_adagrad_fused,
        )
        kernel(
            params,
            grads,
            [state["accum"] for state in states],
            lr=lr,
            l1=group["l1"],
            l2=group["l2"],
            chunks=launch_chunks(self.global_step),
        )
