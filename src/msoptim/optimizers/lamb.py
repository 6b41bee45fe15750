"""MindSpore ``nn.Lamb``."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from msoptim._validate import check_float_in_range, check_positive_float, fail
from msoptim.kernels import check_impl, select_kernel
from msoptim.kernels.lamb import (
    lamb_foreach,
    lamb_fused,
    lamb_native_or_reference,
    lamb_reference,
)
from msoptim.optimizer import Optimizer, OwnArgumentChecks

__all__ = ["Lamb"]

_API = "Lamb"


def _check_betas_eps(beta1: Any, beta2: Any, eps: Any) -> None:
    # MindSpore checks the three types first, then the ranges.
    for name, value in (("beta1", beta1), ("beta2", beta2), ("eps", eps)):
        if not isinstance(value, float):
            hint = f"Write it as a float, e.g. {float(value)!r}." if isinstance(value, int) else ""
            fail(_API, name, "a float", value, hint or "Pass a Python float.", exc=TypeError)
    check_float_in_range(beta1, "beta1", _API, 0.0, 1.0)
    check_float_in_range(beta2, "beta2", _API, 0.0, 1.0)
    check_positive_float(eps, "eps", _API)


class Lamb(Optimizer):
    r"""LAMB (layer-wise adaptive moments), as MindSpore's ``nn.Lamb``.

    With ``t`` = ``global_step`` after this step's increment (1 on the first call):

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g, \quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,
        \quad \hat m = \frac{m}{1-\beta_1^t}, \quad \hat v = \frac{v}{1-\beta_2^t}

        u = \frac{\hat m}{\sqrt{\hat v} + \epsilon} + \lambda w, \qquad
        \hat g = \frac{\hat m}{\sqrt{\hat v + \epsilon}} + \lambda w, \qquad
        r = \mathrm{clip}\Big(\frac{\|w\|}{\|\hat g\|}, 0, 10\Big), \qquad
        w \leftarrow w - r\,\eta\, u

    where ``r = 1`` if either norm is 0 (NaN or negative gives 0), ``λ = 0`` for parameters whose
    decay flag is off (without groups: names containing ``beta``/``gamma``; with groups: groups
    whose weight decay is 0), and the norms are over the whole tensor (summed in float64 and rounded
    once: they do not depend on the summation order or the thread count). The pipeline runs only
    gradient centralization (no ``+ wd·w`` on the gradient, no loss scale: decay is in the update).
    State: ``lamb_m``/``lamb_v`` (zeros), checkpoint names ``lamb_m.<param>``, ``lamb_v.<param>``.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: required: static float, per-step table or schedule.
        beta1: float in ``(0, 1)``.
        beta2: float in ``(0, 1)``.
        eps: float ``> 0``.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule`` (dynamic weight decay).
        foreach: ``None`` (foreach on CUDA), True or False.
        fused: ``True`` runs the fast path (bit-identical to the reference): on CPU a C kernel
            that visits each parameter once (the moments and the norms, then the update from
            cache; built once per machine, see ``msoptim.kernels._native``), two compiled passes
            around the trust ratios for what it does not take and on CUDA (the first step
            compiles, see ``Momentum``). ``None`` with ``foreach`` unset: the C kernel on CPU
            (nothing to compile; the reference where it cannot run), foreach on CUDA.
            ``False``: not compiled.

    Example:
        >>> import torch
        >>> from msoptim.optimizers.lamb import Lamb
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
        >>> opt = Lamb([("w", w)], learning_rate=0.1, weight_decay=0.01)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.25, 1.0]),))
        >>> [round(x, 4) for x in w.tolist()], int(opt.global_step)
        ([0.7474, -1.7449, 0.2486], 2)

    Note (MindSpore vs torch.optim):
        torch has no LAMB. MindSpore's differs from the paper and from NVIDIA apex in three ways:
        the trust ratio's denominator uses ``eps`` *inside* the square root while the update uses it
        outside; the trust ratio is clipped to ``[0, 10]``; bias correction uses the step *after*
        the increment. MindSpore has no CPU kernel for Lamb (it raises "Unsupported op [Lamb] on
        CPU"); msoptim implements the GPU kernel's formula above on every device.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.Lamb.html,
        You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes" (2019).
    """

    _pipeline: ClassVar[tuple[str, ...]] = ("centralize",)
    _ms_names: ClassVar[dict[str, str]] = {"lamb_m": "lamb_m.{name}", "lamb_v": "lamb_v.{name}"}

    def __init__(
        self,
        params: Any,
        learning_rate: Any,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-6,
        weight_decay: Any = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        with OwnArgumentChecks() as own:
            _check_betas_eps(beta1, beta2, eps)
            check_impl(foreach, fused, "Lamb")
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
        state["lamb_m"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["lamb_v"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states, lr) -> None:
        # Lamb reads the step after this call's increment (the base class adds 1 afterwards).
        step = (self.global_step + 1).reshape(()).to(torch.float32)
        weight_decay = self._weight_decay_value(group)
        # A static 0.0 adds nothing: skip the ``+ 0*w`` (the kernel adds it; same values).
        decays = not isinstance(weight_decay, float) or weight_decay != 0.0
        kernel = select_kernel(
            group, params, lamb_reference, lamb_foreach, lamb_fused,
            cpu_default=lamb_native_or_reference,  # the C kernel: nothing to compile
        )  # fmt: skip
        kernel(
            params,
            grads,
            [state["lamb_m"] for state in states],
            [state["lamb_v"] for state in states],
            lr=lr,
            step=step,
            beta1=group["beta1"],
            beta2=group["beta2"],
            eps=group["eps"],
            weight_decay=weight_decay,
            decay_flags=[decays and self.decay_flags[self._index_of[id(p)]] for p in params],
        )
