"""MindSpore ``nn.ASGD`` update, per parameter (``t`` = ``global_step`` after the increment)::

    eta = lr                                  if t == 1
    w   = w * (1 - lambd * eta) - eta * g
    ax  = ax + (w - ax) * mu   if mu != 1,   else ax = w
    eta = lr / (1 + lambd * lr * t) ** alpha
    mu  = 1 / max(1, t - t0)

MindSpore writes this with float32 tensor ops (one rounding each; float16/bfloat16 parameters are
computed in float32 and cast back, ``ax`` is accumulated in its own dtype); the power is C
``powf``, as MindSpore's ``Pow`` kernel computes it (:mod:`msoptim._powf`). Both branches are
tensor ops (``torch.where``), so a step has no host synchronisation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim._powf import powf
from msoptim.kernels._exact import exact_reciprocal, float32_constant
from msoptim.kernels._fused import fused_apply

__all__ = ["asgd_foreach", "asgd_fused", "asgd_reference", "asgd_update"]


def _compute(t: Tensor) -> Tensor:
    """MindSpore's ``cast(x, float32)`` for half types; float32 (and float64) stay as they are."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _schedules(
    lr: Tensor, step: Tensor, lambd: float, alpha: float, t0: float
) -> tuple[Tensor, Tensor]:
    """This step's new ``eta`` and ``mu`` (the same for every parameter of a group)."""
    t = step.to(lr.dtype)
    base = (lr * lambd) * t + 1.0
    eta = lr / powf(base, alpha)
    mu = exact_reciprocal(torch.clamp_min(t - t0, 1.0))
    return eta, mu


def asgd_update(
    param: Tensor,
    grad: Tensor,
    ax: Tensor,
    mu: Tensor,
    eta: Tensor,
    lr: Tensor,
    first: Tensor,
    new_eta: Tensor,
    new_mu: Tensor,
    *,
    lambd: float,
) -> None:
    """One parameter's update (``mu``, ``eta``: its 0-d state; ``first``: ``step == 1``)."""
    eta.copy_(torch.where(first, lr, eta))
    value = _compute(param) * (1.0 - lambd * eta) - eta * _compute(grad)
    param.copy_(value)
    averaged = ax + ((value - _compute(ax)) * mu).to(ax.dtype)
    ax.copy_(torch.where(mu != 1.0, averaged, param))
    eta.copy_(new_eta)
    mu.copy_(new_mu)


def asgd_reference(
    params: list[Tensor],
    grads: list[Tensor],
    mus: list[Tensor],
    etas: list[Tensor],
    axs: list[Tensor],
    *,
    lr: Tensor,
    step: Tensor,
    lambd: float,
    alpha: float,
    t0: float,
) -> None:
    """Per-tensor loop of :func:`asgd_update` (the ground truth).

    ``step`` is the 0-d integer ``global_step`` after this step's increment.
    """
    lambd, alpha, t0 = float32_constant(lambd), float32_constant(alpha), float32_constant(t0)
    first = step == 1
    new_eta, new_mu = _schedules(lr, step, lambd, alpha, t0)
    for param, grad, mu, eta, ax in zip(params, grads, mus, etas, axs):
        asgd_update(param, grad, ax, mu, eta, lr, first, new_eta, new_mu, lambd=lambd)


def asgd_fused(
    params: list[Tensor],
    grads: list[Tensor],
    mus: list[Tensor],
    etas: list[Tensor],
    axs: list[Tensor],
    *,
    lr: Tensor,
    step: Tensor,
    lambd: float,
    alpha: float,
    t0: float,
) -> None:
    """:func:`asgd_update` compiled (see :mod:`msoptim.kernels._fused`; bit-identical)."""
    lambd, alpha, t0 = float32_constant(lambd), float32_constant(alpha), float32_constant(t0)
    first = step == 1
    new_eta, new_mu = _schedules(lr, step, lambd, alpha, t0)
    fused_apply(
        asgd_update,
        (params, grads, axs),
        (lr, first, new_eta, new_mu),
        per_parameter=(mus, etas),
        lambd=lambd,
    )


def asgd_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    mus: list[Tensor],
    etas: list[Tensor],
    axs: list[Tensor],
    *,
    lr: Tensor,
    step: Tensor,
    lambd: float,
    alpha: float,
    t0: float,
) -> None:
    """:func:`asgd_reference` with ``torch._foreach_*`` ops (bit-identical)."""
    lambd, alpha, t0 = float32_constant(lambd), float32_constant(alpha), float32_constant(t0)
    first = step == 1
    new_eta, new_mu = _schedules(lr, step, lambd, alpha, t0)
    for eta in etas:
        eta.copy_(torch.where(first, lr, eta))
    keeps = torch._foreach_mul(etas, lambd)
    torch._foreach_neg_(keeps)
    torch._foreach_add_(keeps, 1.0)
    values = torch._foreach_mul([_compute(p) for p in params], keeps)
    torch._foreach_sub_(values, torch._foreach_mul(etas, [_compute(g) for g in grads]))
    for param, value in zip(params, values):
        param.copy_(value)
    averaged = torch._foreach_sub(values, [_compute(ax) for ax in axs])
    torch._foreach_mul_(averaged, mus)
    averaged = torch._foreach_add(axs, [a.to(ax.dtype) for a, ax in zip(averaged, axs)])
    for ax, mu, param, value in zip(axs, mus, params, averaged):
        ax.copy_(torch.where(mu != 1.0, value, param))
    for eta, mu in zip(etas, mus):
        eta.copy_(new_eta)
        mu.copy_(new_mu)
