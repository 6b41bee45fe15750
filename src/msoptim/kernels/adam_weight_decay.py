"""MindSpore ``AdamWeightDecay`` kernel: Adam without bias correction, with decoupled weight decay.

.. code-block:: text

    m ← m + (g − m)(1 − β1)
    v ← v + (g·g − v)(1 − β2)
    w ← w − lr · (m / (√v + ε) + wd · w)          (wd = 0 for parameters that do not decay)

Precision, fitted bit for bit to MindSpore 2.10 CPU recordings (every AdamWeightDecay case): the
CPU kernel is compiled C in which the compiler fuses multiply-adds, and its ``sqrt`` is the C
double one, so

* ``m ← fma(g − m, 1 − β1, m)`` and ``v ← fma(fma(g, g, −v), 1 − β2, v)`` (one rounding each, on
  float32 ``g − m`` and ``1 − β``), emulated exactly by
  :func:`~msoptim.kernels.adam.fused_multiply_add`;
* the parameter update is evaluated in float64 from the float32 ``w``, ``m``, ``v``, ``lr``,
  ``ε`` and the float32 product ``wd · w`` (C: ``decay * var[i]`` is a float product before it
  meets the double ratio), rounded once to float32; fitted to 20,000 elements of MindSpore's
  ``AdamWeightDecay`` run on vector blocks and scalar remainders: bit for bit.

A plain float32 port drifts by up to about 1.5e-6 relative after ten steps. One residual source of
difference remains: torch's CPU float64 ``sqrt`` (MKL) is faithful rather than correctly rounded,
which can move the final float32 rounding by one ulp in about one element-step per billion.

:func:`adam_weight_decay_foreach` runs the same element-wise arithmetic over concatenated tensors
(:func:`msoptim.kernels.apply_concatenated`; bit-identical to :func:`adam_weight_decay_reference`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from msoptim.kernels import _triton, apply_concatenated
from msoptim.kernels._fused import fused_apply
from msoptim.kernels.adam import fused_multiply_add, local_tensors

__all__ = [
    "adam_weight_decay_foreach",
    "adam_weight_decay_fused",
    "adam_weight_decay_reference",
    "adam_weight_decay_update",
]


def _one_minus(beta: float) -> float:
    """``1 − β`` in float32, as the C kernel computes it (β is a float32 value)."""
    return float(np.float32(1.0) - np.float32(beta))


def _math(
    w: Tensor,
    g: Tensor,
    m: Tensor,
    v: Tensor,
    *,
    lr: Tensor,
    beta1c: float,
    beta2c: float,
    eps: float,
    weight_decay: Tensor | float,
) -> tuple[Tensor, Tensor, Tensor]:
    """One step on flat tensors; returns the new ``(w, m, v)``."""
    m = fused_multiply_add(g - m, beta1c, m)
    v = fused_multiply_add(fused_multiply_add(g, g, -v), beta2c, v)
    update = m.double() / (torch.sqrt(v.double()) + eps) + (w * weight_decay).double()
    return (w.double() - lr.double() * update).to(w.dtype), m, v


def adam_weight_decay_update(
    param: Tensor,
    grad: Tensor,
    m: Tensor,
    v: Tensor,
    lr: Tensor,
    weight_decay: Tensor | float,
    *,
    beta1c: float,
    beta2c: float,
    eps: float,
) -> None:
    """One parameter's step (``beta1c``/``beta2c``: ``1 − β`` in float32)."""
    new_w, new_m, new_v = _math(
        param.reshape(-1),
        grad.reshape(-1),
        m.reshape(-1),
        v.reshape(-1),
        lr=lr,
        beta1c=beta1c,
        beta2c=beta2c,
        eps=eps,
        weight_decay=weight_decay,
    )
    m.copy_(new_m.view(m.shape))
    v.copy_(new_v.view(v.shape))
    param.copy_(new_w.view(param.shape))


def adam_weight_decay_reference(
    params: list[Tensor],
    grads: list[Tensor],
    adam_m: list[Tensor],
    adam_v: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: Tensor | float,
) -> None:
    """Per-tensor loop of :func:`adam_weight_decay_update` (the ground truth).

    Args:
        params, grads, adam_m, adam_v: aligned lists; updated in place.
        lr: the group's lr, a 0-d float32 tensor.
        beta1, beta2, eps: float32 values as Python floats.
        weight_decay: the decay of these parameters (a float32 value or a 0-d float32 tensor;
            0.0 for parameters whose decay flag is off).
    """
    params, grads, adam_m, adam_v = (local_tensors(t) for t in (params, grads, adam_m, adam_v))
    beta1c, beta2c = _one_minus(beta1), _one_minus(beta2)
    for param, grad, m, v in zip(params, grads, adam_m, adam_v):
        adam_weight_decay_update(
            param, grad, m, v, lr, weight_decay, beta1c=beta1c, beta2c=beta2c, eps=eps
        )


def adam_weight_decay_fused(
    params: list[Tensor],
    grads: list[Tensor],
    adam_m: list[Tensor],
    adam_v: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: Tensor | float,
) -> None:
    """:func:`adam_weight_decay_update` compiled (see :mod:`msoptim.kernels._fused`).

    The weight decay goes in as a 0-d float32 tensor (the float32 value it holds), so decayed
    and undecayed parameters, and a scheduled decay, share one compiled kernel. On CUDA the
    update is one multi-tensor launch (:mod:`msoptim.kernels._triton`).
    """
    params, grads, adam_m, adam_v = (local_tensors(t) for t in (params, grads, adam_m, adam_v))
    if not params:
        return
    if not isinstance(weight_decay, Tensor):
        weight_decay = torch.full((), weight_decay, dtype=torch.float32, device=params[0].device)
    beta1c, beta2c = _one_minus(beta1), _one_minus(beta2)
    lists = (params, grads, adam_m, adam_v)
    if _triton.available(params) and _triton.adam_weight_decay(
        lists, lr, weight_decay, beta1c=beta1c, beta2c=beta2c, eps=eps
    ):
        return
    fused_apply(
        adam_weight_decay_update,
        (params, grads, adam_m, adam_v),
        (lr, weight_decay),
        beta1c=_one_minus(beta1),
        beta2c=_one_minus(beta2),
        eps=eps,
    )


def adam_weight_decay_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    adam_m: list[Tensor],
    adam_v: list[Tensor],
    *,
    lr: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: Tensor | float,
) -> None:
    """Multi-tensor form of :func:`adam_weight_decay_reference` (bit-identical)."""
    params, grads, adam_m, adam_v = (local_tensors(t) for t in (params, grads, adam_m, adam_v))
    apply_concatenated(
        adam_weight_decay_update,
        (params, grads, adam_m, adam_v),
        (0, 2, 3),
        lr,
        weight_decay,
        beta1c=_one_minus(beta1),
        beta2c=_one_minus(beta2),
        eps=eps,
    )
