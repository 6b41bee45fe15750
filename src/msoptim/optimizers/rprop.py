"""MindSpore ``nn.Rprop``."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from msoptim._validate import check_float_in_range, check_float_type, describe, fail, refuse
from msoptim.kernels import check_impl, select_kernel
from msoptim.kernels.rprop import rprop_foreach, rprop_fused, rprop_reference
from msoptim.optimizer import Optimizer, OwnArgumentChecks

__all__ = ["Rprop"]


def _check_pair(value: Any, name: str, example: str) -> None:
    if not isinstance(value, tuple):
        raise TypeError(
            f"Rprop: '{name}' must be a tuple of 2 floats, but got {describe(value)}. "
            f"Pass a tuple such as {example} (MindSpore rejects lists here)."
        )
    if len(value) != 2:
        raise ValueError(
            f"Rprop: '{name}' must be a tuple of 2 floats, but got {len(value)} values "
            f"{value!r}. Pass a tuple such as {example}."
        )


def _check_rprop_arguments(etas: Any, step_sizes: Any) -> None:
    """MindSpore's order: shapes, then min <= max, then the element types and ranges."""
    _check_pair(etas, "etas", "(0.5, 1.2)")
    _check_pair(step_sizes, "step_sizes", "(1e-6, 50.0)")
    if step_sizes[0] > step_sizes[1]:
        raise ValueError(
            f"Rprop: the maximal step size must not be less than the minimal step size, but "
            f"got step_sizes={step_sizes!r}. Pass (min_step, max_step)."
        )
    etaminus, etaplus = etas
    check_float_in_range(etaminus, "etas[0] (etaminus)", "Rprop", 0.0, 1.0)
    check_float_type(etaplus, "etas[1] (etaplus)", "Rprop")
    if etaplus <= 1.0:
        fail("Rprop", "etas[1] (etaplus)", "a float > 1.0", etaplus, "Use e.g. 1.2.")
    if math.isnan(etaplus):  # MindSpore's `etaplus <= 1.0` test passes it
        refuse("Rprop", "etas[1] (etaplus)", "a float > 1.0", etaplus, "Use e.g. 1.2.")
    check_float_type(step_sizes[0], "step_sizes[0] (min_step_sizes)", "Rprop")
    check_float_type(step_sizes[1], "step_sizes[1] (max_step_sizes)", "Rprop")
    # A NaN slips through MindSpore's min <= max comparison (NaN compares False) and makes
    # every step size NaN; refuse it.
    for name, value in zip(
        ("step_sizes[0] (min_step_sizes)", "step_sizes[1] (max_step_sizes)"), step_sizes
    ):
        if math.isnan(value):
            refuse("Rprop", name, "a float, not NaN", value, "Pass e.g. step_sizes=(1e-6, 50.0).")


class Rprop(Optimizer):
    r"""Resilient backpropagation, exactly as MindSpore's ``nn.Rprop``.

    With :math:`t` the step count *after* this step's increment, :math:`\Delta` the per-element
    step size (set to the lr when :math:`t = 1`) and :math:`g_{-1}` the previous kept gradient:

    .. math::
        f = \begin{cases} \eta_+ & g\, g_{-1} > 0 \\ \eta_- & g\, g_{-1} < 0 \\
            1 & \text{otherwise} \end{cases}, \quad
        \Delta \leftarrow \operatorname{clip}(\Delta f, \Delta_{min}, \Delta_{max}), \quad
        g' = \begin{cases} 0 & f = \eta_- \\ g & \text{otherwise} \end{cases}, \quad
        w \leftarrow w - \operatorname{sign}(g')\, \Delta

    and :math:`g_{-1} \leftarrow g'`. ``g`` is the gradient after MindSpore's pipeline (weight
    decay, gradient centralization; Rprop has no loss scale). State: ``prev`` and ``step_size``
    (zeros); checkpoint names ``prev.<param>``, ``step_size.<param>``.

    Args:
        params: an ``nn.Module``, ``(name, Parameter)`` pairs, Parameters, or group dicts.
        learning_rate: default 0.1, the initial step size; float / 0-d tensor (static), list / 1-D
            tensor (per step) or a schedule (read at the first step only).
        etas: tuple ``(etaminus, etaplus)`` with ``0 < etaminus < 1 < etaplus``. Default (0.5, 1.2).
        step_sizes: tuple ``(min_step, max_step)`` of floats, ``min_step <= max_step``. Default
            (1e-6, 50.0).
        weight_decay: float ``>= 0`` or a ``LearningRateSchedule``.
        foreach: ``None`` (foreach kernels on CUDA, the reference loop elsewhere), True or False.
        fused: ``True`` runs the compiled kernels (bit-identical to the reference; the first
            step compiles them, then the fastest CPU path; see ``bench/RESULTS.md``).
            ``None``/``False``: not compiled (opt-in, like ``torch.optim``'s ``fused``).

    Example:
        >>> import torch, msoptim
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = msoptim.Rprop([("w", w)], learning_rate=0.1)
        >>> for grad in ([0.5, -0.5], [0.5, 0.5]):
        ...     opt((torch.tensor(grad),))
        >>> [round(x, 4) for x in w.tolist()], int(opt.global_step)
        ([0.78, -1.9], 2)

    Note (MindSpore vs torch.optim):
        The same update as ``torch.optim.Rprop``. Differences: default lr 0.1 (torch 0.01);
        ``etas``/``step_sizes`` must be tuples (torch takes any pair); an optional weight decay;
        the first-step initialisation follows ``global_step == 1``, so restoring or resetting
        ``global_step`` re-initialises the step sizes.

    References:
        https://www.mindspore.cn/docs/en/r2.3/api_python/nn/mindspore.nn.Rprop.html
    """

    _ms_names: ClassVar[dict[str, str]] = {"prev": "prev.{name}", "step_size": "step_size.{name}"}

    def __init__(
        self,
        params: Any,
        learning_rate: Any = 0.1,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50.0),
        weight_decay: Any = 0.0,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        with OwnArgumentChecks() as own:
            check_impl(foreach, fused, "Rprop")
            _check_rprop_arguments(etas, step_sizes)
        super().__init__(
            learning_rate,
            params,
            weight_decay,
            1.0,
            defaults={
                "etas": etas,
                "step_sizes": step_sizes,
                "foreach": foreach,
                "fused": fused,
            },
            own_checks=own,
        )

    def _init_state(self, param: Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        state["prev"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["step_size"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def _update(self, group, params, grads, states, lr) -> None:
        kernel = select_kernel(group, params, rprop_reference, rprop_foreach, rprop_fused)
        (etaminus, etaplus), (low, high) = group["etas"], group["step_sizes"]
        kernel(
            params,
            grads,
            [state["prev"] for state in states],
            [state["step_size"] for state in states],
            lr=lr,
            step=(self.global_step + 1).reshape(()),
            etaminus=etaminus,
            etaplus=etaplus,
            step_size_min=low,
            step_size_max=high,
        )
