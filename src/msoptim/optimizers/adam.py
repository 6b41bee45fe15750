"""MindSpore ``nn.Adam``, ``nn.AdamOffload`` and ``nn.LazyAdam``."""

from __future__ import annotations

import difflib
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from msoptim._validate import (
    check_bool,
    check_float_in_range,
    check_float_type,
    check_positive_float,
    describe,
)
from msoptim.kernels import check_impl, select_kernel, together_device, use_foreach
from msoptim.kernels._launch import launch_chunks
from msoptim.kernels.adam import (
    adam_amsgrad_foreach,
    adam_amsgrad_reference,
    adam_foreach,
    adam_fused,
    adam_native_or_reference,
    adam_offload_foreach,
    adam_offload_reference,
    adam_reference,
    adam_steps_together,
)
from msoptim.optimizer import GroupStep, Optimizer, OwnArgumentChecks

__all__ = [
    "Adam",
    "AdamOffload",
    "LazyAdam",
    "UnexpectedKeywordError",
    "check_betas_and_eps",
    "restore_float32_state",
]

_HOST = torch.device("cpu")


class UnexpectedKeywordError(KeyError, TypeError):
    """A keyword argument the constructor does not know.

    MindSpore's ``nn.Adam`` raises ``KeyError`` for unknown ``**kwargs``; Python raises
    ``TypeError`` for an unexpected keyword. This class is both. Its ``str`` is not quoted.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _float32(value: float) -> float:
    """``value`` rounded to float32, as MindSpore stores its hyper-parameters."""
    return float(np.float32(value))


def check_betas_and_eps(beta1: Any, beta2: Any, eps: Any, api: str) -> None:
    """MindSpore's Adam-family check: three Python floats, then ``0 < β < 1`` and ``ε > 0``."""
    for name, value in (("beta1", beta1), ("beta2", beta2), ("eps", eps)):
        check_float_type(value, name, api)
    check_float_in_range(beta1, "beta1", api, 0.0, 1.0)
    check_float_in_range(beta2, "beta2", api, 0.0, 1.0)
    check_positive_float(eps, "eps", api)


def restore_float32_state(
    optimizer: Optimizer, state_dict: dict[str, Any], keys: tuple[str, ...]
) -> None:
    """Put back the float32 values of ``keys`` after ``torch.optim.Optimizer.load_state_dict``.

    torch casts every floating-point state tensor to its parameter's dtype when loading; MindSpore
    keeps the power accumulators in float32 whatever the parameter dtype (they set the lr).
    """
    saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for saved_id, param in zip(saved_ids, params):
        saved = state_dict["state"].get(saved_id, {})
        state = optimizer.state[param]
        for key in keys:
            if key in saved and key in state:
                state[key] = saved[key].to(device=state[key].device, dtype=torch.float32)


def _kernel_lists(
    params: list[Tensor], grads: list[Tensor], states: list[dict[str, Any]]
) -> tuple[list[Tensor], ...]:
    """The Adam kernels' six lists: parameters, gradients, both moments, both powers."""
    keys = ("moment1", "moment2", "beta1_power", "beta2_power")
    return (params, grads, *([state[key] for state in states] for key in keys))


def _step_together(
    key: tuple[Any, ...], together: list[GroupStep], kept: dict[Any, Any]
) -> list[int]:
    """Plain Adam's C kernel (CPU) or multi-tensor kernels (CUDA) over several groups'
    parameters (``key``: their device and hyperparameters; ``kept``: the optimizer's kept
    address tables)."""
    parts = [_kernel_lists(params, grads, states) for _, params, grads, states, _ in together]
    lists = tuple([t for part in parts for t in part[k]] for k in range(len(parts[0])))
    lrs = [lr for _, params, _, _, lr in together for _ in params]
    _, beta1, beta2, eps, nesterov = key
    hyper = {"beta1": beta1, "beta2": beta2, "eps": eps, "nesterov": nesterov}
    return adam_steps_together(lists, lrs, **hyper, kept=kept)


def _check_adam_kwargs(kwargs: dict[str, Any]) -> None:
    allowed = ("use_lazy", "use_offload")
    unknown = [key for key in kwargs if key not in allowed]
    if unknown:
        hints = [difflib.get_close_matches(str(key), allowed, n=1) for key in unknown]
        hint = "".join(f" Did you mean '{close[0]}'?" for close in hints if close)
        raise UnexpectedKeywordError(
            f"Adam: unexpected keyword argument(s) {', '.join(map(repr, unknown))}. Besides "
            "its named arguments, Adam accepts only 'use_lazy' and 'use_offload' (MindSpore's "
            f"**kwargs).{hint}"
        )


class _AdamFamily(Optimizer):
    """State, checkpoint names and kernel dispatch shared by Adam, AdamOffload and LazyAdam."""

    _ms_names: ClassVar[dict[str, str]] = {
        "moment1": "moment1.{name}",
        "moment2": "moment2.{name}",
        "vhat": "vhat.{name}",
        "beta1_power": "beta1_power",
        "beta2_power": "beta2_power",
    }
    _cuda_multi_tensor: ClassVar[bool] = True
    #: MindSpore's shape of ``beta1_power``/``beta2_power``: 0-d for Adam, ``(1,)`` for the others.
    _power_shape: ClassVar[tuple[int, ...]] = ()

    def __init__(
        self,
        params: Any,
        learning_rate: Any,
        beta1: float,
        beta2: float,
        eps: float,
        use_locking: bool,
        use_nesterov: bool,
        weight_decay: Any,
        loss_scale: float,
        *,
        use_amsgrad: bool = False,
        use_lazy: bool = False,
        use_offload: bool = False,
        foreach: bool | None,
        fused: bool | None = None,
        own_checks: OwnArgumentChecks | None = None,
    ) -> None:
        own = own_checks or OwnArgumentChecks()
        with own:
            check_impl(foreach, fused, type(self).__name__)
            if fused and (use_amsgrad or use_offload):
                raise ValueError(
                    f"{type(self).__name__}: fused=True compiles the plain Adam kernel; it does "
                    "not cover use_amsgrad or use_offload. Use fused=False with those."
                )
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            loss_scale,
            defaults={
                "beta1": beta1,
                "beta2": beta2,
                "eps": eps,
                "use_locking": use_locking,
                "use_nesterov": use_nesterov,
                "use_amsgrad": use_amsgrad,
                "use_lazy": use_lazy,
                "use_offload": use_offload,
                "foreach": foreach,
                "fused": fused,
            },
            own_checks=own,
        )

    @staticmethod
    def _state_device(param: Tensor, group: dict[str, Any]) -> torch.device:
        """Where ``param``'s state lives: host memory when offloading from an accelerator."""
        if group["use_offload"] and param.device.type != "cpu":
            return _HOST
        return param.device

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        device = self._state_device(param, group)
        for key in (
            ("moment1", "moment2", "vhat") if group["use_amsgrad"] else ("moment1", "moment2")
        ):
            state[key] = torch.zeros_like(param, device=device, memory_format=torch.preserve_format)
        for key in ("beta1_power", "beta2_power"):
            state[key] = torch.ones(self._power_shape, dtype=torch.float32, device=device)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As :meth:`Optimizer.load_state_dict`; offloaded state goes back to host memory and the
        power accumulators stay float32."""
        super().load_state_dict(state_dict)
        restore_float32_state(self, state_dict, ("beta1_power", "beta2_power"))
        for group in self.param_groups:
            for param in group["params"]:
                device = self._state_device(param, group)
                state = self.state[param]
                for key, value in state.items():
                    if isinstance(value, Tensor) and value.device != device:
                        state[key] = value.to(device)

    def _update_groups(self, batches: list[GroupStep]) -> None:
        """Groups whose step is plain Adam's C kernel (CPU) or multi-tensor kernels (CUDA), with
        ``fused=True`` or by default, and whose hyperparameters agree share one call of it, each
        parameter with its group's lr."""
        kept = self._kept_tables
        self._update_together(
            batches, self._together_key, lambda key, together: _step_together(key, together, kept)
        )

    def _together_key(self, group: dict[str, Any], params: list[Tensor]) -> tuple[Any, ...] | None:
        """The device and hyperparameters under which a group's step may share plain Adam's
        kernel with other groups, or None (another kernel: amsgrad, offload, foreach,
        fused=False, another device)."""
        if group["use_amsgrad"] or group["use_offload"] or group["foreach"] is not None:
            return None
        device = together_device(params)
        if group.get("fused") is False or device is None:
            return None
        return (
            device,
            _float32(group["beta1"]),
            _float32(group["beta2"]),
            _float32(group["eps"]),
            bool(group["use_nesterov"]),
        )

    def _update(self, group, params, grads, states, lr) -> None:
        fast = use_foreach(group["foreach"], params)
        lists = _kernel_lists(params, grads, states)
        lists, powers = lists[:4], lists[4:]
        hyper = {
            "lr": lr,
            "beta1": _float32(group["beta1"]),
            "beta2": _float32(group["beta2"]),
            "eps": _float32(group["eps"]),
        }
        if group["use_amsgrad"]:
            kernel = adam_amsgrad_foreach if fast else adam_amsgrad_reference
            kernel(*lists, [state["vhat"] for state in states], *powers, **hyper)
        elif group["use_offload"]:
            kernel = adam_offload_foreach if fast else adam_offload_reference
            chunks = launch_chunks(self.global_step)
            kernel(*lists, *powers, **hyper, nesterov=group["use_nesterov"], chunks=chunks)
        else:
            kernel = select_kernel(
                group, lists[0], adam_reference, adam_foreach, adam_fused, multi_tensor=self._cuda_multi_tensor,
                cpu_default=adam_native_or_reference,  # the C kernel: nothing to compile
            )  # fmt: skip
            kernel(*lists, *powers, **hyper, nesterov=group["use_nesterov"])


class Adam(_AdamFamily):
    r"""Adam, exactly as MindSpore's ``nn.Adam`` (with ``use_amsgrad``, ``use_lazy``, ``use_offload``).

    Each step advances ``β1ᵗ ← β1ᵗ β1``, ``β2ᵗ ← β2ᵗ β2`` (so ``t = 1`` on the first step) and folds
    the bias correction into the lr:

    .. math::
        \eta_t = \eta \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}, \quad
        m \leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
        w \leftarrow w - \eta_t \frac{m}{\sqrt{v} + \epsilon}

    With ``use_nesterov=True`` the numerator is :math:`\beta_1 m + (1 - \beta_1) g`. With
    ``use_amsgrad=True`` (``use_nesterov`` is then ignored, as in MindSpore):
    :math:`\hat v \leftarrow \max(\hat v, v)` and the denominator is :math:`\sqrt{\hat v} + \epsilon`.
    ``g`` is the gradient after MindSpore's pipeline: weight decay ``+ wd·w`` (L2, not AdamW),
    gradient centralization for flagged groups, ``/ loss_scale``. The float32 arithmetic is that
    of MindSpore's CPU kernels, fused multiply-adds included (see :mod:`msoptim.kernels.adam`).

    ``use_lazy=True`` only changes sparse updates in MindSpore; on dense gradients it is this same
    update (:class:`LazyAdam`). ``use_offload=True`` is :class:`AdamOffload`'s update: gradient
    centralization is skipped, and with parameters on an accelerator the moments and power
    accumulators stay in host memory (see :class:`AdamOffload`).

    State (MindSpore checkpoint names): ``moment1.<param>``, ``moment2.<param>`` (zeros),
    ``vhat.<param>`` (zeros, amsgrad only), and the 0-d float32 ``beta1_power``, ``beta2_power``
    (start at 1). Each parameter keeps its own copy of the powers (exported once, from the first
    parameter); a parameter that a step skips (no gradient) keeps its count, like torch's
    per-parameter ``step``.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: default 1e-3; float / 0-d tensor (static), list / 1-D tensor (per step) or a
            schedule.
        beta1: float in the open interval (0, 1). Default 0.9.
        beta2: float in the open interval (0, 1). Default 0.999.
        eps: float ``> 0``, added to :math:`\sqrt{v}` (not to the bias-corrected one). Default 1e-8.
        use_locking: bool, accepted and ignored (no numeric effect), as in MindSpore.
        use_nesterov: Nesterov momentum in the numerator.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule``.
        loss_scale: the static loss scale carried by the gradients.
        use_amsgrad: AMSGrad (not with ``use_lazy`` or ``use_offload``).
        foreach: ``None`` (multi-tensor kernels on CUDA; on CPU the reference loop, or plain
            Adam's C kernel when ``fused`` is unset too), True or False.
        fused: ``True``: on CPU the C kernel (``msoptim.kernels.adam_native.c``, built once per
            machine) for plain contiguous float32 tensors and a compiled kernel for the others;
            on CUDA one multi-tensor Triton kernel per group. Bit-identical to the reference
            either way (see ``bench/RESULTS.md``). Plain Adam only (not ``use_amsgrad``/
            ``use_offload``). ``None``: for plain Adam the C kernel on CPU (the reference where
            it cannot run) and the Triton kernel on CUDA when ``foreach`` is unset too.
            ``False``: neither.
        **kwargs: ``use_lazy`` and ``use_offload`` (bools, not both), MindSpore's only extra keys;
            any other key raises :class:`UnexpectedKeywordError` (a ``KeyError`` and ``TypeError``).

    Example:
        >>> import torch
        >>> from msoptim.optimizers.adam import Adam
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = Adam([("w", w)], learning_rate=0.1)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.25]),))
        >>> [round(x, 4) for x in w.tolist()], int(opt.global_step)
        ([0.8, -1.8], 2)

    Note (MindSpore vs torch.optim):
        ``torch.optim.Adam`` divides by :math:`\sqrt{v / (1 - \beta_2^t)} + \epsilon`; MindSpore
        by :math:`\sqrt{v} + \epsilon` with the correction folded into the lr, which equals torch
        with ``eps_torch = eps / sqrt(1 - β2ᵗ)`` (31.6 × eps at t = 1 for β2 = 0.999). Betas must
        lie strictly inside (0, 1) (torch accepts 0); weight decay is L2 on the gradient and,
        without groups, skips ``beta``/``gamma`` names; the Nesterov variant has no torch
        counterpart; ints are rejected for betas and eps.

    References:
        Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
        Reddi et al., "On the Convergence of Adam and Beyond", ICLR 2018 (AMSGrad).
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.Adam.html
    """

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        use_locking: bool = False,
        use_nesterov: bool = False,
        weight_decay: Any = 0.0,
        loss_scale: float = 1.0,
        use_amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
        **kwargs: Any,
    ) -> None:
        use_lazy = kwargs.get("use_lazy", False)
        use_offload = kwargs.get("use_offload", False)
        with OwnArgumentChecks() as own:  # MindSpore: the **kwargs first
            _check_adam_kwargs(kwargs)
            check_betas_and_eps(beta1, beta2, eps, "Adam")
            for name, flag in (
                ("use_locking", use_locking),
                ("use_nesterov", use_nesterov),
                ("use_amsgrad", use_amsgrad),
                ("use_lazy", use_lazy),
                ("use_offload", use_offload),
            ):
                check_bool(flag, name, "Adam")
            if use_amsgrad and (use_lazy or use_offload):
                raise ValueError(
                    "Adam: 'use_amsgrad=True' cannot be combined with "
                    f"{'use_lazy' if use_lazy else 'use_offload'}=True (MindSpore has no such "
                    "kernel). Drop one of them."
                )
            if use_lazy and use_offload:
                raise ValueError(
                    "Adam: 'use_lazy' and 'use_offload' cannot both be True. Pick one (on dense "
                    "gradients use_lazy=True is plain Adam)."
                )
        super().__init__(
            params,
            learning_rate,
            beta1,
            beta2,
            eps,
            use_locking,
            use_nesterov,
            weight_decay,
            loss_scale,
            use_amsgrad=use_amsgrad,
            use_lazy=use_lazy,
            use_offload=use_offload,
            foreach=foreach,
            fused=fused,
            own_checks=own,
        )
        if use_offload:
            self._pipeline = ("decay", "scale")


class AdamOffload(_AdamFamily):
    r"""Adam with its state in host memory, exactly as MindSpore's ``nn.AdamOffload``.

    The update is :class:`Adam`'s (bias correction folded into the lr, ``ε`` added to
    :math:`\sqrt{v}`), computed as MindSpore's ``AdamNoUpdateParam`` kernel does: the step

    .. math::
        \delta = -\eta_t \frac{m}{\sqrt{v} + \epsilon}, \qquad w \leftarrow w + \delta

    is computed next to the moments and then added to the parameter. The pipeline is weight decay
    and ``/ loss_scale``; **no** gradient centralization (as in MindSpore).

    Offloading: when the parameters are on an accelerator (CUDA, ...), ``moment1``, ``moment2`` and
    the power accumulators are kept in host (CPU) memory, which is what this optimizer is for:
    each step copies the gradients to the host, updates the moments there and copies ``δ`` back,
    so it synchronizes with the device and saves two parameter-sized buffers of device memory.
    ``load_state_dict`` keeps the state on the host. With parameters on the CPU it is a plain
    Adam.

    State (MindSpore checkpoint names): ``moment1.<param>``, ``moment2.<param>`` (zeros) and
    ``beta1_power``, ``beta2_power`` of shape ``(1,)`` (start at 1). MindSpore deprecates this
    class (since 2.0) in favour of ``Adam(use_offload=True)``; both are provided.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: default 1e-3; static, per-step table or schedule.
        beta1: float in (0, 1). Default 0.9.
        beta2: float in (0, 1). Default 0.999.
        eps: float ``> 0``. Default 1e-8.
        use_locking: bool, accepted and ignored.
        use_nesterov: Nesterov momentum in the numerator.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule``.
        loss_scale: the static loss scale carried by the gradients.
        foreach: ``None`` (multi-tensor kernels on CUDA, the reference loop elsewhere), True or
            False.

    Example:
        >>> import torch
        >>> from msoptim.optimizers.adam import AdamOffload
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = AdamOffload([("w", w)], learning_rate=0.1)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.25]),))
        >>> [round(x, 4) for x in w.tolist()], tuple(opt.state[w]["beta1_power"].shape)
        ([0.8, -1.8], (1,))

    Note (MindSpore vs torch.optim):
        As :class:`Adam` (eps placement, strict betas, L2 decay by name). torch has no offloading
        Adam; its closest relative is DeepSpeed's CPU Adam.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.AdamOffload.html
    """

    _pipeline: ClassVar[tuple[str, ...]] = ("decay", "scale")
    _power_shape: ClassVar[tuple[int, ...]] = (1,)

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        use_locking: bool = False,
        use_nesterov: bool = False,
        weight_decay: Any = 0.0,
        loss_scale: float = 1.0,
        *,
        foreach: bool | None = None,
    ) -> None:
        with OwnArgumentChecks() as own:
            check_betas_and_eps(beta1, beta2, eps, "AdamOffload")
            check_bool(use_locking, "use_locking", "AdamOffload")
            check_bool(use_nesterov, "use_nesterov", "AdamOffload")
        super().__init__(
            params,
            learning_rate,
            beta1,
            beta2,
            eps,
            use_locking,
            use_nesterov,
            weight_decay,
            loss_scale,
            use_offload=True,
            foreach=foreach,
            own_checks=own,
        )


class LazyAdam(_AdamFamily):
    r"""Lazy Adam, exactly as MindSpore's ``nn.LazyAdam`` (on dense gradients: :class:`Adam`).

    MindSpore's lazy update differs from Adam only for sparse (row) gradients, where it touches
    the moments of the rows present and nothing else. msoptim updates dense gradients, for which
    the update is :class:`Adam`'s, bit for bit:

    .. math::
        \eta_t = \eta \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}, \quad
        w \leftarrow w - \eta_t \frac{m}{\sqrt{v} + \epsilon}

    with ``m``, ``v`` Adam's moments and ``g`` after the standard pipeline (weight decay,
    gradient centralization, ``/ loss_scale``).

    State (MindSpore checkpoint names): ``moment1.<param>``, ``moment2.<param>`` (zeros) and
    ``beta1_power``, ``beta2_power`` of shape ``(1,)``. Deprecated in MindSpore since 2.0 in favour
    of ``Adam(use_lazy=True)``; both are provided.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: default 1e-3; static, per-step table or schedule.
        beta1: float in (0, 1). Default 0.9.
        beta2: float in (0, 1). Default 0.999.
        eps: float ``> 0``. Default 1e-8.
        use_locking: bool, accepted and ignored.
        use_nesterov: Nesterov momentum in the numerator.
        weight_decay: a Python **float** ``>= 0``: an int or a schedule is a ``TypeError`` here
            (MindSpore's LazyAdam check, spelled ``'weight_dacay'`` in its message). Group
            weight decays follow the usual rules.
        loss_scale: the static loss scale carried by the gradients.
        foreach: ``None`` (multi-tensor kernels on CUDA; on CPU the reference loop, or plain
            Adam's C kernel when ``fused`` is unset too), True or False.
        fused: ``True``: on CPU the C kernel (``msoptim.kernels.adam_native.c``, built once per
            machine) for plain contiguous float32 tensors and a compiled kernel for the others;
            on CUDA one multi-tensor Triton kernel per group. Bit-identical to the reference
            either way (see ``bench/RESULTS.md``). Plain Adam only (not ``use_amsgrad``/
            ``use_offload``). ``None``: for plain Adam the C kernel on CPU (the reference where
            it cannot run) and the Triton kernel on CUDA when ``foreach`` is unset too.
            ``False``: neither.

    Example:
        >>> import torch
        >>> from msoptim.optimizers.adam import LazyAdam
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = LazyAdam([("w", w)], learning_rate=0.1)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.25]),))
        >>> [round(x, 4) for x in w.tolist()]
        [0.8, -1.8]

    Note (MindSpore vs torch.optim):
        As :class:`Adam`. torch's ``SparseAdam`` is the lazy variant for sparse gradients (with
        torch's eps placement); msoptim does not take sparse gradients.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.LazyAdam.html
    """

    _power_shape: ClassVar[tuple[int, ...]] = (1,)

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        use_locking: bool = False,
        use_nesterov: bool = False,
        weight_decay: float = 0.0,
        loss_scale: float = 1.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        # MindSpore: the base class's weight-decay rules (in __init__); then the types of the
        # betas and eps, LazyAdam's own float check of weight_decay, and the ranges.
        with OwnArgumentChecks() as own:
            for name, value in (("beta1", beta1), ("beta2", beta2), ("eps", eps)):
                check_float_type(value, name, "LazyAdam")
            if not isinstance(weight_decay, float):
                raise TypeError(
                    f"LazyAdam: 'weight_decay' must be a float, but got {describe(weight_decay)}. "
                    "LazyAdam takes a Python float only (MindSpore's check, named 'weight_dacay', "
                    "rejects ints and schedules): write e.g. 0.0 or 1e-4, or use Adam for a "
                    "weight-decay schedule."
                )
            check_betas_and_eps(beta1, beta2, eps, "LazyAdam")
            check_bool(use_locking, "use_locking", "LazyAdam")
            check_bool(use_nesterov, "use_nesterov", "LazyAdam")
        super().__init__(
            params,
            learning_rate,
            beta1,
            beta2,
            eps,
            use_locking,
            use_nesterov,
            weight_decay,
            loss_scale,
            use_lazy=True,
            foreach=foreach,
            fused=fused,
            own_checks=own,
        )
