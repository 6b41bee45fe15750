"""MindSpore ``nn.RMSProp``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from msoptim._validate import check_bool, check_non_negative_float, check_positive_float
from msoptim.kernels import check_impl, select_kernel
from msoptim.kernels.rmsprop import (
    launch_chunks,
    rmsprop_foreach,
    rmsprop_fused,
    rmsprop_reference,
)
from msoptim.optimizer import Optimizer, OwnArgumentChecks

__all__ = ["RMSProp"]


class RMSProp(Optimizer):
    r"""RMSProp (optionally centered, with momentum), exactly as MindSpore's ``nn.RMSProp``.

    .. math::
        s \leftarrow \rho s + (1 - \rho) g^2, \qquad
        m \leftarrow \mu m + \frac{\eta\, g}{\sqrt{s + \epsilon}}, \qquad
        w \leftarrow w - m

    and, with ``centered=True``, :math:`\bar g \leftarrow \rho \bar g + (1 - \rho) g` and the
    denominator :math:`\sqrt{s - \bar g^2 + \epsilon}` (the update is skipped where
    :math:`s - \bar g^2 + \epsilon \le 0`). ``g`` is the gradient after MindSpore's pipeline (weight
    decay, gradient centralization, ``/ loss_scale``) and ``η`` the lr of the current step.
    State: ``mean_square`` (ONES), ``moment`` (zeros) and, when centered, ``mean_grad`` (zeros);
    checkpoint names ``mean_square.<param>``, ``moment.<param>``, ``mean_grad.<param>``.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: default 0.1; float / 0-d tensor (static), list / 1-D tensor (per step) or a
            schedule.
        decay: float ``>= 0`` (``ρ``; values above 1 are accepted, as in MindSpore). Default 0.9.
        momentum: float ``>= 0``. Default 0.0.
        epsilon: float ``> 0``, added inside the square root. Default 1e-10.
        use_locking: bool, accepted and ignored (no numeric effect), as in MindSpore.
        centered: normalise by the centered second moment (the gradient's running variance).
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
        >>> opt = msoptim.RMSProp([("w", w)], learning_rate=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.5]),))
        >>> [round(x, 4) for x in w.tolist()], int(opt.global_step)
        ([0.8472, -1.8472], 2)

    Note (MindSpore vs torch.optim):
        ``torch.optim.RMSprop`` differs in four ways: ``mean_square`` starts at 1 here (0 in
        torch), so early steps are much smaller; ``ε`` sits inside the square root (torch:
        ``sqrt(s) + ε``); the lr is inside the momentum buffer (torch: ``buf = μ buf + g / d;
        w -= η buf``), which matters when the lr changes; defaults are lr 0.1, decay 0.9,
        ε 1e-10 (torch: 0.01, alpha 0.99, 1e-8). Without groups, ``beta``/``gamma`` names are not
        weight-decayed.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.RMSProp.html
    """

    _ms_names: ClassVar[dict[str, str]] = {
        "mean_square": "mean_square.{name}",
        "moment": "moment.{name}",
        "mean_grad": "mean_grad.{name}",
    }
    _cuda_multi_tensor: ClassVar[bool] = True

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 0.1,
        decay: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-10,
        use_locking: bool = False,
        centered: bool = False,
        loss_scale: float = 1.0,
        weight_decay: Any = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        with OwnArgumentChecks() as own:
            check_impl(foreach, fused, "RMSProp")
            check_non_negative_float(decay, "decay", "RMSProp")
            check_non_negative_float(momentum, "momentum", "RMSProp")
            check_positive_float(epsilon, "epsilon", "RMSProp")
            check_bool(use_locking, "use_locking", "RMSProp")
            check_bool(centered, "centered", "RMSProp")
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            loss_scale,
            defaults={
                "decay": decay,
                "momentum": momentum,
                "epsilon": epsilon,
                "use_locking": use_locking,
                "centered": centered,
                "foreach": foreach,
                "fused": fused,
            },
            own_checks=own,
        )

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["mean_square"] = torch.ones_like(param, memory_format=torch.preserve_format)
        state["moment"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        if group["centered"]:
            state["mean_grad"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states, lr) -> None:
        kernel = select_kernel(
            group,
            params,
            rmsprop_reference,
            rmsprop_foreach,
            rmsprop_fused,
            multi_tensor=self._cuda_multi_tensor,
        )
        centered = group["centered"]
        kernel(
            params,
            grads,
            [state["mean_square"] for state in states],
            [state["moment"] for state in states],
            [state["mean_grad"] for state in states] if centered else None,
            lr=lr,
            decay=group["decay"],
            momentum=group["momentum"],
            epsilon=group["epsilon"],
            centered=centered,
            chunks=launch_chunks(self.global_step),
        )
