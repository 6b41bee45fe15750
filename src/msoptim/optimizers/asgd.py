"""MindSpore ``nn.ASGD``."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from msoptim._validate import check_float_type, refuse
from msoptim.kernels import check_impl, select_kernel
from msoptim.kernels.asgd import asgd_foreach, asgd_fused, asgd_reference
from msoptim.optimizer import Optimizer, OwnArgumentChecks

__all__ = ["ASGD"]


class ASGD(Optimizer):
    r"""Averaged stochastic gradient descent, exactly as MindSpore's ``nn.ASGD``.

    With :math:`t` the step count *after* this step's increment (1 on the first step):

    .. math::
        w \leftarrow w (1 - \lambda \eta) - \eta g, \quad
        \bar w \leftarrow \begin{cases} \bar w + (w - \bar w)\mu & \mu \ne 1 \\ w & \mu = 1 \end{cases},
        \quad
        \eta \leftarrow \frac{\mathrm{lr}}{(1 + \lambda\, \mathrm{lr}\, t)^{\alpha}}, \quad
        \mu \leftarrow \frac{1}{\max(1, t - t_0)}

    and :math:`\eta` is set to this step's lr first when :math:`t = 1`. ``g`` is the gradient after
    MindSpore's pipeline (weight decay, gradient centralization; ASGD has no loss scale). State per
    parameter: ``mu`` (0-d, 1.0), ``eta`` (0-d, 0.0) and the average ``ax`` (zeros); checkpoint
    names ``mu_<param>``, ``eta_<param>`` and ``ax_.<param>``, as MindSpore writes them.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: default 0.1; float / 0-d tensor (static), list / 1-D tensor (per step) or a
            schedule.
        lambd: float, the decay term. Default 1e-4.
        alpha: float, the power of the eta update. Default 0.75.
        t0: float, the step at which averaging starts (``1000000`` as an int is rejected, as in
            MindSpore). Default 1e6.
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule``.
        foreach: ``None`` (foreach kernels on CUDA, the reference loop elsewhere), True or False.
        fused: ``True`` runs the compiled kernels (bit-identical to the reference; the first
            step compiles them, then the fastest CPU path; see ``bench/RESULTS.md``).
            ``None``/``False``: not compiled (opt-in, like ``torch.optim``'s ``fused``).

    Example:
        >>> import torch, msoptim
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = msoptim.ASGD([("w", w)], learning_rate=0.1)
        >>> for _ in range(2):
        ...     opt((torch.tensor([0.5, -0.5]),))
        >>> [round(x, 6) for x in w.tolist()], int(opt.global_step)
        ([0.899981, -1.899961], 2)

    Note (MindSpore vs torch.optim):
        The same update as ``torch.optim.ASGD`` (which starts eta at lr). Differences: default lr
        0.1 (torch 0.01); the lr is this step's ``get_lr()`` value (so dynamic lrs work); without
        groups, ``beta``/``gamma`` names are not weight-decayed; no ``maximize``.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.ASGD.html
    """

    _ms_names: ClassVar[dict[str, str]] = {
        "mu": "mu_{name}",
        "eta": "eta_{name}",
        "ax": "ax_.{name}",
    }

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 0.1,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: Any = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        with OwnArgumentChecks() as own:
            check_impl(foreach, fused, "ASGD")
            for name, value in (("lambd", lambd), ("alpha", alpha), ("t0", t0)):
                check_float_type(value, name, "ASGD")
            # MindSpore checks only the types; a NaN (or an infinite lambd/alpha) turns every
            # parameter into NaN/inf at the first step, so it is refused here. t0=inf is
            # meaningful (never start averaging) and is kept.
            for name, value in (("lambd", lambd), ("alpha", alpha)):
                if not math.isfinite(value):
                    refuse(
                        "ASGD",
                        name,
                        "a finite float",
                        value,
                        "Use e.g. 1e-4 for lambd, 0.75 for alpha.",
                    )
            if math.isnan(t0):
                refuse("ASGD", "t0", "a float, not NaN", t0, "Use e.g. 1e6.")
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            1.0,
            defaults={"lambd": lambd, "alpha": alpha, "t0": t0, "foreach": foreach, "fused": fused},
            own_checks=own,
        )

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["mu"] = torch.ones((), dtype=torch.float32, device=param.device)
        state["eta"] = torch.zeros((), dtype=torch.float32, device=param.device)
        state["ax"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states, lr) -> None:
        kernel = select_kernel(group, params, asgd_reference, asgd_foreach, asgd_fused)
        kernel(
            params,
            grads,
            [state["mu"] for state in states],
            [state["eta"] for state in states],
            [state["ax"] for state in states],
            lr=lr,
            step=(self.global_step + 1).reshape(()),
            lambd=group["lambd"],
            alpha=group["alpha"],
            t0=group["t0"],
        )
