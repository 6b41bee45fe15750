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
CUDA's ``powf`` may differ from it by an ulp). The norms are ``torch.linalg.vector_norm`` (reference)
and ``torch._foreach_norm`` (foreach): the same bits on CPU; on a DTensor both give the global norm.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from msoptim.kernels._exact import exact_sqrt, float32_constant

__all__ = ["bias_corrections", "lamb_foreach", "lamb_reference"]

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
    beta1, beta2, eps = float32_constant(beta1), float32_constant(beta2), float32_constant(eps)
    one_minus_beta1 = float32_constant(np.float32(1.0) - np.float32(beta1))
    one_minus_beta2 = float32_constant(np.float32(1.0) - np.float32(beta2))
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
    beta1, beta2, eps = float32_constant(beta1), float32_constant(beta2), float32_constant(eps)
    one_minus_beta1 = float32_constant(np.float32(1.0) - np.float32(beta1))
    one_minus_beta2 = float32_constant(np.float32(1.0) - np.float32(beta2))
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
