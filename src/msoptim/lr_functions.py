"""MindSpore's dynamic learning-rate functions: a whole schedule as a list of Python floats.

Each function returns one learning rate per step, ``list[float]`` of length ``total_step`` (the last
milestone for :func:`piecewise_constant_lr`). Pass the list as ``learning_rate=`` to an optimizer:
step ``t`` uses ``lr[t]``, and stepping past the end raises.

The values are computed in float64 Python math in **MindSpore's operation order** (``math.floor(i /
step_per_epoch)``, ``learning_rate * decay_rate ** p``, ``math.e ** x`` rather than
``math.exp(x)``...), so every list is bit-identical to what ``mindspore.nn.<function>`` returns. The
optimizer later stores the list as float32, as MindSpore does.

Common notation: ``i`` is the step index, ``0 <= i < total_step``, and
``current_epoch = floor(i / step_per_epoch)``.

The float32 tensor counterparts (``ExponentialDecayLR`` and friends) live in
:mod:`msoptim.schedules`; the same formula is written twice on purpose, once per precision, because
MindSpore's two APIs differ in precision and each is tested against its own recordings.

Validation follows MindSpore's argument order and exception types (``TypeError`` for a wrong type,
including an ``int`` where a ``float`` is required and a ``bool`` anywhere a number is;
``ValueError`` for a value out of range), with messages that name the function, the argument and the
fix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from msoptim._validate import (
    check_bool,
    check_float,
    check_non_negative_float,
    check_positive_float,
    check_positive_int,
    fail,
)

__all__ = [
    "cosine_decay_lr",
    "exponential_decay_lr",
    "inverse_decay_lr",
    "natural_exp_decay_lr",
    "piecewise_constant_lr",
    "polynomial_decay_lr",
    "warmup_lr",
]


def _current_epoch(step: int, step_per_epoch: int) -> int:
    # MindSpore floors a true division rather than using ``//``; the two agree for every realistic
    # step count, but the float division is what MindSpore evaluates, so it is what we evaluate.
    return math.floor(step / step_per_epoch)


def _check_decay_inputs(
    api: str,
    learning_rate: float,
    decay_rate: float,
    total_step: int,
    step_per_epoch: int,
    decay_epoch: int,
    is_stair: bool,
) -> None:
    # MindSpore's order: the three ints first, then the two floats, then the flag.
    check_positive_int(total_step, "total_step", api)
    check_positive_int(step_per_epoch, "step_per_epoch", api)
    check_positive_int(decay_epoch, "decay_epoch", api)
    check_positive_float(learning_rate, "learning_rate", api)
    check_positive_float(decay_rate, "decay_rate", api)
    check_bool(is_stair, "is_stair", api)


def piecewise_constant_lr(milestone: Sequence[int], learning_rates: Sequence[float]) -> list[float]:
    r"""A piecewise-constant learning rate: ``learning_rates[k]`` until step ``milestone[k]``.

    .. math::
        lr[i] = learning\_rates[k] \quad \text{for } milestone[k-1] \le i < milestone[k],
        \quad milestone[-1] = 0

    The list has ``milestone[-1]`` entries.

    Args:
        milestone: list or tuple of positive ints, non-decreasing: the step at which each learning
            rate stops applying (exclusive).
        learning_rates: list or tuple of Python floats, one per milestone.

    Returns:
        ``list[float]`` of length ``milestone[-1]``.

    Raises:
        TypeError: ``milestone`` or ``learning_rates`` is not a list or tuple; a milestone is not an
            ``int`` (or is a ``bool``); a learning rate is not a ``float`` (an ``int`` included).
        ValueError: the two have different lengths; a milestone is ``<= 0``; a milestone is
            smaller than the one before it; a learning rate is NaN or infinite.

    Example:
        >>> piecewise_constant_lr([2, 5], [0.1, 0.05])
        [0.1, 0.1, 0.05, 0.05, 0.05]
        >>> piecewise_constant_lr([2, 2, 4], [0.1, 0.05, 0.01])  # equal milestones: 0.05 never used
        [0.1, 0.1, 0.01, 0.01]

    Note (MindSpore vs msoptim):
        MindSpore accepts some inputs that look like mistakes, and so do we, so that ported code
        gives the same list: **equal consecutive milestones** (the segment is empty and its learning
        rate never appears), **tuples** for either argument, and **negative learning rates** (only
        the type is checked; a negative lr makes the optimizer ascend), and two **empty** lists
        (the result is ``[]``: no step has a learning rate, and an optimizer given it refuses it).
        NaN or infinite learning rates raise ``ValueError``, as in MindSpore. MindSpore's docstring
        calls the milestones "monotonically increasing"; its check, and ours, only requires them
        to be non-decreasing.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.piecewise_constant_lr.html
    """
    api = "piecewise_constant_lr"
    if not isinstance(milestone, list | tuple):
        fail(
            api,
            "milestone",
            "a list or tuple of ints",
            milestone,
            "E.g. [2, 5, 10].",
            exc=TypeError,
        )
    if not isinstance(learning_rates, list | tuple):
        fail(
            api,
            "learning_rates",
            "a list or tuple of floats",
            learning_rates,
            "E.g. [0.1, 0.05, 0.01].",
            exc=TypeError,
        )
    if len(milestone) != len(learning_rates):
        fail(
            api,
            "learning_rates",
            f"as long as 'milestone' ({len(milestone)} entries)",
            learning_rates,
            f"It has {len(learning_rates)}; give exactly one learning rate per milestone.",
        )
    lrs: list[float] = []
    previous = 0
    for k, (end, rate) in enumerate(zip(milestone, learning_rates)):
        check_positive_int(end, f"milestone[{k}]", api)
        check_float(rate, f"learning_rates[{k}]", api)
        if end < previous:
            fail(
                api,
                "milestone",
                "non-decreasing",
                milestone,
                f"milestone[{k}]={end} is smaller than milestone[{k - 1}]={previous}. Each "
                "milestone is the step where its learning rate stops: sort them increasingly.",
            )
        lrs += [float(rate)] * (end - previous)
        previous = end
    return lrs


def exponential_decay_lr(
    learning_rate: float,
    decay_rate: float,
    total_step: int,
    step_per_epoch: int,
    decay_epoch: int,
    is_stair: bool = False,
) -> list[float]:
    r"""Exponential decay per epoch: ``learning_rate * decay_rate ** (epoch / decay_epoch)``.

    .. math::
        lr[i] = learning\_rate \cdot decay\_rate^{p}, \quad
        p = \frac{current\_epoch}{decay\_epoch} \quad
        \left(p = \left\lfloor \frac{current\_epoch}{decay\_epoch} \right\rfloor
        \text{ if is\_stair}\right)

    Args:
        learning_rate: the initial learning rate, a Python float ``> 0``.
        decay_rate: the factor applied every ``decay_epoch`` epochs, a Python float ``> 0`` (``> 1``
            makes the learning rate grow).
        total_step: the number of steps (the length of the list), an int ``> 0``.
        step_per_epoch: steps per epoch, an int ``> 0``.
        decay_epoch: epochs per factor of ``decay_rate``, an int ``> 0``.
        is_stair: if ``True``, decay in whole steps of ``decay_rate`` every ``decay_epoch`` epochs;
            otherwise decay smoothly from epoch to epoch. Default ``False``.

    Returns:
        ``list[float]`` of length ``total_step``.

    Raises:
        TypeError: an int argument is not an ``int``, a float argument is not a ``float``, or
            ``is_stair`` is not a ``bool``.
        ValueError: an argument is ``<= 0`` (or not finite).

    Example:
        >>> [round(x, 6) for x in exponential_decay_lr(0.1, 0.9, 6, 2, 1)]
        [0.1, 0.1, 0.09, 0.09, 0.081, 0.081]
        >>> [round(x, 6) for x in exponential_decay_lr(0.1, 0.9, 4, 1, 2, is_stair=True)]
        [0.1, 0.1, 0.09, 0.09]

    Note (MindSpore vs torch.optim):
        ``torch.optim.lr_scheduler.ExponentialLR(gamma)`` multiplies once per ``scheduler.step()``;
        here the learning rate is a closed form of the step index, constant within an epoch.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.exponential_decay_lr.html
    """
    _check_decay_inputs(
        "exponential_decay_lr",
        learning_rate,
        decay_rate,
        total_step,
        step_per_epoch,
        decay_epoch,
        is_stair,
    )
    lrs = []
    for i in range(total_step):
        epoch = _current_epoch(i, step_per_epoch)
        p = math.floor(epoch / decay_epoch) if is_stair else epoch / decay_epoch
        lrs.append(learning_rate * decay_rate**p)
    return lrs


def natural_exp_decay_lr(
    learning_rate: float,
    decay_rate: float,
    total_step: int,
    step_per_epoch: int,
    decay_epoch: int,
    is_stair: bool = False,
) -> list[float]:
    r"""Natural-exponential decay per epoch: ``learning_rate * e ** (-decay_rate * current_epoch)``.

    .. math::
        lr[i] = learning\_rate \cdot e^{-decay\_rate \cdot q}, \quad
        q = current\_epoch \quad
        \left(q = \left\lfloor \frac{current\_epoch}{decay\_epoch} \right\rfloor \cdot decay\_epoch
        \text{ if is\_stair}\right)

    Args:
        learning_rate: the initial learning rate, a Python float ``> 0``.
        decay_rate: the decay rate per epoch, a Python float ``> 0``.
        total_step: the number of steps (the length of the list), an int ``> 0``.
        step_per_epoch: steps per epoch, an int ``> 0``.
        decay_epoch: with ``is_stair``, the epochs between two drops, an int ``> 0``. Without
            ``is_stair`` it is validated but **not used** (see the note).
        is_stair: if ``True``, the learning rate drops by ``e ** (-decay_rate * decay_epoch)`` every
            ``decay_epoch`` epochs; otherwise by ``e ** -decay_rate`` every epoch. Default
            ``False``.

    Returns:
        ``list[float]`` of length ``total_step``.

    Raises:
        TypeError: an int argument is not an ``int``, a float argument is not a ``float``, or
            ``is_stair`` is not a ``bool``.
        ValueError: an argument is ``<= 0`` (or not finite).

    Example:
        >>> [round(x, 6) for x in natural_exp_decay_lr(0.1, 0.9, 6, 2, 2)]
        [0.1, 0.1, 0.040657, 0.040657, 0.01653, 0.01653]
        >>> [round(x, 6) for x in natural_exp_decay_lr(0.1, 0.9, 6, 2, 2, is_stair=True)]
        [0.1, 0.1, 0.1, 0.1, 0.01653, 0.01653]

    Note (MindSpore vs torch.optim):
        Without ``is_stair`` MindSpore's code does not divide the epoch by ``decay_epoch`` (its
        docstring says it does); we reproduce the code, so ``decay_epoch`` has no effect there.
        ``e`` is raised with ``math.e ** x`` exactly as MindSpore does, not ``math.exp(x)``, which
        can differ in the last bit.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.natural_exp_decay_lr.html
    """
    _check_decay_inputs(
        "natural_exp_decay_lr",
        learning_rate,
        decay_rate,
        total_step,
        step_per_epoch,
        decay_epoch,
        is_stair,
    )
    lrs = []
    for i in range(total_step):
        epoch = _current_epoch(i, step_per_epoch)
        q = math.floor(epoch / decay_epoch) * decay_epoch if is_stair else epoch
        lrs.append(learning_rate * math.e ** (-decay_rate * q))
    return lrs


def inverse_decay_lr(
    learning_rate: float,
    decay_rate: float,
    total_step: int,
    step_per_epoch: int,
    decay_epoch: int,
    is_stair: bool = False,
) -> list[float]:
    r"""Inverse-time decay per epoch: ``learning_rate / (1 + decay_rate * epoch / decay_epoch)``.

    .. math::
        lr[i] = \frac{learning\_rate}{1 + decay\_rate \cdot current\_epoch / decay\_epoch}
        \quad \left(\frac{learning\_rate}{1 + decay\_rate \cdot
        \lfloor current\_epoch / decay\_epoch \rfloor} \text{ if is\_stair}\right)

    Args:
        learning_rate: the initial learning rate, a Python float ``> 0``.
        decay_rate: the decay rate, a Python float ``> 0``.
        total_step: the number of steps (the length of the list), an int ``> 0``.
        step_per_epoch: steps per epoch, an int ``> 0``.
        decay_epoch: epochs per unit of decay, an int ``> 0``.
        is_stair: if ``True``, decay only every ``decay_epoch`` epochs. Default ``False``.

    Returns:
        ``list[float]`` of length ``total_step``.

    Raises:
        TypeError: an int argument is not an ``int``, a float argument is not a ``float``, or
            ``is_stair`` is not a ``bool``.
        ValueError: an argument is ``<= 0`` (or not finite). ``decay_rate=0.0`` is rejected too, as
            MindSpore rejects it: for a constant learning rate pass a float instead of a list.

    Example:
        >>> [round(x, 6) for x in inverse_decay_lr(0.1, 0.5, 6, 1, 1)]
        [0.1, 0.066667, 0.05, 0.04, 0.033333, 0.028571]
        >>> [round(x, 6) for x in inverse_decay_lr(0.1, 0.5, 6, 2, 2, is_stair=True)]
        [0.1, 0.1, 0.1, 0.1, 0.066667, 0.066667]

    Note (MindSpore vs torch.optim):
        The denominator is evaluated as ``1 + (decay_rate * current_epoch) / decay_epoch``,
        MindSpore's order, which is what makes the floats bit-identical.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.inverse_decay_lr.html
    """
    _check_decay_inputs(
        "inverse_decay_lr",
        learning_rate,
        decay_rate,
        total_step,
        step_per_epoch,
        decay_epoch,
        is_stair,
    )
    lrs = []
    for i in range(total_step):
        epoch = _current_epoch(i, step_per_epoch)
        if is_stair:
            lrs.append(learning_rate / (1 + decay_rate * math.floor(epoch / decay_epoch)))
        else:
            lrs.append(learning_rate / (1 + decay_rate * epoch / decay_epoch))
    return lrs


def cosine_decay_lr(
    min_lr: float, max_lr: float, total_step: int, step_per_epoch: int, decay_epoch: int
) -> list[float]:
    r"""Cosine annealing per epoch from ``max_lr`` down to ``min_lr``, then held at ``min_lr``.

    .. math::
        lr[i] = min\_lr + \frac{max\_lr - min\_lr}{2}
        \left(1 + \cos\left(\pi \cdot \frac{\min(current\_epoch, decay\_epoch)}{decay\_epoch}
        \right)\right)

    Args:
        min_lr: the final learning rate, a Python float ``>= 0``.
        max_lr: the initial learning rate, a Python float ``> min_lr``.
        total_step: the number of steps (the length of the list), an int ``> 0``.
        step_per_epoch: steps per epoch, an int ``> 0``.
        decay_epoch: epochs to go from ``max_lr`` to ``min_lr``, an int ``> 0``.

    Returns:
        ``list[float]`` of length ``total_step``.

    Raises:
        TypeError: ``min_lr`` or ``max_lr`` is not a ``float`` (``0`` included: write ``0.0``), or
            an int argument is not an ``int``.
        ValueError: ``min_lr < 0``, ``max_lr <= 0``, an int argument ``<= 0``, or
            ``min_lr >= max_lr`` (equal values are rejected too, as in MindSpore).

    Example:
        >>> [round(x, 6) for x in cosine_decay_lr(0.0, 1.0, 4, 1, 2)]
        [1.0, 0.5, 0.0, 0.0]
        >>> [round(x, 6) for x in cosine_decay_lr(0.01, 0.1, 6, 2, 2)]
        [0.1, 0.1, 0.055, 0.055, 0.01, 0.01]

    Note (MindSpore vs torch.optim):
        Unlike ``torch.optim.lr_scheduler.CosineAnnealingLR``, whose value keeps following the
        cosine back up after ``T_max``, MindSpore clamps at ``min_lr`` once ``decay_epoch`` epochs
        have
        passed: there are no restarts and no rise.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.cosine_decay_lr.html
    """
    api = "cosine_decay_lr"
    check_non_negative_float(min_lr, "min_lr", api)
    check_positive_float(max_lr, "max_lr", api)
    check_positive_int(total_step, "total_step", api)
    check_positive_int(step_per_epoch, "step_per_epoch", api)
    check_positive_int(decay_epoch, "decay_epoch", api)
    if min_lr >= max_lr:
        fail(
            api,
            "max_lr",
            f"greater than 'min_lr' ({min_lr!r})",
            max_lr,
            "The learning rate anneals from max_lr down to min_lr: swap them, or raise max_lr. "
            "For a constant learning rate pass a float instead of a list.",
        )
    delta = 0.5 * (max_lr - min_lr)
    lrs = []
    for i in range(total_step):
        epoch = min(_current_epoch(i, step_per_epoch), decay_epoch)
        lrs.append(min_lr + delta * (1 + math.cos(math.pi * epoch / decay_epoch)))
    return lrs


def polynomial_decay_lr(
    learning_rate: float,
    end_learning_rate: float,
    total_step: int,
    step_per_epoch: int,
    decay_epoch: int,
    power: float,
    update_decay_epoch: bool = False,
) -> list[float]:
    r"""Polynomial decay per epoch from ``learning_rate`` to ``end_learning_rate``.

    .. math::
        lr[i] = (learning\_rate - end\_learning\_rate)
        \left(1 - \frac{e}{D}\right)^{power} + end\_learning\_rate

    where, without ``update_decay_epoch``, ``e = min(current_epoch, decay_epoch)`` and
    ``D = decay_epoch`` (the learning rate then stays at ``end_learning_rate``); with it,
    ``e = current_epoch`` and ``D = decay_epoch * max(ceil(current_epoch / decay_epoch), 1)`` (the
    horizon grows by ``decay_epoch`` each time it is reached, so the learning rate jumps back up).

    Args:
        learning_rate: the initial learning rate, a Python float ``> 0``.
        end_learning_rate: the final learning rate, a Python float ``>= 0``. It may exceed
            ``learning_rate``, in which case the learning rate grows.
        total_step: the number of steps (the length of the list), an int ``> 0``.
        step_per_epoch: steps per epoch, an int ``> 0``.
        decay_epoch: epochs to reach ``end_learning_rate``, an int ``> 0``.
        power: the exponent of the polynomial, a Python float ``> 0``.
        update_decay_epoch: if ``True``, extend the horizon instead of holding the final value.
            Default ``False``.

    Returns:
        ``list[float]`` of length ``total_step``.

    Raises:
        TypeError: a float argument is not a ``float``, an int argument is not an ``int``, or
            ``update_decay_epoch`` is not a ``bool``.
        ValueError: ``learning_rate <= 0``, ``end_learning_rate < 0``, ``power <= 0``, or an int
            argument ``<= 0``.

    Example:
        >>> [round(x, 6) for x in polynomial_decay_lr(0.1, 0.01, 6, 2, 2, 0.5)]
        [0.1, 0.1, 0.07364, 0.07364, 0.01, 0.01]
        >>> [round(x, 6) for x in polynomial_decay_lr(0.1, 0.01, 6, 1, 2, 1.0, True)]
        [0.1, 0.055, 0.01, 0.0325, 0.01, 0.025]

    Note (MindSpore vs torch.optim):
        ``torch.optim.lr_scheduler.PolynomialLR`` decays to 0; this one decays to
        ``end_learning_rate``, and ``update_decay_epoch`` restarts from a longer horizon.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.polynomial_decay_lr.html
    """
    api = "polynomial_decay_lr"
    check_positive_float(learning_rate, "learning_rate", api)
    check_non_negative_float(end_learning_rate, "end_learning_rate", api)
    check_positive_float(power, "power", api)
    check_positive_int(total_step, "total_step", api)
    check_positive_int(step_per_epoch, "step_per_epoch", api)
    check_positive_int(decay_epoch, "decay_epoch", api)
    check_bool(update_decay_epoch, "update_decay_epoch", api)
    delta = learning_rate - end_learning_rate
    lrs = []
    for i in range(total_step):
        epoch = _current_epoch(i, step_per_epoch)
        if update_decay_epoch:
            horizon = decay_epoch * max(math.ceil(epoch / decay_epoch), 1)
        else:
            horizon, epoch = decay_epoch, min(decay_epoch, epoch)
        lrs.append(delta * (1 - epoch / horizon) ** power + end_learning_rate)
    return lrs


def warmup_lr(
    learning_rate: float, total_step: int, step_per_epoch: int, warmup_epoch: int
) -> list[float]:
    r"""Linear warm-up per epoch from exactly 0 to ``learning_rate``, then held there.

    .. math::
        lr[i] = \frac{learning\_rate \cdot \min(current\_epoch, warmup\_epoch)}{warmup\_epoch}

    Args:
        learning_rate: the learning rate reached after warm-up, a Python float ``>= 0``.
        total_step: the number of steps (the length of the list), an int ``> 0``.
        step_per_epoch: steps per epoch, an int ``> 0``.
        warmup_epoch: epochs of warm-up, an int ``> 0``.

    Returns:
        ``list[float]`` of length ``total_step``.

    Raises:
        TypeError: ``learning_rate`` is not a ``float`` or an int argument is not an ``int``.
        ValueError: ``learning_rate < 0`` or an int argument ``<= 0``.

    Example:
        >>> warmup_lr(0.1, 6, 2, 2)
        [0.0, 0.0, 0.05, 0.05, 0.1, 0.1]
        >>> [round(x, 6) for x in warmup_lr(0.1, 6, 1, 4)]
        [0.0, 0.025, 0.05, 0.075, 0.1, 0.1]

    Note (MindSpore vs torch.optim):
        The warm-up starts at **exactly 0**: every step of the first epoch has learning rate 0.0, so
        those updates change nothing (``torch.optim.lr_scheduler.LinearLR`` starts at
        ``start_factor * lr`` instead). MindSpore checks ``warmup_epoch`` before ``total_step``, and
        so do we.

    References:
        https://www.mindspore.cn/docs/en/master/api_python/nn/mindspore.nn.warmup_lr.html
    """
    api = "warmup_lr"
    check_non_negative_float(learning_rate, "learning_rate", api)
    check_positive_int(warmup_epoch, "warmup_epoch", api)
    check_positive_int(total_step, "total_step", api)
    check_positive_int(step_per_epoch, "step_per_epoch", api)
    lrs = []
    for i in range(total_step):
        epoch = min(warmup_epoch, _current_epoch(i, step_per_epoch))
        lrs.append(learning_rate * epoch / warmup_epoch)
    return lrs
