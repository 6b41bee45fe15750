"""MindSpore ``Lamb`` (the GPU kernel's semantics; MindSpore has no CPU kernel), one step.

With ``t = global_step`` after its increment (1 on the first call), per parameter::

    m <- beta1*m + (1 - beta1)*g;        v <- beta2*v + (1 - beta2)*g*g
    m_hat = m / (1 - beta1^t);           v_hat = v / (1 - beta2^t)
    update = m_hat / (sqrt(v_hat) + eps) + wd*w          # eps outside the sqrt
    g_hat  = m_hat / sqrt(v_hat + eps)   + wd*w          # eps INSIDE the sqrt (MindSpore's choice)
    r1 = ||w||, r2 = ||g_hat||                           # over the whole tensor
    trust = r1 / r2 if r1 > 0 and r2 > 0 else 1;  clipped to [0, 10], NaN -> 0
    w <- w - (trust*lr) * update

``wd`` is 0 for parameters whose decay flag is off. Arithmetic is float32 in the kernel's order; the
powers ``beta^t`` are computed in float64 and rounded once (the correctly rounded float32 value;
CUDA's ``powf`` may differ from it by an ulp). The norms are ``torch.linalg.vector_norm`` (reference, fused)
and ``torch._foreach_norm`` (foreach): on a DTensor both give the global norm.

:func:`lamb_fused` splits the step around the norms: a compiled pass updates the moments and
writes ``g_hat`` (:func:`lamb_moments_update`), the norms and trust ratios are computed for all
parameters at once, and a second compiled pass recomputes ``update`` from the new moments and
applies it (:func:`lamb_param_update`). The same operations in the same order as the reference,
so the same bits (``tests/test_fast_path.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from msoptim.kernels._exact import exact_sqrt, float32_constant
from msoptim.kernels._fused import fused_apply
from msoptim.kernels._workspace import scratch_like

__all__ = [
    "bias_corrections",
    "lamb_foreach",
    "lamb_fused",
    "lamb_moments_update",
    "lamb_param_update",
    "lamb_reference",
]

#: The kernel clips the trust ratio at this value.
TRUST_MAX = 10.0


def bias_corrections(step: Tensor, beta1: float, beta2: float) -> tuple[Tensor, Tensor]:
    """``(1 - beta1^t, 1 - beta2^t)`` as 0-d float32 tensors, for the float32 step ``t``."""
    t = step.to(torch.float64)
    power1 = torch.pow(float(np.float32(beta1)), t).to(torch.float32)
    power2 = torch.pow(float(np.float32(beta2)), t).to(torch.float32)
    return 1.0 - power1, 1.0 - power2


def _trust_ratio(weight_norm: Tensor, g_hat_norm: Tensor) -> Tensor:
    """``r1/r2`` when both norms are > 0, else 1; then clipped to [0, 10] with NaN -> 0."""
    ratio = torch.where(
        weight_norm > 0, torch.where(g_hat_norm > 0, weight_norm / g_hat_norm, 1.0), 1.0
    )
    return torch.where(torch.isnan(ratio) | (ratio < 0), 0.0, torch.clamp(ratio, max=TRUST_MAX))


def _hyper(beta1: float, beta2: float, eps: float) -> dict[str, float]:
    """The hyper-parameters as the kernel holds them: float32 values, ``1 - beta`` in float32."""
    beta1, beta2 = float32_constant(beta1), float32_constant(beta2)
    return {
        "beta1": beta1,
        "beta2": beta2,
        "one_minus_beta1": float32_constant(np.float32(1.0) - np.float32(beta1)),
        "one_minus_beta2": float32_constant(np.float32(1.0) - np.float32(beta2)),
        "eps": float32_constant(eps),
    }


def _trust_ratios(
    weight_norms: list[Tensor], g_hat_norms: list[Tensor], lr: Tensor
) -> Sequence[Tensor]:
    """:func:`_trust_ratio` ``* lr`` of every parameter, in one pass where the dtypes agree
    (element-wise ops: the same bits as one parameter at a time)."""
    dtypes = {t.dtype for t in (*weight_norms, *g_hat_norms)}
    if len(dtypes) > 1:  # stacking would promote: keep each parameter's own precision
        return [_trust_ratio(w, g) * lr for w, g in zip(weight_norms, g_hat_norms)]
    return (_trust_ratio(torch.stack(weight_norms), torch.stack(g_hat_norms)) * lr).unbind()


def lamb_moments_update(
    param: Tensor,
    grad: Tensor,
    m: Tensor,
    v: Tensor,
    g_hat: Tensor,
    correction1: Tensor,
    correction2: Tensor,
    weight_decay: Tensor,
    *,
    beta1: float,
    beta2: float,
    one_minus_beta1: float,
    one_minus_beta2: float,
    eps: float,
    decay: bool,
) -> None:
    """First pass of :func:`lamb_fused`: the moments, and ``g_hat`` (written into ``g_hat``)."""
    m.copy_(m * beta1 + grad * one_minus_beta1)
    v.copy_(v * beta2 + (grad * grad) * one_minus_beta2)
    value = (m / correction1) / exact_sqrt(v / correction2 + eps)
    if decay:
        value = value + param * weight_decay
    g_hat.copy_(value)


def lamb_param_update(
    param: Tensor,
    m: Tensor,
    v: Tensor,
    scale: Tensor,
    correction1: Tensor,
    correction2: Tensor,
    weight_decay: Tensor,
    *,
    eps: float,
    decay: bool,
) -> None:
    """Second pass of :func:`lamb_fused`: ``w -= update * scale`` (``scale``: trust ratio × lr)."""
    update = (m / correction1) / (exact_sqrt(v / correction2) + eps)
    if decay:
        update = update + param * weight_decay
    param.sub_(update * scale)


def lamb_fused(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    lr: Tensor,
    step: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float | Tensor,
    decay_flags: list[bool],
) -> None:
    """:func:`lamb_reference` in two compiled passes around the norms (bit-identical).

    Tensor subclasses (a DTensor's norm is a collective) take the reference path.
    """
    if not params:
        return
    if any(type(t) not in (Tensor, torch.nn.Parameter) for t in (*params, *grads)):
        lamb_reference(
            params, grads, exp_avgs, exp_avg_sqs, lr=lr, step=step, beta1=beta1, beta2=beta2,
            eps=eps, weight_decay=weight_decay, decay_flags=decay_flags,
        )  # fmt: skip
        return
    constants = _hyper(beta1, beta2, eps)
    beta1, beta2, eps = constants["beta1"], constants["beta2"], constants["eps"]
    correction1, correction2 = bias_corrections(step, beta1, beta2)
    if not isinstance(weight_decay, Tensor):
        weight_decay = torch.full((), weight_decay, dtype=torch.float32, device=params[0].device)
    g_hats = scratch_like(params, exp_avgs[0])
    shared = (correction1, correction2, weight_decay)
    subsets = [
        [i for i, flag in enumerate(decay_flags) if flag == decay] for decay in (True, False)
    ]
    for decay, indices in zip((True, False), subsets):
        if indices:
            lists = [
                [items[i] for i in indices]
                for items in (params, grads, exp_avgs, exp_avg_sqs, g_hats)
            ]
            fused_apply(lamb_moments_update, lists, shared, decay=decay, **constants)
    # torch.linalg.vector_norm as the reference: _foreach_norm sums a large tensor in another
    # order on 2+ threads (an ulp apart).
    norms = (
        [torch.linalg.vector_norm(t) for t in params],
        [torch.linalg.vector_norm(t) for t in g_hats],
    )
    scales = _trust_ratios(*norms, lr)
    for decay, indices in zip((True, False), subsets):
        if indices:
            lists = [[items[i] for i in indices] for items in (params, exp_avgs, exp_avg_sqs)]
            fused_apply(
                lamb_param_update,
                lists,
                shared,
                per_parameter=([scales[i] for i in indices],),
                decay=decay,
                eps=eps,
            )


def lamb_reference(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    lr: Tensor,
    step: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float | Tensor,
    decay_flags: list[bool],
) -> None:
    """Per-tensor loop in the kernel's op order (see the module docstring).

    Args:
        params, grads: parameters and gradients (gradient centralization already applied).
        exp_avgs, exp_avg_sqs: ``lamb_m`` and ``lamb_v``.
        lr: 0-d float32 tensor, the group's lr for this step.
        step: 0-d float32 tensor ``t`` (``global_step`` after the increment).
        beta1, beta2, eps: the hyper-parameters (rounded to float32 here).
        weight_decay: the group's weight decay (a float, or a 0-d tensor from a schedule).
        decay_flags: per parameter, whether ``weight_decay`` applies.
    """
    beta1, beta2, one_minus_beta1, one_minus_beta2, eps = _hyper(beta1, beta2, eps).values()
    correction1, correction2 = bias_corrections(step, beta1, beta2)
    for param, grad, m, v, decay in zip(params, grads, exp_avgs, exp_avg_sqs, decay_flags):
        m.copy_(m * beta1 + grad * one_minus_beta1)
        v.copy_(v * beta2 + (grad * grad) * one_minus_beta2)
        m_hat = m / correction1
        v_hat = v / correction2
        g_hat = m_hat / exact_sqrt(v_hat + eps)
        update = m_hat / (exact_sqrt(v_hat) + eps)
        if decay:
            decay_term = param * weight_decay
            g_hat = g_hat + decay_term
            update = update + decay_term
        trust = _trust_ratio(torch.linalg.vector_norm(param), torch.linalg.vector_norm(g_hat))
        param.sub_(update * (trust * lr))


def lamb_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    lr: Tensor,
    step: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float | Tensor,
    decay_flags: list[bool],
) -> None:
    """:func:`lamb_reference` with ``torch._foreach_*`` ops (bit-identical on CPU)."""
    if not params:
        return
    beta1, beta2, one_minus_beta1, one_minus_beta2, eps = _hyper(beta1, beta2, eps).values()
    correction1, correction2 = bias_corrections(step, beta1, beta2)

    torch._foreach_mul_(exp_avgs, beta1)
    torch._foreach_add_(exp_avgs, torch._foreach_mul(grads, one_minus_beta1))
    squares = torch._foreach_mul(grads, grads)
    torch._foreach_mul_(squares, one_minus_beta2)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_add_(exp_avg_sqs, squares)

    m_hats = torch._foreach_div(exp_avgs, correction1)
    v_hats = torch._foreach_div(exp_avg_sqs, correction2)
    g_hats = torch._foreach_div(m_hats, [exact_sqrt(x) for x in torch._foreach_add(v_hats, eps)])
    denominators = [exact_sqrt(x) for x in v_hats]
    torch._foreach_add_(denominators, eps)
    updates = torch._foreach_div(m_hats, denominators)

    decayed = [i for i, flag in enumerate(decay_flags) if flag]
    if decayed:
        terms = torch._foreach_mul([params[i] for i in decayed], weight_decay)
        torch._foreach_add_([g_hats[i] for i in decayed], terms)
        torch._foreach_add_([updates[i] for i in decayed], terms)

    weight_norms = torch._foreach_norm(params)
    g_hat_norms = torch._foreach_norm(g_hats)
    scales = [_trust_ratio(w, g) * lr for w, g in zip(weight_norms, g_hat_norms)]
    torch._foreach_mul_(updates, scales)
    torch._foreach_sub_(params, updates)
