"""MindSpore ``FusedAdaFactor`` (the CPU kernel ``nn.AdaFactor`` runs on CPU), one step.

Per parameter, with ``upd = g*g + eps1`` and ``b = beta2t`` (``1 - step^-decay_rate``)::

    ndim >= 2 (factored; row = mean over the last axis, col = mean over the second-to-last):
        row <- row*b + mean(upd, -1)*(1 - b)
        col <- max(col*b + mean(upd, -2)*(1 - b), 1e-30)
        u = g / max(sqrt(row / max(mean(row, -1), 1e-30))[..., :, None] * sqrt(col)[..., None, :], 1e-30)
    ndim < 2:
        v <- max(v*b + upd*(1 - b), 1e-30);        u = g / sqrt(v)
    lr_eff = lr * max(eps2, RMS(w))   (scale_parameter)   else lr
    u = u * (lr_eff / max(RMS(u) / clip_threshold, 1))
    beta1 > 0:  u = exp_avg*beta1 + u*(1 - beta1);  exp_avg <- u
    w <- w - (u + w*weight_decay*lr_eff)   (weight_decay > 0)   else   w - u

``RMS(x) = sqrt(sum(x*x) / numel)`` over the whole tensor. The op order is the CPU kernel's; it
differs from MindSpore's Python (Ascend) path only in rounding (``g / sqrt(v)`` there is
``(1/sqrt(v)) * g``, the clip is ``u / coef * lr_eff``, and it has no ``1e-30`` floors).

Precision: bit-exact on the golden case (every step, parameters and state) for CPU tensors. Two
things matter. (1) MindSpore sums in sequence, in float32 (one loop per row/column mean, one loop
per block of 1000 elements for an RMS); for plain CPU tensors the sums here are the same
sequential sums (:func:`sum_along`). An RMS over more than 1000 elements (MindSpore splits it
across as many threads as the recording machine had) is summed in float64 and rounded once, on
every device: independent of the order, so every path gives the same bits. Other devices,
DTensors and traced tensors use ``torch.sum`` for the means and the smaller RMS sums, whose order
moves a mean or an RMS by an ulp now and then: measured on the golden case, at most 2 ulp in the
parameters over 10 steps and 2 ulp of the tensor's scale in ``exp_avg``. (2) torch's vectorized
float32 CPU ``sqrt`` is not correctly rounded; every square root here is the float64 one rounded
once (exact). 16-bit parameters are computed in float32 and
rounded once, as the kernel does. Reductions are ``sum`` / ``numel`` on the tensors themselves, so
a DTensor parameter gets the global RMS (a ``Partial`` sum that the next op reduces).
"""

from __future__ import annotations

import ctypes
import math
import operator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from msoptim._division import divide_by_number
from msoptim.kernels import _native, pick_lists
from msoptim.kernels._exact import exact_sqrt
from msoptim.kernels._sequential_sums import sequential, sum_along
from msoptim.kernels._workspace import flat_scratch

__all__ = ["adafactor_foreach", "adafactor_fused", "adafactor_reference"]

#: The kernel's floor for second moments and normalizers (``constexpr float kEps = 1e-30``).
FLOOR = 1e-30
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _compute_dtype(param: Tensor) -> torch.dtype:
    return torch.float32 if param.dtype in _LOW_PRECISION else param.dtype


#: The kernel's ``CalcRMS`` sums up to this many elements in one sequential loop.
RMS_BLOCK = 1000


def _sum_all(x: Tensor) -> Tensor:
    """Sum of every element, as ``CalcRMS`` adds: up to one block (:data:`RMS_BLOCK`) in sequence
    (plain CPU tensors; ``torch.sum`` elsewhere). Above it MindSpore's order depends on its thread
    count, so the sum is taken in float64 and rounded once: any order gives the same float32
    result (but within about ``n * 2**-53`` of a rounding boundary), so the reference and the
    fused kernel agree bit for bit."""
    if x.numel() > RMS_BLOCK:
        return torch.sum(x, dtype=torch.float64).to(x.dtype)
    if not sequential(x):
        return torch.sum(x)
    flat = x.detach().reshape(-1).numpy()
    return torch.from_numpy(np.cumsum(flat, dtype=flat.dtype)[-1:]).reshape(())


def _rms(x: Tensor) -> Tensor:
    """``sqrt(sum(x^2) / numel)``, the kernel's ``CalcRMS`` (global for a DTensor)."""
    return exact_sqrt(divide_by_number(_sum_all(x * x), x.numel()))


def _factored_direction(
    grad: Tensor, upd: Tensor, row: Tensor, col: Tensor, beta2t: Tensor, one_minus: Tensor
) -> Tensor:
    """Update ``row``/``col`` in place; return ``g / (r x c)``, the factored normalized gradient."""
    dtype = grad.dtype
    row_mean = divide_by_number(sum_along(upd, -1), upd.shape[-1])
    row.copy_(row.to(dtype) * beta2t + row_mean * one_minus)
    stored_row = row.to(dtype)
    row_norm = torch.clamp(
        divide_by_number(sum_along(stored_row, -1, keepdim=True), stored_row.shape[-1]), min=FLOOR
    )
    r_factor = exact_sqrt(stored_row / row_norm)
    col_mean = divide_by_number(sum_along(upd, -2), upd.shape[-2])
    new_col = torch.clamp(col.to(dtype) * beta2t + col_mean * one_minus, min=FLOOR)
    col.copy_(new_col)
    # The kernel takes sqrt of the float value before it is stored in the parameter's dtype.
    c_factor = exact_sqrt(new_col)
    scale = torch.clamp_(r_factor.unsqueeze(-1) * c_factor.unsqueeze(-2), min=FLOOR)
    return torch.div(grad, scale, out=scale)


def _finish(
    param: Tensor,
    direction: Tensor,
    exp_avg: Tensor | None,
    *,
    lr: Tensor,
    eps2: float,
    clip_threshold: float,
    beta1: float,
    one_minus_beta1: float,
    weight_decay: float,
    scale_parameter: bool,
) -> None:
    """Clip by RMS, scale by the (relative) lr, first moment, weight decay, write the parameter.

    ``direction`` is this step's temporary and is overwritten (in-place ops round as the
    out-of-place ones do; they spare a fresh buffer, which for a large tensor means page faults).
    """
    dtype = direction.dtype
    weight = param.to(dtype)
    lr_eff = lr * torch.clamp(_rms(weight), min=eps2) if scale_parameter else lr
    coefficient = lr_eff / torch.clamp(divide_by_number(_rms(direction), clip_threshold), min=1.0)
    update = direction.mul_(coefficient)
    if exp_avg is not None and exp_avg.dtype == dtype:
        update = exp_avg.mul_(beta1).add_(update.mul_(one_minus_beta1))
    elif exp_avg is not None:
        update = exp_avg.to(dtype) * beta1 + update * one_minus_beta1
        exp_avg.copy_(update)
    if weight_decay != 0.0:
        update = update + weight * weight_decay * lr_eff
    if param.dtype == dtype:
        param.sub_(update)
    else:
        param.copy_(weight - update)


def _one_minus(value: float) -> float:
    # ``1 - beta1`` evaluated in float32, as the C++ kernel does.
    return float(np.float32(1.0) - np.float32(value))


def adafactor_reference(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor] | None,
    exp_avg_sq_rows: list[Tensor],
    exp_avg_sq_cols: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    lr: Tensor,
    beta2t: Tensor,
    eps: tuple[float, float],
    clip_threshold: float,
    beta1: float,
    weight_decay: float,
    scale_parameter: bool,
) -> None:
    """Per-tensor loop in the CPU kernel's op order (see the module docstring).

    Args:
        params, grads: the parameters and their gradients (no loss-scale handling: AdaFactor's
            pipeline has none).
        exp_avgs: first moments, or None when ``beta1 == 0``.
        exp_avg_sq_rows, exp_avg_sq_cols: factored second moments (dummies of shape ``(1,)`` for
            parameters with ``ndim < 2``).
        exp_avg_sqs: full second moments (a dummy ``(1,)`` for ``ndim >= 2``); float16 under
            ``compression``.
        lr: 0-d float32 tensor, the relative step size or the group's lr.
        beta2t: 0-d float32 tensor, ``1 - step^-decay_rate``.
        eps: ``(eps1, eps2)``, float32 values.
        clip_threshold, beta1, weight_decay: float32 values.
        scale_parameter: multiply the lr by ``max(eps2, RMS(w))``.
    """
    eps1, eps2 = eps
    one_minus_beta2t = 1.0 - beta2t
    one_minus_beta1 = _one_minus(beta1)
    for index, (param, grad) in enumerate(zip(params, grads)):
        dtype = _compute_dtype(param)
        grad = grad.to(dtype)
        upd = (grad * grad).add_(eps1)
        if param.ndim >= 2:
            direction = _factored_direction(
                grad,
                upd,
                exp_avg_sq_rows[index],
                exp_avg_sq_cols[index],
                beta2t,
                one_minus_beta2t,
            )
        else:
            sq = exp_avg_sqs[index]
            new = torch.clamp(sq.to(dtype) * beta2t + upd * one_minus_beta2t, min=FLOOR)
            sq.copy_(new)
            # Under ``compression`` the float16 copy is only stored: this step divides by the
            # float32 value (the CPU kernel does), the next one reads the copy back.
            direction = grad / exact_sqrt(new)
        _finish(
            param,
            direction,
            None if exp_avgs is None else exp_avgs[index],
            lr=lr,
            eps2=eps2,
            clip_threshold=clip_threshold,
            beta1=beta1,
            one_minus_beta1=one_minus_beta1,
            weight_decay=weight_decay,
            scale_parameter=scale_parameter,
        )


def adafactor_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor] | None,
    exp_avg_sq_rows: list[Tensor],
    exp_avg_sq_cols: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    lr: Tensor,
    beta2t: Tensor,
    eps: tuple[float, float],
    clip_threshold: float,
    beta1: float,
    weight_decay: float,
    scale_parameter: bool,
) -> None:
    """:func:`adafactor_reference` with the element-wise work batched by ``torch._foreach_*``.

    The reductions (row/column means, RMS) stay per tensor; the arithmetic and its order are the
    reference's, so the results are bit-identical. 16-bit parameters take the reference path.
    """
    low = [i for i, p in enumerate(params) if p.dtype in _LOW_PRECISION]
    if low:
        adafactor_reference(
            [params[i] for i in low],
            [grads[i] for i in low],
            None if exp_avgs is None else [exp_avgs[i] for i in low],
            [exp_avg_sq_rows[i] for i in low],
            [exp_avg_sq_cols[i] for i in low],
            [exp_avg_sqs[i] for i in low],
            lr=lr,
            beta2t=beta2t,
            eps=eps,
            clip_threshold=clip_threshold,
            beta1=beta1,
            weight_decay=weight_decay,
            scale_parameter=scale_parameter,
        )
        keep = [i for i in range(len(params)) if i not in set(low)]
        params = [params[i] for i in keep]
        grads = [grads[i] for i in keep]
        exp_avgs = None if exp_avgs is None else [exp_avgs[i] for i in keep]
        exp_avg_sq_rows = [exp_avg_sq_rows[i] for i in keep]
        exp_avg_sq_cols = [exp_avg_sq_cols[i] for i in keep]
        exp_avg_sqs = [exp_avg_sqs[i] for i in keep]
    if not params:
        return
    eps1, eps2 = eps
    one_minus_beta2t = 1.0 - beta2t
    one_minus_beta1 = _one_minus(beta1)

    upds = torch._foreach_mul(grads, grads)
    torch._foreach_add_(upds, eps1)

    directions: list[Tensor | None] = [None] * len(params)
    flat = [i for i, p in enumerate(params) if p.ndim < 2]
    for i, param in enumerate(params):
        if param.ndim >= 2:
            directions[i] = _factored_direction(
                grads[i], upds[i], exp_avg_sq_rows[i], exp_avg_sq_cols[i], beta2t, one_minus_beta2t
            )
    if flat:
        sqs = [exp_avg_sqs[i] for i in flat]
        weighted = torch._foreach_mul([upds[i] for i in flat], one_minus_beta2t)
        if all(sq.dtype == params[i].dtype for sq, i in zip(sqs, flat)):
            torch._foreach_mul_(sqs, beta2t)
            torch._foreach_add_(sqs, weighted)
            torch._foreach_clamp_min_(sqs, FLOOR)
            reads = sqs
        else:  # compression: the float16 copies are computed in float32 and stored rounded
            news = torch._foreach_mul([sq.to(params[i].dtype) for sq, i in zip(sqs, flat)], beta2t)
            torch._foreach_add_(news, weighted)
            torch._foreach_clamp_min_(news, FLOOR)
            for sq, new in zip(sqs, news):
                sq.copy_(new)
            reads = news  # the float32 values, as in the reference
        quotients = torch._foreach_div([grads[i] for i in flat], [exact_sqrt(r) for r in reads])
        for i, quotient in zip(flat, quotients):
            directions[i] = quotient
    updates: list[Tensor] = [d for d in directions if d is not None]

    lr_effs: list[Tensor] = []
    coefficients: list[Tensor] = []
    for param, direction in zip(params, updates):
        lr_eff = lr * torch.clamp(_rms(param), min=eps2) if scale_parameter else lr
        lr_effs.append(lr_eff)
        clipped = torch.clamp(divide_by_number(_rms(direction), clip_threshold), min=1.0)
        coefficients.append(lr_eff / clipped)
    torch._foreach_mul_(updates, coefficients)
    if exp_avgs is not None:
        torch._foreach_mul_(exp_avgs, beta1)
        torch._foreach_add_(exp_avgs, torch._foreach_mul(updates, one_minus_beta1))
        updates = exp_avgs
    if weight_decay != 0.0:
        decays = torch._foreach_mul(params, weight_decay)
        torch._foreach_mul_(decays, lr_effs)
        updates = torch._foreach_add(updates, decays)
    torch._foreach_sub_(params, updates)


def _native_layout(
    param: Tensor, grad: Tensor, exp_avg: Tensor | None, row: Tensor, col: Tensor, sq: Tensor
) -> bool:
    """A parameter the C kernel takes: it, its gradient and its state plain contiguous float32 CPU
    tensors of the sizes the kernel walks (it writes through raw pointers)."""
    if grad.shape != param.shape:
        return False
    if exp_avg is not None and not (
        exp_avg.shape == param.shape and _native.plain_contiguous(exp_avg)
    ):
        return False
    for tensor in (param, grad, row, col, sq):
        if not _native.plain_contiguous(tensor):
            return False
    return _native_states(param, row, col, sq)


_SHAPE = operator.attrgetter("shape")


def _native_indices(lists: tuple[list[Tensor], ...], exp_avgs: list[Tensor] | None) -> list[int]:
    """The parameters the C kernel takes. One C-level pass per property over all the tensors
    first (the usual case: every one qualifies), else :func:`_native_layout` one by one."""
    params, grads, rows, cols, sqs = lists
    tensors = [*params, *grads, *rows, *cols, *sqs, *(exp_avgs or ())]
    shapes = list(map(_SHAPE, params))
    if (
        _native.all_plain_float32_cpu(tensors)
        and all(map(Tensor.is_contiguous, tensors))
        and shapes == list(map(_SHAPE, grads))
        and (exp_avgs is None or shapes == list(map(_SHAPE, exp_avgs)))
        and _all_states_fit(params, rows, cols, sqs)
    ):
        return list(range(len(params)))
    return [
        i
        for i, (param, grad, row, col, sq) in enumerate(zip(*lists))
        if _native_layout(param, grad, None if exp_avgs is None else exp_avgs[i], row, col, sq)
    ]


def _all_states_fit(
    params: list[Tensor], rows: list[Tensor], cols: list[Tensor], sqs: list[Tensor]
) -> bool:
    """:func:`_native_states` for every parameter; C-level passes when none is factored (a
    model of vectors: the full second moment as long as each parameter, none empty)."""
    if max(map(Tensor.dim, params), default=0) < 2:
        numels = list(map(Tensor.numel, params))
        return all(numels) and numels == list(map(Tensor.numel, sqs))
    return all(map(_native_states, params, rows, cols, sqs))


def _native_states(param: Tensor, row: Tensor, col: Tensor, sq: Tensor) -> bool:
    """The state buffers have the sizes the kernel walks (it writes through raw pointers)."""
    if param.numel() == 0:
        return False
    if param.ndim < 2:
        return sq.numel() == param.numel()
    batch, rows, cols = _factored_view(param.shape)
    return row.numel() == batch * rows and col.numel() == batch * cols


def _factored_view(shape: torch.Size) -> tuple[int, int, int]:
    rows, cols = shape[-2], shape[-1]
    return math.prod(shape[:-2]), rows, cols


#: The C kernel's ways through a parameter (``mode`` in its table).
_FLAT, _ROWS, _SCALED = 0, 1, 2
#: Factored slices with rows shorter than this keep every element's denominator in scratch
#: (elementwise passes; convolution kernels), longer rows keep their row and column factors.
SHORT_ROW = 16
_SCALED_SUMS_MAX = 2048  # the kernel's stack room for a slice's row and column sums


def _native_plan(param: Tensor) -> tuple[int, int, int, int, int]:
    """``(mode, batch, rows, cols, scratch floats)`` of one parameter."""
    if param.ndim < 2:
        return _FLAT, 1, 1, param.numel(), 0
    batch, rows, cols = _factored_view(param.shape)
    if cols < SHORT_ROW and rows + cols <= _SCALED_SUMS_MAX:
        return _SCALED, batch, rows, cols, param.numel()
    return _ROWS, batch, rows, cols, batch * (rows + cols)


def _native_step(
    step: Any,
    lists: tuple[list[Tensor], ...],
    exp_avgs: list[Tensor] | None,
    *,
    lr: Tensor,
    beta2t: Tensor,
    eps: tuple[float, float],
    clip_threshold: float,
    beta1: float,
    weight_decay: float,
    scale_parameter: bool,
) -> None:
    params, grads, rows, cols, sqs = lists
    # One row per parameter, largest first: param, grad, exp_avg, row, col, sq (addresses),
    # scratch (address), batch, rows, cols, mode.
    table, _, order = _native.address_table(
        [params, grads, exp_avgs, rows, cols, sqs, None, None, None, None, None]
    )
    plans = np.array([_native_plan(params[i]) for i in order], dtype=np.int64).reshape(-1, 5)
    scratch = flat_scratch(params[order[0]], int(plans[:, 4].sum()))
    offsets = np.cumsum(plans[:, 4]) - plans[:, 4]  # each parameter's scratch, in floats
    table[:, 6] = scratch.data_ptr() + 4 * offsets
    table[:, 7:10] = plans[:, 1:4]  # batch, rows, cols
    table[:, 10] = plans[:, 0]  # mode
    constants = np.array(
        [*eps, clip_threshold, beta1, _one_minus(beta1), weight_decay], dtype=np.float32
    )
    # The kernel writes through raw pointers: bump the version counters as an in-place op would,
    # so that autograd still refuses a backward through a tensor saved before this step.
    written = [*params, *rows, *cols, *sqs, *(exp_avgs or ())]
    torch._C._increment_version(written)
    step(
        ctypes.c_void_p(table.ctypes.data),
        ctypes.c_int64(len(order)),
        ctypes.c_void_p(lr.data_ptr()),
        ctypes.c_void_p(beta2t.data_ptr()),
        ctypes.c_void_p(constants.ctypes.data),
        ctypes.c_int(bool(scale_parameter)),
        *_native.team_arguments(USE_OPENMP),
    )


def _load_native(extra_flags: tuple[str, ...] = ()) -> Any:
    """The C kernel's step function, or None (no compiler, or a failed build)."""
    return _native.load_step("adafactor_native", "msoptim_adafactor_step", extra_flags)


#: Extra compiler flags of the C kernel (tests build its portable, non-vector variant too).
NATIVE_FLAGS: tuple[str, ...] = ()
#: Run the C kernel's threads as torch's OpenMP workers where torch has an OpenMP runtime (tests
#: also run its own threads).
USE_OPENMP = True


def adafactor_fused(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor] | None,
    exp_avg_sq_rows: list[Tensor],
    exp_avg_sq_cols: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    lr: Tensor,
    beta2t: Tensor,
    eps: tuple[float, float],
    clip_threshold: float,
    beta1: float,
    weight_decay: float,
    scale_parameter: bool,
) -> None:
    """:func:`adafactor_reference`'s arithmetic, bit for bit, in two or three passes over a tensor.

    Plain contiguous float32 CPU tensors run the C kernel ``adafactor_native.c`` (built on first
    use, see :mod:`msoptim.kernels._native`): with long rows, pass 1 reads the gradient once for
    the row and column sums (sequential, as the reference's), pass 2 reads it and the parameter
    for the two RMS sums, pass 3 applies the update; with rows shorter than :data:`SHORT_ROW`
    (convolution kernels) the first two are one cache-blocked pass that keeps the directions in a
    scratch buffer as large as the parameter. The parameters are shared among
    ``torch.get_num_threads()`` threads, largest first; from three threads on, a parameter larger
    than an even share of the step (an embedding) is walked by all of them together. Everything else (other dtypes or devices, DTensors, non-contiguous tensors, calls
    made while dynamo traces, a machine without a C compiler) runs :func:`adafactor_reference`, or
    :func:`adafactor_foreach` on CUDA.
    """
    lists = (params, grads, exp_avg_sq_rows, exp_avg_sq_cols, exp_avg_sqs)
    step = None
    if (
        not torch.compiler.is_compiling()
        and _native.plain_float32_scalar(lr)
        and _native.plain_float32_scalar(beta2t)
    ):
        step = _load_native(NATIVE_FLAGS)
    native = [] if step is None else _native_indices(lists, exp_avgs)
    taken = set(native)
    rest = [i for i in range(len(params)) if i not in taken]
    options = {
        "lr": lr,
        "beta2t": beta2t,
        "eps": eps,
        "clip_threshold": clip_threshold,
        "beta1": beta1,
        "weight_decay": weight_decay,
        "scale_parameter": scale_parameter,
    }
    if rest:
        others = pick_lists((params, grads), rest)
        eager = adafactor_foreach if all(p.is_cuda for p in others[0]) else adafactor_reference
        eager(
            *others,
            None if exp_avgs is None else pick_lists((exp_avgs,), rest)[0],
            *pick_lists((exp_avg_sq_rows, exp_avg_sq_cols, exp_avg_sqs), rest),
            **options,
        )
    if native:
        _native_step(
            step,
            pick_lists(lists, native),
            None if exp_avgs is None else pick_lists((exp_avgs,), native)[0],
            **options,
        )
