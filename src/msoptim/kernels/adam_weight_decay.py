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
On the CPU, plain contiguous float32 tensors take ``adam_weight_decay_native.c`` (built on first
use, :mod:`msoptim.kernels._native`): the same arithmetic in one vectorized pass per parameter,
whose float64 half Inductor's kernel could not keep at the memory's pace (``bench/RESULTS.md``).
It is the CPU default (``fused`` and ``foreach`` unset: :func:`adam_weight_decay_native_or_reference`)
and the first choice of ``fused=True``.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import torch
from torch import Tensor

from msoptim.kernels import _native, _triton, apply_concatenated, pick_lists
from msoptim.kernels._fused import fused_apply
from msoptim.kernels.adam import fused_multiply_add, local_tensors

__all__ = [
    "adam_weight_decay_foreach",
    "adam_weight_decay_fused",
    "adam_weight_decay_native_or_reference",
    "adam_weight_decay_reference",
    "adam_weight_decay_steps_together",
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
    """:func:`adam_weight_decay_reference`, bit for bit: the C kernel for plain contiguous float32
    CPU tensors, :func:`adam_weight_decay_update` compiled for the others (see
    :mod:`msoptim.kernels._fused`).

    The weight decay goes in as a 0-d float32 tensor (the float32 value it holds), so decayed
    and undecayed parameters, and a scheduled decay, share one compiled kernel. On CUDA the
    update is one multi-tensor launch (:mod:`msoptim.kernels._triton`).
    """
    params, grads, adam_m, adam_v = (local_tensors(t) for t in (params, grads, adam_m, adam_v))
    rest = _step_native(
        (params, grads, adam_m, adam_v),
        lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
    )  # fmt: skip
    if not rest:
        return
    if len(rest) < len(params):
        params, grads, adam_m, adam_v = pick_lists((params, grads, adam_m, adam_v), rest)
    weight_decay = _as_tensor(weight_decay, params[0].device)
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


def adam_weight_decay_native_or_reference(
    params: list[Tensor],
    grads: list[Tensor],
    adam_m: list[Tensor],
    adam_v: list[Tensor],
    **options: Any,
) -> None:
    """AdamWeightDecay's default on CPU (``fused`` and ``foreach`` unset): the C kernel where it
    runs (plain contiguous float32 tensors, a C compiler: nothing to compile per process), the
    reference elsewhere; the reference's bits either way. ``options``:
    :func:`adam_weight_decay_reference`'s."""
    lists = tuple(local_tensors(t) for t in (params, grads, adam_m, adam_v))
    rest = _step_native(lists, **options)
    if rest:
        adam_weight_decay_reference(*pick_lists(lists, rest), **options)


#: Extra compiler flags of the C kernel (tests build a variant that splits small tensors too).
NATIVE_FLAGS: tuple[str, ...] = ()
#: Run the C kernel's threads as torch's OpenMP workers where torch has one (tests also run its
#: own threads).
USE_OPENMP = True


def _load_native() -> Any:
    """The C kernel's step function, or None (no compiler, or a failed build)."""
    return _native.load_step(
        "adam_weight_decay_native", "msoptim_adam_weight_decay_step", NATIVE_FLAGS
    )


def _step_native(
    lists: tuple[list[Tensor], ...],
    *,
    lr: Tensor | list[Tensor],
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: Tensor | float | list[Tensor | float],
    kept: dict[Any, _native.KeptTable] | None = None,
) -> list[int]:
    """Step the parameters the C kernel takes (plain contiguous float32 CPU tensors, scalars it can
    read: :mod:`msoptim.kernels._native`); return the positions of the others. ``lr`` and
    ``weight_decay``: the group's, or one per parameter (several groups in one call,
    :func:`adam_weight_decay_steps_together`). None is taken while dynamo traces or when the kernel
    cannot be built."""
    params = lists[0]
    count = len(params)
    given_lrs = lr if isinstance(lr, list) else [lr]
    given_decays = weight_decay if isinstance(weight_decay, list) else [weight_decay]
    if not _native.can_step(params, _load_native):
        return list(range(count))
    lrs = given_lrs * count if len(given_lrs) == 1 else given_lrs
    decays = given_decays * count if len(given_decays) == 1 else given_decays
    return _native.step_where_possible(
        (*lists, lrs, decays),
        lambda picked, _, tables: _native_step(picked, tables, beta1=beta1, beta2=beta2, eps=eps),
        walked=4,
        scalars=4,
        kept=kept,
        site=("adam_weight_decay", beta1, beta2, eps),
    )


def adam_weight_decay_steps_together(
    lists: tuple[list[Tensor], ...],
    lrs: list[Tensor],
    weight_decays: list[Tensor | float],
    *,
    beta1: float,
    beta2: float,
    eps: float,
    kept: dict[Any, _native.KeptTable] | None = None,
) -> list[int]:
    """The parameters of several groups with the same hyperparameters in one call: of the C
    kernel on the CPU, of the multi-tensor kernel on CUDA (``lrs``, ``weight_decays``: each
    parameter's, 0.0 where it does not decay; ``lists``: :func:`adam_weight_decay_reference`'s
    four). Returns the positions it could not take, for their groups' own kernels. ``kept``: the
    optimizer's kept tables (CPU, :class:`~msoptim.kernels._native.KeptTable`), or None."""
    lists = tuple(local_tensors(t) for t in lists)
    hyper = {"beta1": beta1, "beta2": beta2, "eps": eps}
    params = lists[0]
    if params and params[0].is_cuda:
        decays = [_as_tensor(value, params[0].device) for value in weight_decays]
        constants = {"beta1c": _one_minus(beta1), "beta2c": _one_minus(beta2), "eps": eps}
        return _triton.steps_together(
            lambda: _triton.adam_weight_decay(lists, lrs, decays, **constants), params
        )
    return _step_native(lists, lr=lrs, weight_decay=weight_decays, **hyper, kept=kept)


def _as_tensor(value: Tensor | float, device: torch.device) -> Tensor:
    """A weight decay as a 0-d float32 tensor on ``device``; a float's tensor is made once per
    value and device (never while a CUDA graph is captured: its fill would run only in replays)."""
    if isinstance(value, Tensor):
        return value
    key = (value, device)
    made = _DECAY_TENSORS.get(key)
    if made is None:
        made = torch.full((), value, dtype=torch.float32, device=device)
        if not (device.type == "cuda" and torch.cuda.is_current_stream_capturing()):
            _DECAY_TENSORS[key] = made
    return made


#: The float weight decays' tensors (:func:`_as_tensor`); read only, so shared.
_DECAY_TENSORS: dict[tuple[float, torch.device], Tensor] = {}


def _native_step(
    lists: tuple[list[Tensor | float], ...],
    tables: _native.TableBuilder,
    *,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """One vectorized pass per parameter (``adam_weight_decay_native.c``; the reference's bits).
    ``lists``: parameters, gradients, both moments, each parameter's lr and weight decay (a
    0-d float32 tensor or a float)."""
    params, grads, adam_m, adam_v, lrs, decays = lists
    # A float decay (a static group's, or 0.0) is read from a float32 array of the distinct ones.
    distinct = sorted({value for value in decays if not isinstance(value, Tensor)})
    floats = np.array(distinct, dtype=np.float32)
    where = {value: floats.ctypes.data + floats.itemsize * i for i, value in enumerate(distinct)}
    decay_addresses = [
        value.data_ptr() if isinstance(value, Tensor) else where[value] for value in decays
    ]
    table, lengths, order = tables([params, grads, adam_m, adam_v, lrs, decay_addresses])
    constants = np.array([_one_minus(beta1), _one_minus(beta2)], dtype=np.float32)
    # The kernel writes through raw pointers: bump the version counters as in-place ops would.
    torch._C._increment_version([*params, *adam_m, *adam_v])
    _load_native()(
        ctypes.c_void_p(table.ctypes.data),
        ctypes.c_void_p(lengths.ctypes.data),
        ctypes.c_int64(len(order)),
        ctypes.c_void_p(constants.ctypes.data),
        ctypes.c_double(eps),
        *_native.team_arguments(USE_OPENMP),
    )
