"""MindSpore ``nn.FTRL``."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from msoptim._validate import (
    check_bool,
    check_float_at_least,
    check_float_type,
    check_positive_float,
    fail,
    refusals_later,
    refuse,
)
from msoptim.kernels import check_impl, select_kernel
from msoptim.kernels.ftrl import ftrl_foreach, ftrl_fused, ftrl_reference
from msoptim.optimizer import Optimizer

__all__ = ["FTRL"]


class FTRL(Optimizer):
    r"""Follow-the-regularized-leader (FTRL-Proximal), exactly as MindSpore's ``nn.FTRL``.

    With :math:`p` = ``lr_power`` (usually :math:`-p = 0.5`), :math:`n` the accumulator and
    :math:`z` the linear term:

    .. math::
        n' = n + g^2, \quad
        z \leftarrow z + g - \frac{n'^{-p} - n^{-p}}{\eta} w, \quad
        w \leftarrow \begin{cases}
            \dfrac{\operatorname{sign}(z)\, l_1 - z}{n'^{-p}/\eta + 2 l_2} & |z| > l_1 \\
            0 & \text{otherwise}
        \end{cases}, \quad n \leftarrow n'

    ``g`` is the gradient after MindSpore's pipeline (weight decay, gradient centralization,
    ``/ loss_scale``). Without groups, weight decay applies to *every* parameter (FTRL overrides
    MindSpore's beta/gamma name rule). State: ``moments`` (the accumulator, filled with
    ``initial_accum``) and ``linear`` (zeros); checkpoint names ``moments.<param>``,
    ``linear.<param>``.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts (no
            group ``lr``).
        initial_accum: float ``>= 0``. Default 0.1.
        learning_rate: a Python float ``> 0`` (static only: dynamic and group lrs are rejected,
            as in MindSpore). Default 0.001.
        lr_power: float ``<= 0``. Default -0.5.
        l1: float ``>= 0``. Default 0.0.
        l2: float ``>= 0``. Default 0.0.
        use_locking: bool, accepted and ignored (no numeric effect), as in MindSpore.
        loss_scale: the static loss scale carried by the gradients.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule``.
        foreach: ``None`` (foreach kernels on CUDA, the reference loop elsewhere), True or False.
        fused: ``True`` runs the compiled kernels (bit-identical to the reference; the first
            step compiles them, then the fastest CPU path; see ``bench/RESULTS.md``).
            ``None``/``False``: not compiled (opt-in, like ``torch.optim``'s ``fused``).

    Raises:
        ValueError: a dynamic ``learning_rate`` (list, 1-D tensor, schedule) or a group ``lr``.

    Example:
        >>> import torch, msoptim
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = msoptim.FTRL([("w", w)], learning_rate=0.1, l1=0.01)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.5]),))
        >>> [round(x, 4) for x in w.tolist()], int(opt.global_step)
        ([0.3147, -0.7802], 2)

    Note (MindSpore vs torch.optim):
        There is no ``torch.optim`` equivalent. msoptim follows MindSpore's documented formula
        (numerator ``sign(z)·l1 − z``); MindSpore 2.10's CPU kernel uses ``l1 − z`` for both signs
        of ``z`` (a defect that only shows with ``l1 > 0``), which msoptim does not reproduce.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.FTRL.html
    """

    _ms_names: ClassVar[dict[str, str]] = {"moments": "moments.{name}", "linear": "linear.{name}"}
    _checks_after_base: ClassVar[bool] = True

    def __init__(
        self,
        params: Any,
        initial_accum: float = 0.1,
        learning_rate: Any = 0.001,
        lr_power: float = -0.5,
        l1: float = 0.0,
        l2: float = 0.0,
        use_locking: bool = False,
        loss_scale: float = 1.0,
        weight_decay: Any = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        check_impl(foreach, fused, "FTRL")
        # MindSpore's order: the base class first, then the FTRL checks. The state is built by
        # the base class with `initial_accum` as given and discarded if a check below fails.
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            loss_scale,
            defaults={
                "initial_accum": initial_accum,
                "lr_power": lr_power,
                "l1": l1,
                "l2": l2,
                "use_locking": use_locking,
                "foreach": foreach,
                "fused": fused,
            },
        )
        if self.dynamic_lr or self.is_group_lr:
            raise ValueError(
                "FTRL: dynamic learning rate and group learning rate are currently not supported "
                f"in FTRL, but got dynamic learning rate {self.dynamic_lr} and group learning "
                f"rate {self.is_group_lr}. Pass a Python float as 'learning_rate' and no 'lr' in "
                "the groups (as in MindSpore)."
            )
        # MindSpore's comparisons fail a NaN; +inf initial_accum and -inf lr_power pass them
        # (msoptim refuses them last), +inf l1/l2 fail only in its kernel, after use_locking.
        with refusals_later() as later:
            check_float_type(initial_accum, "initial_accum", "FTRL")
            check_float_at_least(initial_accum, "initial_accum", "FTRL", 0.0, nan_fails=True)
            check_positive_float(learning_rate, "learning_rate", "FTRL")
            check_float_type(lr_power, "lr_power", "FTRL")
            if not lr_power <= 0.0:
                fail("FTRL", "lr_power", "a finite float <= 0", lr_power, "Use e.g. -0.5.")
            if math.isinf(lr_power):
                refuse("FTRL", "lr_power", "a finite float <= 0", lr_power, "Use e.g. -0.5.")
            for name, value in (("l1", l1), ("l2", l2)):
                check_float_type(value, name, "FTRL")
                if not value >= 0.0:
                    fail("FTRL", name, "a finite float >= 0", value)
            check_bool(use_locking, "use_locking", "FTRL")
        for name, value in (("l1", l1), ("l2", l2)):
            if math.isinf(value):
                fail("FTRL", name, "a finite float >= 0", value)
        if self._refused_lr is not None:
            raise self._refused_lr
        if later:
            raise later[0]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group after construction; like the constructor, FTRL takes no group ``lr``."""
        if (
            not getattr(self, "_building", False)
            and isinstance(param_group, dict)
            and "lr" in param_group
        ):
            raise ValueError(
                "FTRL.add_param_group: group learning rates are not supported in FTRL, but the "
                "new group has an 'lr'. Leave it out: the group uses the optimizer's lr."
            )
        super().add_param_group(param_group)

    def _decay_filter(self, param: Tensor, group: dict[str, Any]) -> bool:
        """FTRL decays every parameter when not grouped (MindSpore overrides the name rule)."""
        return super()._decay_filter(param, group) if self.is_group else True

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        initial = group["initial_accum"]
        initial = initial if isinstance(initial, float) else 0.0  # validated right after
        state["moments"] = torch.full_like(param, initial, memory_format=torch.preserve_format)
        state["linear"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states, lr) -> None:
        kernel = select_kernel(group, params, ftrl_reference, ftrl_foreach, ftrl_fused)
        kernel(
            params,
            grads,
            [state["moments"] for state in states],
            [state["linear"] for state in states],
            lr=lr,
            lr_power=group["lr_power"],
            l1=group["l1"],
            l2=group["l2"],
        )
