"""MindSpore ``LARSUpdate``: the layer-wise rescaled gradient that ``nn.LARS`` feeds its optimizer.

Per parameter (``wd`` is 0 when the parameter's decay flag is off)::

    coeff = coefficient * ||w|| / ((wd * ||w|| + ||g||) + epsilon)
    use_clip:  coeff = max(min(coeff / lr, 1), 0)
    g_new = (w * wd + g) * coeff

in the op order of the Ascend kernel (``LarsV2Update``: ``vmul``/``vadd``/``vadds``/``vdiv``, then
``vmins``/``vmaxs`` for the clip). MindSpore 2.10 has no CPU or GPU kernel for it, and its docstring
never says where ``epsilon`` goes; the placement above is the Ascend kernel's and the one the older
MindSpore docstring gives. Unlike the update kernels, these functions return the new gradients (the
inputs are left untouched: they are the user's ``.grad`` tensors). Norms are over the whole tensor,
:func:`msoptim.kernels._norms.tensor_norm` (float64 sums of the squares rounded once after the
square root, as Lamb's: every path gives the same bits; the global norm for a DTensor).

:func:`lars_momentum_step` is the fast path around a fused ``Momentum`` on CPU: the C kernel
``lars_native.c`` (built on first use, :mod:`msoptim.kernels._native`) visits each parameter
once: the two sums of squares, the local rate, then Momentum's update with the rescaled gradient
while ``w`` and ``g`` are still in cache (the other paths read them from memory twice, for the
norms and for the update, and :func:`lars_fused` writes the rescaled gradient and reads it back).
:func:`lars_fused` (any other wrapped optimizer) writes the rescaled gradients with the same C
kernel, or computes the norms as the reference does and rescales with one compiled kernel per
tensor (:func:`lars_scale_update`). Without a C compiler, :func:`lars_momentum_step` rescales
inside Momentum's compiled kernel (:func:`lars_momentum_fused`). With no ``fused``/``foreach``
asked for, on CPU, the C kernel runs too, with the reference (not the compiled kernels) for what
it does not take (:func:`lars_native_or_reference`). The same operations everywhere, the same
bits.
"""

from __future__ import annotations

import ctypes
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from msoptim.kernels import _native, pick_lists
from msoptim.kernels._fused import fused_apply, plain_float32
from msoptim.kernels._norms import tensor_norm
from msoptim.kernels._workspace import scratch_like
from msoptim.kernels.momentum import momentum_reference, momentum_update

__all__ = [
    "Rescaling",
    "lars_coefficients",
    "lars_foreach",
    "lars_fused",
    "lars_momentum_fused",
    "lars_momentum_step",
    "lars_momentum_update",
    "lars_native_or_reference",
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
            tensor_norm(param),
            tensor_norm(grad),
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
    norms = torch._foreach_norm([*params, *grads], 2, dtype=torch.float64)
    weight_norms = [norm.to(p.dtype) for norm, p in zip(norms, params)]
    grad_norms = [norm.to(g.dtype) for norm, g in zip(norms[len(params) :], grads)]
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
        torch.stack([tensor_norm(p) for p in params]),
        torch.stack([tensor_norm(g) for g in grads]),
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
    """:func:`lars_reference`'s rescaled gradients, bit for bit, one visit per parameter.

    Plain contiguous float32 CPU tensors run the C kernel (norms and rescaling while the tensors
    are in cache); other plain float32 tensors compute the norms as the reference does and
    rescale with a compiled kernel per tensor. The results are carved out of a buffer kept for
    ``owner`` (a tensor that lives as long as the optimizer) and are overwritten by the next call:
    the wrapped optimizer consumes them first. Anything else takes the reference path.
    """
    arguments = {
        "weight_decays": weight_decays, "lrs": lrs, "epsilon": epsilon,
        "coefficient": coefficient, "use_clip": use_clip,
    }  # fmt: skip
    return _rescaled_fast(params, grads, arguments, owner, compile_rest=True)


def lars_native_or_reference(
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
    """LARS's default on CPU (no ``fused``/``foreach`` asked for): :func:`lars_fused` with
    :func:`lars_reference` for what the C kernel does not take (nothing to compile); the
    reference's bits either way."""
    arguments = {
        "weight_decays": weight_decays, "lrs": lrs, "epsilon": epsilon,
        "coefficient": coefficient, "use_clip": use_clip,
    }  # fmt: skip
    return _rescaled_fast(params, grads, arguments, owner, compile_rest=False)


def _rescaled_fast(
    params: list[Tensor],
    grads: list[Tensor],
    arguments: dict[str, Any],
    owner: Tensor,
    *,
    compile_rest: bool,
) -> list[Tensor]:
    """The C kernel where it runs; the rest compiled (``compile_rest``) or the reference."""
    if not params:
        return []
    tracing = torch.compiler.is_compiling()  # the C kernel cannot be traced: nothing to set up
    if not all(map(plain_float32, (*params, *grads))) or (tracing and not compile_rest):
        return lars_reference(params, grads, **arguments)
    outs = scratch_like(params, owner)
    native = _native_indices(params, grads, outs)
    if native:
        _native_step(_MODE_RESCALE, pick_lists((params, grads, outs), native), native, **arguments)
    rest = _others(len(params), native)
    if not rest:
        return outs
    chosen = pick_lists((params, grads, outs), rest)
    if compile_rest:
        decays, locals_ = lars_coefficients(*chosen[:2], **_picked(arguments, rest))
        fused_apply(
            lars_scale_update, (chosen[2], *chosen[:2]),
            per_parameter=(decays.unbind(), locals_.unbind()),
        )  # fmt: skip
        return outs
    for i, grad in zip(rest, lars_reference(*chosen[:2], **_picked(arguments, rest))):
        outs[i] = grad
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


class Rescaling(NamedTuple):
    """What a wrapping LARS hands its Momentum (fused, or by default on CPU) for one step
    (:func:`lars_momentum_step` runs it inside Momentum's update): per parameter id, the weight
    decay and the lr the clip divides by (None without ``use_clip``); and LARS's settings."""

    by_param: dict[int, tuple[float | Tensor, Tensor | None]]
    epsilon: float
    coefficient: float
    use_clip: bool
    #: What the C kernel does not take: compiled (``fused=True``) or the reference (the default).
    compile_rest: bool = True


def lars_momentum_step(
    params: list[Tensor],
    grads: list[Tensor],
    moments: list[Tensor],
    rescaling: Rescaling,
    *,
    lr: Tensor,
    momentum: float,
    nesterov: bool,
) -> None:
    """LARS's rescaling, then Momentum's update with the rescaled gradients, for the parameters
    ``rescaling`` names: :func:`lars_coefficients` then :func:`lars_momentum_update`, bit for bit.

    Plain contiguous float32 CPU tensors run the C kernel (one visit per parameter: the norms,
    then the update from cache); the others, and every parameter when the kernel cannot be built,
    the two compiled steps (``rescaling.compile_rest``) or the reference's two steps.
    """
    decays, clip_lrs = zip(*map(rescaling.by_param.__getitem__, map(id, params)))
    arguments = {
        "weight_decays": list(decays),
        "lrs": list(clip_lrs) if rescaling.use_clip else None,
        "epsilon": rescaling.epsilon,
        "coefficient": rescaling.coefficient,
        "use_clip": rescaling.use_clip,
    }
    hyper = {"momentum": momentum, "nesterov": nesterov}
    native = _native_indices(params, grads, moments) if _native.plain_float32_scalar(lr) else []
    if native:
        _native_step(
            _MODE_MOMENTUM, pick_lists((params, grads, moments), native), native, lr=lr,
            **hyper, **arguments,
        )  # fmt: skip
    rest = _others(len(params), native)
    if rest and rescaling.compile_rest:
        chosen = pick_lists((params, grads, moments), rest)
        decay_values, locals_ = lars_coefficients(*chosen[:2], **_picked(arguments, rest))
        lars_momentum_fused(
            *chosen, list(decay_values.unbind()), list(locals_.unbind()), lr=lr, **hyper
        )
    elif rest:
        chosen = pick_lists((params, grads, moments), rest)
        rescaled = lars_reference(*chosen[:2], **_picked(arguments, rest))
        momentum_reference(chosen[0], rescaled, chosen[2], lr=lr, **hyper)


# ------------------------------------------------------------------ the C kernel

_MODE_MOMENTUM, _MODE_RESCALE = 0, 1
#: The C kernel splits a parameter of at least this many elements among all threads (its
#: ``TEAM_MIN_NUMEL``); the table lists those first, which largest-first order does.
#: Extra compiler flags of the C kernel (tests build a variant that splits small tensors too).
NATIVE_FLAGS: tuple[str, ...] = ()
#: Run the C kernel's threads as torch's OpenMP workers where torch has an OpenMP runtime (tests
#: also run its own threads).
USE_OPENMP = True


def _load_native() -> Any:
    """The C kernel's step function, or None (no compiler, or a failed build)."""
    return _native.load_step("lars_native", "msoptim_lars_step", NATIVE_FLAGS)


def _native_indices(params: list[Tensor], grads: list[Tensor], third: list[Tensor]) -> list[int]:
    """The parameters the C kernel takes (:func:`~msoptim.kernels._native.plain_contiguous_indices`
    of them, their gradients and ``third``, moments or outputs). None while dynamo traces or
    when the kernel cannot be built."""
    if torch.compiler.is_compiling() or _load_native() is None:
        return []
    return _native.plain_contiguous_indices((params, grads, third))


def _others(count: int, taken: list[int]) -> list[int]:
    chosen = set(taken)
    return [i for i in range(count) if i not in chosen]


def _picked(arguments: dict[str, Any], indices: list[int]) -> dict[str, Any]:
    """``arguments`` with its per-parameter lists cut to ``indices``."""
    lrs = arguments["lrs"]
    return {
        **arguments,
        "weight_decays": [arguments["weight_decays"][i] for i in indices],
        "lrs": None if lrs is None else [lrs[i] for i in indices],
    }


def _float32_values(values: list[Any]) -> Tensor:
    """Per-parameter float32 scalars (Python floats or 0-d tensors) as one CPU tensor, without
    reading a tensor's value on the host."""
    if not any(issubclass(kind, Tensor) for kind in set(map(type, values))):
        return torch.tensor(values, dtype=torch.float32)
    return torch.stack(
        [
            torch.as_tensor(value).reshape(()).to(device="cpu", dtype=torch.float32)
            for value in values
        ]
    )


def _native_step(
    mode: int,
    lists: tuple[list[Tensor], ...],
    indices: list[int],
    *,
    weight_decays: list[Any],
    lrs: list[Tensor] | None,
    epsilon: float,
    coefficient: float,
    use_clip: bool,
    lr: Tensor | None = None,
    momentum: float = 0.0,
    nesterov: bool = False,
) -> None:
    """Run the C kernel on ``lists`` (params, grads, and moments or outputs); the per-parameter
    arguments are indexed by ``indices`` (the lists' positions among all parameters)."""
    params, grads, third = lists
    momentum_mode = mode == _MODE_MOMENTUM
    table, lengths, order = _native.address_table(
        [params, grads, third if momentum_mode else None, None if momentum_mode else third]
    )
    positions = list(map(indices.__getitem__, order))
    decays = _float32_values(list(map(weight_decays.__getitem__, positions)))
    clip_lrs = None if lrs is None else _float32_values(list(map(lrs.__getitem__, positions)))
    scalars = np.array([epsilon, coefficient, momentum], dtype=np.float32)
    # The kernel writes through raw pointers: bump the version counters as in-place ops would.
    torch._C._increment_version([*params, *third] if momentum_mode else list(third))
    _load_native()(
        ctypes.c_void_p(table.ctypes.data),
        ctypes.c_void_p(lengths.ctypes.data),
        ctypes.c_int64(len(order)),
        ctypes.c_void_p(decays.data_ptr()),
        ctypes.c_void_p(0 if clip_lrs is None else clip_lrs.data_ptr()),
        ctypes.c_void_p(0 if lr is None else lr.data_ptr()),
        ctypes.c_void_p(scalars.ctypes.data),
        ctypes.c_int(bool(use_clip)),
        ctypes.c_int(bool(nesterov)),
        ctypes.c_int(mode),
        *_native.team_arguments(USE_OPENMP),
    )
