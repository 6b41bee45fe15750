"""MindSpore ``nn.AdaFactor``."""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from msoptim._powf import powf
from msoptim._validate import (
    check_bool,
    check_float_in_range,
    check_non_negative_float,
    describe,
    fail,
)
from msoptim.kernels import check_impl, use_foreach
from msoptim.kernels.adafactor import adafactor_foreach, adafactor_fused, adafactor_reference
from msoptim.optimizer import Optimizer, OwnArgumentChecks

__all__ = ["AdaFactor"]

_API = "AdaFactor"


def _f32(value: float) -> float:
    return float(np.float32(value))


def _check_eps(eps: Any) -> tuple[float, float]:
    if not isinstance(eps, list | tuple):
        fail(
            _API,
            "eps",
            "a tuple or list of two floats (eps1, eps2)",
            eps,
            "Pass e.g. eps=(1e-30, 1e-3).",
            exc=TypeError,
        )
    if len(eps) != 2:
        fail(_API, "eps", "two floats (eps1, eps2)", eps, "Pass e.g. eps=(1e-30, 1e-3).")
    for index, value in enumerate(eps):
        check_non_negative_float(value, f"eps[{index}]", _API)
    return eps[0], eps[1]


def _check_beta1(beta1: Any) -> float:
    # MindSpore: an int or a float (not a bool), then float(beta1) >= 0. None means 0.0.
    if beta1 is None:
        return 0.0
    if isinstance(beta1, bool) or not isinstance(beta1, int | float):
        fail(_API, "beta1", "an int or float >= 0, or None", beta1, "Pass e.g. 0.9.", exc=TypeError)
    value = float(beta1)
    if not math.isfinite(value) or value < 0:
        fail(_API, "beta1", "a finite number >= 0, or None", beta1, "Pass e.g. 0.9, or None.")
    return value


def _relative_step_size(step: Tensor, warmup_init: bool) -> Tensor:
    """``min(1e-6 * step if warmup_init else 1e-2, 1 / sqrt(step))`` in float32."""
    # float64 root rounded once: exact, unlike torch's float32 CPU sqrt (see kernels.adafactor)
    inverse_sqrt = 1.0 / torch.sqrt(step.to(torch.float64)).to(torch.float32)
    if warmup_init:
        return torch.minimum(step * _f32(1e-6), inverse_sqrt)
    return torch.clamp(inverse_sqrt, max=_f32(1e-2))


def _beta2t(step: Tensor, decay_rate: float) -> Tensor:
    """``1 - step ** -decay_rate`` (float32; the power is C ``powf``, as MindSpore's ``Pow``)."""
    return 1.0 - powf(step.to(torch.float32), _f32(-decay_rate))


def _own_weight_decay(value: Any, top: float) -> bool:
    """A group weight decay other than the optimizer's (ignored, as in MindSpore)."""
    return not isinstance(value, int | float) or float(value) != float(top)


def _check_kernel_arguments(group: dict[str, Any]) -> None:
    """What MindSpore accepts at construction but its kernel refuses at the first step."""
    if group["clip_threshold"] <= 0:
        raise RuntimeError(
            f"{_API}: clip_threshold must be > 0 to take a step, but got "
            f"{group['clip_threshold']!r} (MindSpore's kernel refuses it at the first step too). "
            "Pass e.g. clip_threshold=1.0."
        )
    beta1 = group["beta1"]
    if beta1 is not None and beta1 > 1:
        raise RuntimeError(
            f"{_API}: beta1 must be <= 1 to take a step, but got {beta1!r} (MindSpore's kernel "
            "refuses it at the first step too). Pass e.g. beta1=0.9."
        )


class AdaFactor(Optimizer):
    r"""Adafactor (factored second moments, relative step size), as MindSpore's ``nn.AdaFactor``.

    With ``s`` the optimizer's own step counter (``step``, after its increment) and ``g`` the raw
    gradient (AdaFactor runs no weight-decay/unscale pipeline):

    .. math::
        \rho_s = \min(10^{-2}\ \text{or}\ 10^{-6}s,\ 1/\sqrt{s}) \ \text{(relative step, else the lr)},
        \quad \hat\beta_2 = 1 - s^{-\text{decay\_rate}}

        R \leftarrow \hat\beta_2 R + (1-\hat\beta_2)\,\mathrm{mean}_{-1}(g^2+\epsilon_1), \quad
        C \leftarrow \hat\beta_2 C + (1-\hat\beta_2)\,\mathrm{mean}_{-2}(g^2+\epsilon_1)
        \quad (\text{ndim} \ge 2;\ \text{else a full } V)

        U = g \,/\, \big(\sqrt{R/\mathrm{mean}_{-1}R}\ \sqrt{C}\big), \quad
        \alpha = \rho_s \max(\epsilon_2, \mathrm{RMS}(w)), \quad
        \hat U = \alpha\, U / \max(1, \mathrm{RMS}(U)/d)

        m \leftarrow \beta_1 m + (1-\beta_1)\hat U, \qquad
        w \leftarrow w - (m + \lambda \alpha w)

    in the op order of MindSpore's CPU kernel (``msoptim.kernels.adafactor``). ``RMS`` is over the
    whole tensor. State (checkpoint names): ``exp_avg.<p>`` (when ``beta1 > 0``),
    ``exp_avg_sq_row_<p>`` (shape ``p.shape[:-1]``), ``exp_avg_sq_col_<p>``
    (``p.shape[:-2] + p.shape[-1:]``), ``exp_avg_sq_<p>`` (the full second moment for ``ndim < 2``,
    float16 under ``compression``), with MindSpore's ``(1,)`` dummies where a buffer is unused, and
    the float32 ``(1,)`` counter ``step``. ``global_step`` is advanced too.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: ``None`` (default) with ``relative_step=True``; otherwise required: a static
            float, a table or a schedule. ``get_lr()`` reports 0.0 in relative-step mode.
        eps: ``(eps1, eps2)`` floats ``>= 0``: added to ``g^2``; the floor of ``RMS(w)``.
        clip_threshold: float ``>= 0``: ``d``, the RMS clip of the update. ``0.0`` is accepted
            here but a step raises ``RuntimeError`` (as MindSpore's kernel does).
        decay_rate: float in ``(0, 1)``.
        beta1: int/float ``>= 0`` or None (no first moment); above 1 a step raises
            ``RuntimeError`` (as MindSpore's kernel does).
        weight_decay: float in ``[0, 1)``, decoupled (``w -= lambda * alpha * w``).
        scale_parameter: scale the step size by ``max(eps2, RMS(w))``. Turned off (with a warning)
            when ``learning_rate`` is not a Python number, as in MindSpore.
        relative_step: use the time-dependent step size ``rho_s`` instead of ``learning_rate``.
        warmup_init: ``rho_s = min(1e-6 * s, 1/sqrt(s))``; needs ``relative_step``.
        compression: keep ``exp_avg_sq`` in float16.
        loss_scale: accepted and validated; AdaFactor never unscales (as in MindSpore).
        foreach: ``None`` (foreach on CUDA), True or False.
        fused: ``True`` runs the C kernel (bit-identical to the reference, 8-11x faster on
            ResNet-50 and GPT-2 shapes; plain contiguous float32 CPU tensors; built once per
            machine with the system C compiler, under a second, see
            ``msoptim.kernels.adafactor.adafactor_fused``); the rest runs the reference (foreach
            on CUDA). It keeps a scratch buffer as large as the parameters whose last axis is
            shorter than 16 (convolution kernels). ``None`` (default): the same when ``foreach``
            is unset too (the fastest path; unlike the Inductor-compiled kernels of the other
            optimizers it costs no compile per process). ``False``: never.

    Example:
        >>> import torch
        >>> from msoptim.optimizers.adafactor import AdaFactor
        >>> w = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
        >>> opt = AdaFactor([("w", w)])
        >>> for _ in range(2):
        ...     opt((torch.tensor([[0.5, -1.0], [0.25, 2.0]]),))
        >>> [round(x, 4) for x in w.flatten().tolist()], opt.ms_state_dict()["step"].tolist()
        ([0.9914, -1.9957, 0.4976, 2.9953], [2.0])

    Note (MindSpore vs torch.optim):
        ``torch.optim.Adafactor`` is another variant: no first moment (``beta1``), the step size is
        ``min(lr, 1/sqrt(t))`` times ``max(eps2, RMS(w))`` always, ``eps1`` (default None) floors
        ``sqrt(V)`` instead of being added to ``g^2``, and its weight decay is ``lr * wd * w``.
        MindSpore's is the HuggingFace/fairseq algorithm: ``eps1`` added to ``g^2``, a relative
        step ``min(1e-2, 1/sqrt(s))`` or the lr, an optional first moment, ``step`` as a float32
        ``(1,)`` state, and its CPU kernel's ``1e-30`` floors. As in MindSpore, weight decay applies
        to every parameter (the beta/gamma name rule does not) and ``loss_scale`` is unused. Groups
        share one lr and one weight decay, as in MindSpore 2.10: a group's ``weight_decay`` is
        ignored (the top-level value applies; msoptim warns where MindSpore is silent), a group
        ``lr`` raises ``ValueError`` at construction with ``relative_step=False`` (MindSpore's
        first step fails on it) and is ignored, with a warning, with ``relative_step=True``.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.AdaFactor.html,
        Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost" (2018).
    """

    _pipeline: ClassVar[tuple[str, ...]] = ()
    _ms_names: ClassVar[dict[str, str]] = {
        "exp_avg": "exp_avg.{name}",
        "exp_avg_sq_row": "exp_avg_sq_row_{name}",
        "exp_avg_sq_col": "exp_avg_sq_col_{name}",
        "exp_avg_sq": "exp_avg_sq_{name}",
        "step": "step",
    }

    def __init__(
        self,
        params: Any,
        learning_rate: Any = None,
        eps: tuple[float, float] = (1e-30, 1e-3),
        clip_threshold: float = 1.0,
        decay_rate: float = 0.8,
        beta1: float | None = 0.9,
        weight_decay: float = 0.0,
        scale_parameter: bool = True,
        relative_step: bool = True,
        warmup_init: bool = False,
        compression: bool = False,
        loss_scale: float = 1.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        # MindSpore's own order: the lr / relative_step combinations first.
        if learning_rate is not None and relative_step:
            raise ValueError(
                f"{_API}: 'learning_rate' must be None when relative_step=True (the relative step "
                f"size min(1e-2, 1/sqrt(step)) replaces it), but got {describe(learning_rate)}. "
                "Pass relative_step=False (and usually scale_parameter=False) to use your own lr."
            )
        if warmup_init and not relative_step:
            raise ValueError(
                f"{_API}: 'warmup_init=True' needs relative_step=True, but got relative_step="
                f"{relative_step!r}. Set relative_step=True, or warmup_init=False."
            )
        if learning_rate is None and not relative_step:
            raise ValueError(
                f"{_API}: 'learning_rate' is required when relative_step=False, but got None. "
                "Pass a learning rate, or relative_step=True."
            )
        lr = 0.0 if learning_rate is None else learning_rate
        with OwnArgumentChecks() as own:  # MindSpore checks these after the base class's
            _check_eps(eps)
            check_impl(foreach, fused, _API)
            check_non_negative_float(clip_threshold, "clip_threshold", _API)
            check_float_in_range(decay_rate, "decay_rate", _API, 0.0, 1.0)
            check_float_in_range(weight_decay, "weight_decay", _API, 0.0, 1.0, low_inclusive=True)
            check_bool(scale_parameter, "scale_parameter", _API)
            check_bool(relative_step, "relative_step", _API)
            check_bool(compression, "compression", _API)
            _check_beta1(beta1)
        # MindSpore scales by RMS(w) only for a numeric learning rate (its ``scale_lr``).
        self._scale_lr = isinstance(lr, int | float)
        if not self._scale_lr and scale_parameter:
            warnings.warn(
                f"{_API}: scale_parameter=True is ignored because learning_rate is a "
                f"{type(lr).__name__}, not a Python number; MindSpore turns parameter scaling off "
                "in this case too. Pass scale_parameter=False to silence this warning.",
                stacklevel=2,
            )
        self._shared_step: Tensor | None = None
        super().__init__(
            lr,
            params,
            weight_decay,
            loss_scale,
            defaults={
                "eps": eps,
                "clip_threshold": clip_threshold,
                "decay_rate": decay_rate,
                "beta1": beta1,
                "scale_parameter": scale_parameter,
                "relative_step": relative_step,
                "warmup_init": bool(warmup_init),
                "compression": compression,
                "foreach": foreach,
                "fused": fused,
            },
            own_checks=own,
        )
        self._top_weight_decay = weight_decay
        self._check_groups()

    def _check_groups(self) -> None:
        """MindSpore's AdaFactor has one weight decay and one lr for all parameters: a group's
        ``weight_decay`` is ignored (warned), a group ``lr`` fails its first step (raised here)
        unless ``relative_step=True`` computes the step size (ignored, warned)."""
        ignored = [
            f"param_groups[{index}]['weight_decay'] = {describe(group['weight_decay'])}"
            for index, group in enumerate(self.param_groups)
            if _own_weight_decay(group["weight_decay"], self._top_weight_decay)
        ]
        for group in self.param_groups:
            group["weight_decay"] = self._top_weight_decay
        self._live_groups = [self._live_values(group) for group in self.param_groups]
        if ignored:
            warnings.warn(
                f"{_API}: {', '.join(ignored)} ignored: MindSpore's AdaFactor applies the "
                f"top-level weight_decay ({self._top_weight_decay!r}) to every parameter. Pass "
                "weight_decay=... to the optimizer, or build one AdaFactor per weight decay.",
                stacklevel=3,
            )
        if self.is_group_lr:
            self._check_group_lr("a parameter group sets 'lr'")

    def _check_group_lr(self, what: str) -> None:
        if not self.param_groups[0]["relative_step"]:
            raise ValueError(
                f"{_API}: {what}, but AdaFactor has one learning rate for all parameters "
                "(MindSpore's AdaFactor fails at its first step on group lrs). Remove 'lr' from "
                "the groups, or build one AdaFactor per learning rate."
            )
        warnings.warn(
            f"{_API}: {what}; it is ignored, as in MindSpore: relative_step=True computes the "
            "step size min(1e-2, 1/sqrt(step)) for every parameter. Remove 'lr' from the groups.",
            stacklevel=4,
        )

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (AdaFactor's rules: the top-level weight decay, no group lr)."""
        if isinstance(param_group, dict) and not getattr(self, "_building", False):
            wd = param_group.get("weight_decay", self._top_weight_decay)
            if _own_weight_decay(wd, self._top_weight_decay):
                warnings.warn(
                    f"{_API}.add_param_group: the group's weight_decay {describe(wd)} is ignored: "
                    f"AdaFactor applies the top-level weight_decay ({self._top_weight_decay!r}) "
                    "to every parameter, as in MindSpore.",
                    stacklevel=2,
                )
                param_group = {**param_group, "weight_decay": self._top_weight_decay}
            if "lr" in param_group:
                self._check_group_lr("add_param_group: the group sets 'lr'")
        super().add_param_group(param_group)

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        beta1 = group["beta1"]
        if beta1 is not None and beta1 > 0:
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        shape = tuple(param.shape)
        if param.ndim >= 2:
            state["exp_avg_sq_row"] = param.new_zeros(shape[:-1])
            state["exp_avg_sq_col"] = param.new_zeros(shape[:-2] + shape[-1:])
            state["exp_avg_sq"] = param.new_zeros((1,))
        else:
            state["exp_avg_sq_row"] = param.new_zeros((1,))
            state["exp_avg_sq_col"] = param.new_zeros((1,))
            dtype = torch.float16 if group["compression"] else param.dtype
            state["exp_avg_sq"] = torch.zeros_like(param, dtype=dtype)
        if self._shared_step is None:
            self._shared_step = torch.zeros(1, dtype=torch.float32, device=param.device)
        state["step"] = self._shared_step

    def construct(self, gradients: list[Tensor | None]) -> None:
        """Advance ``step`` (once per call, as MindSpore does), then update every group."""
        for group in self.param_groups:
            _check_kernel_arguments(group)
        if not self._parameters:
            return  # a wrapper's rank that owns no parameter (ZeroRedundancyOptimizer) only counts
        self.state[self._parameters[0]]["step"].add_(1.0)
        super().construct(gradients)

    def _step_reads_lrs(self) -> bool:
        # MindSpore computes the lrs (get_lr()) and replaces them: a table past its end fails
        # get_lr() but not the step.
        return not self.param_groups[0]["relative_step"]

    def _update(self, group, params, grads, states, lr) -> None:
        step = states[0]["step"].reshape(())
        if group["relative_step"]:
            lr = _relative_step_size(step, group["warmup_init"])
        eps1, eps2 = group["eps"]
        beta1 = 0.0 if group["beta1"] is None else _f32(group["beta1"])
        fused = group.get("fused")  # ``get``: checkpoints saved before the option load too
        if fused or (fused is None and group["foreach"] is None):
            kernel = adafactor_fused
        elif use_foreach(group["foreach"], params):
            kernel = adafactor_foreach
        else:
            kernel = adafactor_reference
        kernel(
            params,
            grads,
            [state["exp_avg"] for state in states] if "exp_avg" in states[0] else None,
            [state["exp_avg_sq_row"] for state in states],
            [state["exp_avg_sq_col"] for state in states],
            [state["exp_avg_sq"] for state in states],
            lr=lr,
            beta2t=_beta2t(step, group["decay_rate"]),
            eps=(_f32(eps1), _f32(eps2)),
            clip_threshold=_f32(group["clip_threshold"]),
            beta1=beta1,
            weight_decay=_f32(group["weight_decay"]),
            scale_parameter=bool(group["scale_parameter"]) and self._scale_lr,
        )

    # ------------------------------------------------------------------ MindSpore surface

    @property
    def weight_decay(self) -> Tensor | tuple[Tensor, ...]:
        """The weight decay as a float32 tensor (one per parameter with groups); not x loss_scale."""
        values = [
            torch.tensor(group["weight_decay"], dtype=torch.float32) for group in self.param_groups
        ]
        if not self.is_group:
            return values[0]
        return tuple(values[self._group_index[id(p)]] for p in self._parameters)

    def get_weight_decay(self) -> Tensor | tuple[Tensor, ...]:
        """Same as :attr:`weight_decay`: AdaFactor's decay is static and never loss-scaled."""
        return self.weight_decay

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a checkpoint; ``step`` is shared again by every parameter afterwards."""
        super().load_state_dict(state_dict)
        first = self.state[self._parameters[0]]["step"]
        self._shared_step = first.detach().to(torch.float32).clone().to(self._device)
        for param in self._parameters:
            state = self.state[param]
            state["step"] = self._shared_step
            if self._group_of(param)["compression"] and param.ndim < 2:
                # torch casts loaded state to the parameter's dtype; compression keeps float16.
                state["exp_avg_sq"] = state["exp_avg_sq"].to(torch.float16)
