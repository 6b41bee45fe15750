"""MindSpore ``LARSUpdate``: the layer-wise rescaled gradient that ``nn.LARS`` feeds its optimizer.

Per parameter (``wd`` is 0 when the parameter's decay flag is off)::

    coeff = coefficient * ||w|| / ((wd * ||w|| + ||g||) + epsilon)
    use_clip:  coeff = max(min(coeff / lr, 1), 0)
    g_new = (w * wd + g) * coeff

in the op order of the Ascend kernel (``LarsV2Update``: ``vmul``/``vadd``/``vadds``/``vdiv``, then
``vmins``/``vmaxs`` for the clip). MindSpore 2.10 has no CPU or GPU kernel for it, and its docstring
never says where ``epsilon`` goes; the placement above is the Ascend kernel's and the one the older
MindSpore docstring gives. Unlike the update kernels, these functions return the new gradients (the
inputs are left untouched: they are the user's ``.grad`` tensors). Norms are over the whole tensor
(``torch.linalg.vector_norm`` / ``torch._foreach_norm``: the global norm for a DTensor).

:func:`lars_fused` computes the norms as the reference does, every coefficient in one pass, and
the rescaled gradients with one compiled kernel per tensor (:func:`lars_scale_update`): the same
operations, the same bits. Around a fused ``Momentum`` on CPU, the rescaling moves into the
momentum kernel instead (:func:`lars_momentum_fused`): the rescaled gradient stays in registers,
which saves writing it and reading it back (3 of the 10 floats a parameter moved per step).
"""

from __future__ import annotations

import torch
from torch import Tensor

from msoptim.kernels._fused import fused_apply, plain_float32
from msoptim.kernels._workspace import scratch_like
from msoptim.kernels.momentum import momentum_update

__all__ = [
    "lars_coefficients",
    "lars_foreach",
    "lars_fused",
    "lars_momentum_fused",
    "lars_momentum_update",
    "lars_reference",
    "lars_scale_update",
]


def _coefficient(
    weight_norm: Tensor,
    grad_norm: Tensor,
    weight_decay: float | Tensor,
    lr: Tensor | None,
    *,
    epsilon: float,
    coefficient: float,
    use_clip: bool,
) -> Tensor:
    local = (weight_norm * coefficient) / ((weight_norm * weight_decay + grad_norm) + epsilon)
    if use_clip:
        assert lr is not None
        local = torch.clamp(torch.clamp(local / lr, max=1.0), min=0.0)
    return local


def _rescaled(param: Tensor, grad: Tensor, weight_decay: float | Tensor, local: Tensor) -> Tensor:
    """``(w * wd + g) * coeff``, in this order on every path (the bits depend on it)."""
    return (param * weight_decay + grad) * local


def lars_reference(
    params: list[Tensor],
    grads: list[Tensor],
    *,
    weight_decays: list[float] | list[Tensor],
    lrs: list[Tensor] | None,
    epsilon: float,
    coefficient: float,
    use_clip: bool,
) -> list[Tensor]:
    """Per-tensor loop; returns the new gradients, aligned with ``grads``.

    Args:
        params, grads: the LARS-flagged parameters and their (already unscaled) gradients.
        weight_decays: per parameter, the weight decay (0.0 where the decay flag is off).
        lrs: per parameter, the lr of this step (only read with ``use_clip``).
        epsilon, coefficient, use_clip: LARS's arguments.
    """
    result = []
    for index, (param, grad) in enumerate(zip(params, grads)):
        weight_decay = weight_decays[index]
        local = _coefficient(
            torch.linalg.vector_norm(param),
            torch.linalg.vector_norm(grad),
            weight_decay,
            None if lrs is None else lrs[index],
            epsilon=epsilon,
            coefficient=coefficient,
            use_clip=use_clip,
        )
        result.append(_rescaled(param, grad, weight_decay, local))
    return result


def lars_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    *,
    weight_decays: list[float] | list[Tensor],
    lrs: list[Tensor] | None,
    epsilon: float,
    coefficient: float,
    use_clip: bool,
) -> list[Tensor]:
    """:func:`lars_reference` with ``torch._foreach_*`` ops (bit-identical on CPU)."""
    if not params:
        return []
    weight_norms = torch._foreach_norm(params)
    grad_norms = torch._foreach_norm(grads)
    locals_ = [
        _coefficient(
            weight_norm,
            grad_norm,
            weight_decays[index],
            None if lrs is None else lrs[index],
            epsilon=epsilon,
            coefficient=coefficient,
            use_clip=use_clip,
        )
        for index, (weight_norm, grad_norm) in enumerate(zip(weight_norms, grad_norms))
    ]
    result = torch._foreach_mul(params, weight_decays)
    torch._foreach_add_(result, grads)
    torch._foreach_mul_(result, locals_)
    return result


def lars_scale_update(
    out: Tensor, param: Tensor, grad: Tensor, weight_decay: Tensor, local: Tensor
) -> None:
    """``out = (w * wd + g) * coeff`` for one parameter (the fused path's compiled kernel)."""
    out.copy_(_rescaled(param, grad, weight_decay, local))


def lars_coefficients(
    params: list[Tensor],
    grads: list[Tensor],
    *,
    weight_decays: list[float] | list[Tensor],
    lrs: list[Tensor] | None,
    epsilon: float,
    coefficient: float,
    use_clip: bool,
) -> tuple[Tensor, Tensor]:
    """Every parameter's weight decay and local rate, stacked (1-D float32): the norms as the
    reference computes them, the coefficients element-wise over all parameters at once (the same
    float32 operations as one at a time)."""
    device = params[0].device
    decays = torch.stack(
        [torch.as_tensor(v, dtype=torch.float32, device=device) for v in weight_decays]
    )
    locals_ = _coefficient(
        torch.stack([torch.linalg.vector_norm(p) for p in params]),
        torch.stack([torch.linalg.vector_norm(g) for g in grads]),
        decays,
        None if lrs is None else torch.stack([lr.reshape(()).to(torch.float32) for lr in lrs]),
        epsilon=epsilon,
        coefficient=coefficient,
        use_clip=use_clip,
    )
    return decays, locals_


def lars_fused(
    params: list[Tensor],
    grads: list[Tensor],
    *,
    weight_decays: list[float] | list[Tensor],
    lrs: list[Tensor] | None,
    epsilon: float,
    coefficient: float,
    use_clip: bool,
    owner: Tensor,
) -> list[Tensor]:
    """:func:`lars_reference` with the rescaling compiled (bit-identical).

    The results are carved out of a buffer kept for ``owner`` (a tensor that lives as long as the
    optimizer) and are overwritten by the next call: the wrapped optimizer consumes them first.
    Anything but plain float32 tensors takes the reference path.
    """
    if not params:
        return []
    if not all(map(plain_float32, (*params, *grads))):
        return lars_reference(
            params, grads, weight_decays=weight_decays, lrs=lrs, epsilon=epsilon,
            coefficient=coefficient, use_clip=use_clip,
        )  # fmt: skip
    decays, locals_ = lars_coefficients(
        params, grads, weight_decays=weight_decays, lrs=lrs, epsilon=epsilon,
        coefficient=coefficient, use_clip=use_clip,
    )  # fmt: skip
    outs = scratch_like(params, owner)
    fused_apply(
        lars_scale_update, (outs, params, grads), per_parameter=(decays.unbind(), locals_.unbind())
    )
    return outs


def lars_momentum_update(
    param: Tensor,
    grad: Tensor,
    moment: Tensor,
    weight_decay: Tensor,
    local: Tensor,
    lr: Tensor,
    *,
    momentum: float,
    nesterov: bool,
) -> None:
    """:func:`lars_scale_update`, then Momentum's update with the rescaled gradient (one pass)."""
    rescaled = _rescaled(param, grad, weight_decay, local)
    momentum_update(param, rescaled, moment, lr, momentum=momentum, nesterov=nesterov)


def lars_momentum_fused(
    params: list[Tensor],
    grads: list[Tensor],
    moments: list[Tensor],
    weight_decays: list[Tensor],
    locals_: list[Tensor],
    *,
    lr: Tensor,
    momentum: float,
    nesterov: bool,
) -> None:
    """:func:`lars_momentum_update` compiled for every parameter (per-parameter 0-d
    ``weight_decays`` and ``locals_`` from :func:`lars_coefficients`); bit-identical to rescaling
    first and running Momentum's kernel on the result."""
    fused_apply(
        lars_momentum_update,
        (params, grads, moments),
        (lr,),
        per_parameter=(weight_decays, locals_),
        momentum=momentum,
        nesterov=nesterov,
    )
