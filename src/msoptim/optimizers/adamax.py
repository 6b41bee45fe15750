"""MindSpore ``nn.AdaMax``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from msoptim.kernels import check_impl, select_kernel
from msoptim.kernels.adamax import adamax_foreach, adamax_fused, adamax_reference
from msoptim.optimizer import Optimizer, OwnArgumentChecks
from msoptim.optimizers.adam import check_betas_and_eps, restore_float32_state

__all__ = ["AdaMax"]


def _float32(value: float) -> float:
    return float(np.float32(value))


class AdaMax(Optimizer):
    r"""AdaMax (Adam with the infinity norm), exactly as MindSpore's ``nn.AdaMax``.

    .. math::
        m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        u \leftarrow \max(\beta_2 u, |g|), \quad
        w \leftarrow w - \frac{\eta}{1 - \beta_1^t} \frac{m}{u + \epsilon}

    ``β1ᵗ`` is a float32 accumulator multiplied by ``β1`` before use (``t = 1`` on the first step).
    ``g`` is the gradient after MindSpore's pipeline (weight decay ``+ wd·w``, gradient
    centralization for flagged groups, ``/ loss_scale``).

    State (MindSpore checkpoint names): ``moment1.<param>`` (``m``, zeros), ``moment2.<param>``
    (``u``, zeros) and ``beta1_power`` of shape ``(1,)`` (starts at 1).

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: default 0.001; float / 0-d tensor (static), list / 1-D tensor (per step) or
            a schedule.
        beta1: float in the open interval (0, 1). Default 0.9.
        beta2: float in the open interval (0, 1). Default 0.999.
        eps: float ``> 0``, added after the max. Default 1e-08.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule``.
        loss_scale: the static loss scale carried by the gradients.
        foreach: ``None`` (foreach kernels on CUDA, the reference loop elsewhere), True or False.
        fused: ``True`` runs the compiled kernel (bit-identical to the reference; the first
            step compiles it, then the fastest CPU path; see ``bench/RESULTS.md``).
            ``None``/``False``: not compiled (opt-in, like ``torch.optim``'s ``fused``).

    Example:
        >>> import torch
        >>> from msoptim.optimizers.adamax import AdaMax
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = AdaMax([("w", w)], learning_rate=0.1)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.25]),))
        >>> [round(x, 4) for x in w.tolist()], int(opt.global_step)
        ([0.8, -1.8], 2)

    Note (MindSpore vs torch.optim):
        ``torch.optim.Adamax`` adds ``ε`` inside the max (``u = max(β2·u, |g| + ε)``) and
        divides by ``u``; MindSpore divides by ``u + ε``. The default lr is 0.001 here and 0.002
        in torch; betas must lie strictly inside (0, 1); without groups, ``beta``/``gamma`` names
        are not weight-decayed. The class is spelled ``AdaMax``.

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015 (section 7.1).
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.AdaMax.html
    """

    _ms_names: ClassVar[dict[str, str]] = {
        "moment1": "moment1.{name}",
        "moment2": "moment2.{name}",
        "beta1_power": "beta1_power",
    }

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-08,
        weight_decay: Any = 0.0,
        loss_scale: float = 1.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        with OwnArgumentChecks() as own:
            check_betas_and_eps(beta1, beta2, eps, "AdaMax")
            check_impl(foreach, fused, "AdaMax")
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            loss_scale,
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
        state["moment1"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["moment2"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["beta1_power"] = torch.ones(1, dtype=torch.float32, device=param.device)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As :meth:`Optimizer.load_state_dict`; ``beta1_power`` stays float32."""
        super().load_state_dict(state_dict)
        restore_float32_state(self, state_dict, ("beta1_power",))

    def _update(self, group, params, grads, states, lr) -> None:
        kernel = select_kernel(group, params, adamax_reference, adamax_foreach, adamax_fused)
        kernel(
            params,
            grads,
            [state["moment1"] for state in states],
            [state["moment2"] for state in states],
            [state["beta1_power"] for state in states],
            lr=lr,
            beta1=_float32(group["beta1"]),
            beta2=_float32(group["beta2"]),
            eps=_float32(group["eps"]),
        )
