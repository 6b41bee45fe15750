"""MindSpore's learning-rate schedules: modules that map a step tensor to a float32 learning rate.

A schedule is a pure function of ``global_step``: ``schedule(step)`` takes a Python int or an
integer tensor (0-d or shape ``(1,)``, any integer dtype, any device) and returns a **0-d float32
tensor on the step's device**. It holds only frozen Python scalars: no buffers, no ``step()``,
nothing to checkpoint.

Every ``forward`` is written with tensor ops only (no ``.item()``, no Python branch on the step
value), so a schedule runs inside ``torch.compile(fullgraph=True)`` and inside a CUDA graph without
a host sync.

Precision: MindSpore evaluates these formulas in float32, one op at a time, with its Python
constants cast to float32. We do the same, in the same order, and also reproduce how its CPU kernels
compute ``sin`` and ``pow`` (see the comment above ``_sin32``), so the results are bit-identical to
MindSpore's recordings rather than merely close:

* Constants are rounded to float32 once, at construction. An op between a float32 tensor and a
  Python float then gives the same bits whether a backend applies the scalar in float32 or in
  float64.
* ``sin`` is evaluated in float64 and rounded once to float32; torch's float32 ``sin`` can be one
  ulp away from MindSpore's.
* ``pow`` is C ``powf`` (MindSpore's CPU kernel calls it for every exponent), computed by
  :mod:`msoptim._powf` with glibc's algorithm in float64 tensor ops: about thirty tiny ops, which
  ``torch.compile`` or a CUDA graph fuse into one kernel.
* ``python_float / tensor`` is ``reciprocal(tensor) * python_float`` in MindSpore (two roundings).
* ``tensor / python_float`` is one division, on every device: eager CUDA would multiply by a
  float32 reciprocal instead (:mod:`msoptim._division`).

The float64 list counterparts (``exponential_decay_lr`` and friends) live in
:mod:`msoptim.lr_functions`. The formulas are duplicated on purpose, one per precision.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from msoptim._division import divide_by_number, divide_tensors
from msoptim._powf import exp2_of_product, log2_constant, powf
from msoptim._validate import (
    check_bool,
    check_non_negative_float,
    check_positive_float,
    check_positive_int,
    fail,
)

__all__ = [
    "CosineDecayLR",
    "ExponentialDecayLR",
    "InverseDecayLR",
    "LearningRateSchedule",
    "NaturalExpDecayLR",
    "PolynomialDecayLR",
    "WarmUpLR",
    "as_step_tensor",
]


def _f32(value: float) -> float:
    """``value`` rounded to the nearest float32, as a Python float (inf beyond its range)."""
    with np.errstate(over="ignore"):
        return float(np.float32(value))


_PI = _f32(math.pi)
_E = _f32(math.e)


# How MindSpore's CPU kernels evaluate the two transcendental ops, and how we reproduce them:
# * ``Sin`` calls C ``sinf``. We take float64 ``sin`` rounded once to float32 (the correctly
#   rounded value); ``sinf`` rarely differs from it by one ulp, and in these schedules the final
#   rounding absorbed every such case we sampled.
# * ``Pow`` calls C ``powf`` for every exponent, integers included: :func:`msoptim._powf.powf`
#   follows glibc's algorithm step for step (it is not correctly rounded, so neither is ours).
# MPS has no float64, so there the float32 ops are used as they are.


def _sin32(x: Tensor) -> Tensor:
    if x.device.type == "mps":
        return torch.sin(x)
    return torch.sin(x.double()).float()


def _pow_constant_base(base: float, log2_base: float | None, exponent: Tensor) -> Tensor:
    """MindSpore's float32 ``Pow(base, exponent)``; ``log2_base`` is ``log2_constant(base)``."""
    if exponent.device.type == "mps":
        return torch.pow(base, exponent)
    if log2_base is None:  # a base that float32 rounds to 0 or inf
        return powf(torch.full_like(exponent, base), exponent)
    return exp2_of_product(exponent, log2_base)


def _pow_constant_exponent(base: Tensor, exponent: float) -> Tensor:
    """MindSpore's float32 ``Pow(base, exponent)`` for a tensor ``base >= 0``."""
    if base.device.type == "mps":
        return torch.pow(base, exponent)
    return powf(base, exponent)


_LOG2_E = log2_constant(_E)
assert _LOG2_E is not None


def as_step_tensor(global_step: int | Tensor, *, api: str = "LearningRateSchedule") -> Tensor:
    """Normalise a step to the 0-d integer tensor that ``forward`` receives.

    A tensor keeps its device and dtype and is reshaped to 0-d (a view, no copy, no host sync); a
    Python int (or anything with ``__index__``, ``bool`` excluded) becomes a 0-d int64 tensor on the
    default device. Only metadata is inspected, never the value.

    Args:
        global_step: the step, e.g. an optimizer's ``global_step`` (int32, shape ``(1,)``).
        api: the name shown in error messages.

    Returns:
        A 0-d integer tensor.

    Raises:
        TypeError: ``global_step`` is a float, bool or complex tensor, or not an integer at all.
        ValueError: ``global_step`` is a tensor with more than one element.

    Example:
        >>> as_step_tensor(3)
        tensor(3)
        >>> as_step_tensor(torch.tensor([7], dtype=torch.int32))
        tensor(7, dtype=torch.int32)
    """
    if isinstance(global_step, Tensor):
        dtype = global_step.dtype
        if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
            fail(
                api,
                "global_step",
                "an int or an integer tensor",
                global_step,
                f"Its dtype is {dtype}; steps count updates: pass e.g. step.to(torch.int64).",
                exc=TypeError,
            )
        if global_step.numel() != 1:
            fail(
                api,
                "global_step",
                "a single step (a 0-d or one-element tensor)",
                global_step,
                f"Its shape is {tuple(global_step.shape)}; call the schedule once per step.",
            )
        return global_step.reshape(())
    if isinstance(global_step, bool) or not hasattr(type(global_step), "__index__"):
        fail(
            api,
            "global_step",
            "an int or an integer tensor",
            global_step,
            "Pass the step number, e.g. 0 for the first update.",
            exc=TypeError,
        )
    step = operator.index(global_step)
    if not -(2**63) <= step < 2**63:
        fail(
            api,
            "global_step",
            "an int that fits in int64",
            global_step,
            "Steps count updates; an optimizer's global_step is an int32.",
        )
    return torch.tensor(step, dtype=torch.int64)


class LearningRateSchedule(torch.nn.Module):
    """Base class of learning-rate schedules: ``forward(global_step) -> 0-d float32 tensor``.

    Subclasses implement :meth:`forward`. Calling the schedule first normalises the step with
    :func:`as_step_tensor`, so ``forward`` always receives a 0-d integer tensor, whatever the caller
    passed (an int, a 0-d tensor, or an optimizer's ``(1,)`` ``global_step``).

    Write ``forward`` with tensor ops only (``torch.where``, ``torch.minimum``, ``torch.clamp``...):
    no ``.item()``, ``float(t)`` or Python ``if`` on the step, so the schedule stays free of host
    syncs and usable under ``torch.compile`` and CUDA graphs. Store hyper-parameters with
    :meth:`_freeze`: they become read-only and appear in ``repr``.

    Example:
        A linear warm-up followed by a constant, branch-free:

        >>> class WarmupConstant(LearningRateSchedule):
        ...     def __init__(self, lr: float, warmup_steps: int) -> None:
        ...         super().__init__()
        ...         self._freeze(lr=lr, warmup_steps=warmup_steps)
        ...
        ...     def forward(self, global_step: Tensor) -> Tensor:
        ...         step = global_step.to(torch.float32)
        ...         warm = self.lr * step / self.warmup_steps
        ...         full = torch.full_like(warm, self.lr)
        ...         return torch.where(step < self.warmup_steps, warm, full)
        >>> schedule = WarmupConstant(0.5, 4)
        >>> schedule
        WarmupConstant(lr=0.5, warmup_steps=4)
        >>> [round(float(schedule(s)), 4) for s in range(6)]
        [0.0, 0.125, 0.25, 0.375, 0.5, 0.5]

    Note (MindSpore vs torch.optim):
        A ``torch.optim.lr_scheduler`` object mutates ``param_groups`` when you call ``step()``; a
        schedule here is stateless and is evaluated by the optimizer at its own ``global_step``, as
        MindSpore's ``LearningRateSchedule`` cells are. Resuming needs no scheduler state.
    """

    def __call__(self, global_step: int | Tensor) -> Tensor:
        """Evaluate the schedule at ``global_step`` (an int or an integer tensor)."""
        return super().__call__(as_step_tensor(global_step, api=type(self).__name__))

    def forward(self, global_step: Tensor) -> Tensor:
        """The learning rate at ``global_step`` (a 0-d integer tensor), as a 0-d float32 tensor."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement forward(global_step) -> Tensor, returning the "
            "learning rate at that step as a 0-d float32 tensor computed with tensor ops."
        )

    def _freeze(self, **values: Any) -> None:
        """Store read-only hyper-parameters; names without a leading ``_`` are shown in ``repr``."""
        frozen = self.__dict__.get("_frozen_names", ())
        for name, value in values.items():
            super().__setattr__(name, value)
        super().__setattr__("_frozen_names", (*frozen, *values))

    def __setattr__(self, name: str, value: Any) -> None:
        # Derived float32 constants are computed from these once; changing one afterwards would
        # leave the schedule silently inconsistent.
        if name in self.__dict__.get("_frozen_names", ()):
            raise AttributeError(
                f"{type(self).__name__}: '{name}' is fixed at construction. Build a new "
                f"{type(self).__name__} with the value you want instead."
            )
        super().__setattr__(name, value)

    def extra_repr(self) -> str:
        """The public hyper-parameters, ``name=value`` in constructor order."""
        names = self.__dict__.get("_frozen_names", ())
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in names if name[0] != "_")


def _check_decay_inputs(
    api: str, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool
) -> None:
    # MindSpore's order for the three exponential-family schedules.
    check_positive_int(decay_steps, "decay_steps", api)
    check_positive_float(learning_rate, "learning_rate", api)
    check_positive_float(decay_rate, "decay_rate", api)
    check_bool(is_stair, "is_stair", api)


class ExponentialDecayLR(LearningRateSchedule):
    r"""Exponential decay: ``learning_rate * decay_rate ** (step / decay_steps)``.

    .. math::
        lr = learning\_rate \cdot decay\_rate^{p}, \quad p = \frac{step}{decay\_steps}
        \quad \left(p = \left\lfloor \frac{step}{decay\_steps} \right\rfloor
        \text{ if is\_stair}\right)

    Args:
        learning_rate: the learning rate at step 0, a Python float ``> 0``.
        decay_rate: the factor per ``decay_steps`` steps, a Python float ``> 0``.
        decay_steps: steps per factor of ``decay_rate``, an int ``> 0``.
        is_stair: if ``True``, decay in whole factors every ``decay_steps`` steps. Default
            ``False``.

    Returns:
        Called with a step, a 0-d float32 tensor on the step's device.

    Raises:
        TypeError: ``decay_steps`` is not an ``int``, a rate is not a ``float`` (an ``int``
            included), or ``is_stair`` is not a ``bool``.
        ValueError: an argument is ``<= 0`` (or not finite).

    Example:
        >>> schedule = ExponentialDecayLR(0.1, 0.9, 4)
        >>> [round(float(schedule(s)), 6) for s in (0, 2, 4, 8)]
        [0.1, 0.094868, 0.09, 0.081]
        >>> stair = ExponentialDecayLR(0.1, 0.9, 4, is_stair=True)
        >>> [round(float(stair(s)), 6) for s in (0, 3, 4, 7, 8)]
        [0.1, 0.1, 0.09, 0.09, 0.081]

    Note (MindSpore vs torch.optim):
        There is no floor: the learning rate keeps decaying (or growing, if ``decay_rate > 1``)
        forever. Matches ``exponential_decay_lr(..., step_per_epoch=1, decay_epoch=decay_steps)``.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.ExponentialDecayLR.html
    """

    def __init__(
        self, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool = False
    ) -> None:
        super().__init__()
        _check_decay_inputs("ExponentialDecayLR", learning_rate, decay_rate, decay_steps, is_stair)
        self._freeze(
            learning_rate=learning_rate,
            decay_rate=decay_rate,
            decay_steps=decay_steps,
            is_stair=is_stair,
            _lr32=_f32(learning_rate),
            _rate32=_f32(decay_rate),
            _rate_log2=log2_constant(_f32(decay_rate)),
            _steps32=_f32(decay_steps),
        )

    def forward(self, global_step: Tensor) -> Tensor:
        """The learning rate at ``global_step``."""
        p = divide_by_number(global_step.to(torch.float32), self._steps32)
        if self.is_stair:
            p = torch.floor(p)
        return self._lr32 * _pow_constant_base(self._rate32, self._rate_log2, p)


class NaturalExpDecayLR(LearningRateSchedule):
    r"""Natural-exponential decay: ``learning_rate * e ** (-decay_rate * step)``.

    .. math::
        lr = learning\_rate \cdot e^{-decay\_rate \cdot p}, \quad p = step
        \quad \left(p = \left\lfloor \frac{step}{decay\_steps} \right\rfloor \cdot decay\_steps
        \text{ if is\_stair}\right)

    Args:
        learning_rate: the learning rate at step 0, a Python float ``> 0``.
        decay_rate: the decay rate **per step**, a Python float ``> 0``.
        decay_steps: with ``is_stair``, the steps between two drops, an int ``> 0``. Without
            ``is_stair`` it is validated but **not used** (see the note).
        is_stair: if ``True``, drop by ``e ** (-decay_rate * decay_steps)`` every ``decay_steps``
            steps. Default ``False``.

    Returns:
        Called with a step, a 0-d float32 tensor on the step's device.

    Raises:
        TypeError: ``decay_steps`` is not an ``int``, a rate is not a ``float`` (an ``int``
            included), or ``is_stair`` is not a ``bool``.
        ValueError: an argument is ``<= 0`` (or not finite).

    Example:
        >>> schedule = NaturalExpDecayLR(0.1, 0.9, 4)
        >>> [round(float(schedule(s)), 6) for s in range(4)]
        [0.1, 0.040657, 0.01653, 0.006721]
        >>> stair = NaturalExpDecayLR(0.1, 0.9, 4, is_stair=True)
        >>> [round(float(stair(s)), 6) for s in (0, 3, 4, 7)]
        [0.1, 0.1, 0.002732, 0.002732]

    Note (MindSpore vs torch.optim):
        MindSpore's docstring says ``p = step / decay_steps``, but its code does not divide when
        ``is_stair`` is ``False``: the learning rate falls by ``e ** -decay_rate`` *every step*, and
        ``decay_steps`` is ignored. We reproduce the code (it agrees with ``natural_exp_decay_lr``),
        so pick ``decay_rate`` per step. The base ``e`` is float32(e), as in MindSpore.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.NaturalExpDecayLR.html
    """

    def __init__(
        self, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool = False
    ) -> None:
        super().__init__()
        _check_decay_inputs("NaturalExpDecayLR", learning_rate, decay_rate, decay_steps, is_stair)
        self._freeze(
            learning_rate=learning_rate,
            decay_rate=decay_rate,
            decay_steps=decay_steps,
            is_stair=is_stair,
            _lr32=_f32(learning_rate),
            _neg_rate32=_f32(-decay_rate),
            _steps32=_f32(decay_steps),
        )

    def forward(self, global_step: Tensor) -> Tensor:
        """The learning rate at ``global_step``."""
        p = global_step.to(torch.float32)
        if self.is_stair:
            p = torch.floor(divide_by_number(p, self._steps32)) * self._steps32
        exponent = self._neg_rate32 * p
        return self._lr32 * _pow_constant_base(_E, _LOG2_E, exponent)


class InverseDecayLR(LearningRateSchedule):
    r"""Inverse-time decay: ``learning_rate / (1 + decay_rate * step / decay_steps)``.

    .. math::
        lr = \frac{learning\_rate}{1 + decay\_rate \cdot p}, \quad p = \frac{step}{decay\_steps}
        \quad \left(p = \left\lfloor \frac{step}{decay\_steps} \right\rfloor
        \text{ if is\_stair}\right)

    Args:
        learning_rate: the learning rate at step 0, a Python float ``> 0``.
        decay_rate: the decay rate, a Python float ``> 0``.
        decay_steps: steps per unit of decay, an int ``> 0``.
        is_stair: if ``True``, decay only every ``decay_steps`` steps. Default ``False``.

    Returns:
        Called with a step, a 0-d float32 tensor on the step's device.

    Raises:
        TypeError: ``decay_steps`` is not an ``int``, a rate is not a ``float`` (an ``int``
            included), or ``is_stair`` is not a ``bool``.
        ValueError: an argument is ``<= 0`` (or not finite).

    Example:
        >>> schedule = InverseDecayLR(0.1, 0.9, 4)
        >>> [round(float(schedule(s)), 6) for s in (0, 1, 2, 4, 8)]
        [0.1, 0.081633, 0.068966, 0.052632, 0.035714]

    Note (MindSpore vs torch.optim):
        No floor and no clamp: the learning rate keeps shrinking like ``1 / step``.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.InverseDecayLR.html
    """

    def __init__(
        self, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool = False
    ) -> None:
        super().__init__()
        _check_decay_inputs("InverseDecayLR", learning_rate, decay_rate, decay_steps, is_stair)
        self._freeze(
            learning_rate=learning_rate,
            decay_rate=decay_rate,
            decay_steps=decay_steps,
            is_stair=is_stair,
            _lr32=_f32(learning_rate),
            _rate32=_f32(decay_rate),
            _steps32=_f32(decay_steps),
        )

    def forward(self, global_step: Tensor) -> Tensor:
        """The learning rate at ``global_step``."""
        p = divide_by_number(global_step.to(torch.float32), self._steps32)
        if self.is_stair:
            p = torch.floor(p)
        denominator = 1.0 + self._rate32 * p
        # MindSpore's ``float / Tensor`` is ``Tensor.reciprocal() * float``: two roundings (the
        # reciprocal as an IEEE division: torch's ``reciprocal`` is not exact on every device)
        return divide_tensors(torch.full_like(denominator, 1.0), denominator) * self._lr32


class CosineDecayLR(LearningRateSchedule):
    r"""Cosine annealing from ``max_lr`` to ``min_lr`` over ``decay_steps`` steps, then held.

    .. math::
        lr = min\_lr + \frac{max\_lr - min\_lr}{2}
        \left(1 + \sin\left(\pi \left(\frac{\min(step, decay\_steps)}{decay\_steps}
        + \frac{1}{2}\right)\right)\right)

    which is ``min_lr + (max_lr - min_lr) / 2 * (1 + cos(pi * step / decay_steps))`` written in the
    form MindSpore evaluates in float32 (the two differ in the last bit).

    Args:
        min_lr: the final learning rate, a Python float ``>= 0``.
        max_lr: the learning rate at step 0, a Python float ``> min_lr``.
        decay_steps: steps to go from ``max_lr`` to ``min_lr``, an int ``> 0``.

    Returns:
        Called with a step, a 0-d float32 tensor on the step's device.

    Raises:
        TypeError: ``min_lr`` or ``max_lr`` is not a ``float`` (``0`` included: write ``0.0``), or
            ``decay_steps`` is not an ``int``.
        ValueError: ``min_lr < 0``, ``max_lr <= 0``, ``decay_steps <= 0``, or ``min_lr >= max_lr``.

    Example:
        >>> schedule = CosineDecayLR(0.01, 0.1, 4)
        >>> [round(float(schedule(s)), 6) for s in range(6)]
        [0.1, 0.08682, 0.055, 0.02318, 0.01, 0.01]

    Note (MindSpore vs torch.optim):
        ``torch.optim.lr_scheduler.CosineAnnealingLR`` follows the cosine back up after ``T_max``;
        this schedule stays at ``min_lr`` from ``decay_steps`` on. There are no restarts.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.CosineDecayLR.html
    """

    def __init__(self, min_lr: float, max_lr: float, decay_steps: int) -> None:
        super().__init__()
        api = "CosineDecayLR"
        check_non_negative_float(min_lr, "min_lr", api)
        check_positive_float(max_lr, "max_lr", api)
        check_positive_int(decay_steps, "decay_steps", api)
        if min_lr >= max_lr:
            fail(
                api,
                "max_lr",
                f"greater than 'min_lr' ({min_lr!r})",
                max_lr,
                "The learning rate anneals from max_lr down to min_lr: swap them, or raise max_lr. "
                "For a constant learning rate pass a float instead of a schedule.",
            )
        self._freeze(
            min_lr=min_lr,
            max_lr=max_lr,
            decay_steps=decay_steps,
            _min32=_f32(min_lr),
            _delta32=_f32(0.5 * (max_lr - min_lr)),
            _steps32=_f32(decay_steps),
        )

    def forward(self, global_step: Tensor) -> Tensor:
        """The learning rate at ``global_step``."""
        # min-then-cast (MindSpore) equals cast-then-min: rounding to float32 is monotone
        p = torch.clamp(global_step.to(torch.float32), max=self._steps32)
        phase = _PI * (divide_by_number(p, self._steps32) + 0.5)
        return self._min32 + self._delta32 * (1.0 + _sin32(phase))


class PolynomialDecayLR(LearningRateSchedule):
    r"""Polynomial decay from ``learning_rate`` to ``end_learning_rate`` over ``decay_steps`` steps.

    .. math::
        lr = (learning\_rate - end\_learning\_rate) \left(1 - \frac{s}{D}\right)^{power}
        + end\_learning\_rate

    where, without ``update_decay_steps``, ``s = min(step, decay_steps)`` and ``D = decay_steps``
    (the learning rate then stays at ``end_learning_rate``); with it, ``s = step`` and
    ``D = decay_steps * max(ceil(step / decay_steps), 1)`` (the horizon grows by ``decay_steps``
    each time it is reached, so the learning rate jumps back up and decays again).

    Args:
        learning_rate: the learning rate at step 0, a Python float ``> 0``.
        end_learning_rate: the final learning rate, a Python float ``>= 0``; it may exceed
            ``learning_rate`` (the learning rate then grows).
        decay_steps: steps to reach ``end_learning_rate``, an int ``> 0``.
        power: the exponent of the polynomial, a Python float ``> 0``.
        update_decay_steps: if ``True``, extend the horizon instead of holding the final value.
            Default ``False``.

    Returns:
        Called with a step, a 0-d float32 tensor on the step's device.

    Raises:
        TypeError: a float argument is not a ``float``, ``decay_steps`` is not an ``int``, or
            ``update_decay_steps`` is not a ``bool``.
        ValueError: ``learning_rate <= 0``, ``end_learning_rate < 0``, ``decay_steps <= 0`` or
            ``power <= 0``.

    Example:
        >>> schedule = PolynomialDecayLR(0.1, 0.01, 4, 0.5)
        >>> [round(float(schedule(s)), 6) for s in range(6)]
        [0.1, 0.087942, 0.07364, 0.055, 0.01, 0.01]
        >>> cyclic = PolynomialDecayLR(0.1, 0.01, 4, 0.5, update_decay_steps=True)
        >>> [round(float(cyclic(s)), 6) for s in (4, 5, 8)]
        [0.01, 0.065114, 0.01]

    Note (MindSpore vs torch.optim):
        ``torch.optim.lr_scheduler.PolynomialLR`` decays to 0; this one decays to
        ``end_learning_rate``. MindSpore validates ``update_decay_steps`` before ``power``, and so
        do we.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.PolynomialDecayLR.html
    """

    def __init__(
        self,
        learning_rate: float,
        end_learning_rate: float,
        decay_steps: int,
        power: float,
        update_decay_steps: bool = False,
    ) -> None:
        super().__init__()
        api = "PolynomialDecayLR"
        check_positive_float(learning_rate, "learning_rate", api)
        check_non_negative_float(end_learning_rate, "end_learning_rate", api)
        check_positive_int(decay_steps, "decay_steps", api)
        check_bool(update_decay_steps, "update_decay_steps", api)
        check_positive_float(power, "power", api)
        self._freeze(
            learning_rate=learning_rate,
            end_learning_rate=end_learning_rate,
            decay_steps=decay_steps,
            power=power,
            update_decay_steps=update_decay_steps,
            _diff32=_f32(learning_rate - end_learning_rate),
            _end32=_f32(end_learning_rate),
            _power32=_f32(power),
            _steps32=_f32(decay_steps),
        )

    def forward(self, global_step: Tensor) -> Tensor:
        """The learning rate at ``global_step``."""
        step = global_step.to(torch.float32)
        if self.update_decay_steps:
            horizon = self._steps32 * torch.clamp(
                torch.ceil(divide_by_number(step, self._steps32)), min=1.0
            )
            p = divide_tensors(step, horizon)
        else:
            p = divide_by_number(torch.clamp(step, max=self._steps32), self._steps32)
        return self._diff32 * _pow_constant_exponent(1.0 - p, self._power32) + self._end32


class WarmUpLR(LearningRateSchedule):
    r"""Linear warm-up from exactly 0 to ``learning_rate`` over ``warmup_steps`` steps, then held.

    .. math::
        lr = learning\_rate \cdot \frac{\min(step, warmup\_steps)}{warmup\_steps}

    Args:
        learning_rate: the learning rate after warm-up, a Python float ``>= 0``.
        warmup_steps: steps of warm-up, an int ``> 0``.

    Returns:
        Called with a step, a 0-d float32 tensor on the step's device.

    Raises:
        TypeError: ``learning_rate`` is not a ``float`` or ``warmup_steps`` is not an ``int``.
        ValueError: ``learning_rate < 0`` or ``warmup_steps <= 0``.

    Example:
        >>> schedule = WarmUpLR(0.1, 2)
        >>> [round(float(schedule(s)), 6) for s in range(4)]
        [0.0, 0.05, 0.1, 0.1]

    Note (MindSpore vs torch.optim):
        The learning rate is **exactly 0 at step 0**, so an optimizer's first update changes nothing
        (``torch.optim.lr_scheduler.LinearLR`` starts at ``start_factor * lr``). MindSpore's
        docstring asks for ``learning_rate > 0`` but its check accepts ``0.0``; so do we.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.WarmUpLR.html
    """

    def __init__(self, learning_rate: float, warmup_steps: int) -> None:
        super().__init__()
        api = "WarmUpLR"
        check_non_negative_float(learning_rate, "learning_rate", api)
        check_positive_int(warmup_steps, "warmup_steps", api)
        self._freeze(
            learning_rate=learning_rate,
            warmup_steps=warmup_steps,
            _lr32=_f32(learning_rate),
            _steps32=_f32(warmup_steps),
        )

    def forward(self, global_step: Tensor) -> Tensor:
        """The learning rate at ``global_step``."""
        done = torch.clamp(global_step.to(torch.float32), max=self._steps32)
        return self._lr32 * divide_by_number(done, self._steps32)
