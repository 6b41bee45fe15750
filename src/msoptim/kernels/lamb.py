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
CUDA's ``powf`` may differ from it by an ulp).

The norms are :func:`msoptim.kernels._norms.tensor_norm`: float64 sums of squares, rounded to
float32 after the square root (order-proof: every path gives the same bits).

:func:`lamb_fused` runs plain contiguous float32 CPU tensors through the C kernel
``lamb_native.c`` (built on first use, :mod:`msoptim.kernels._native`): one visit per parameter,
the moments and the two sums of squares, then the trust ratio and the update while ``w``, ``m``
and ``v`` are still in cache (the threads split the large parameters, see ``native_team.h``).
Everything else it can compile (CUDA; CPU without a C compiler, or tensors of another layout) is
two compiled passes around the trust ratios. The first updates the moments
and, in the same loop, sums the squares of ``w`` and ``g_hat`` (:func:`lamb_moments_update`:
``g_hat`` is never written to memory); the trust ratios of all parameters are then computed at
once, and a second compiled pass recomputes ``update`` from the new moments and applies it
(:func:`lamb_param_update`). The same operations in the same order as the reference, so the same
bits (``tests/test_fast_path.py``). It moves 10 floats per parameter (one pass would move 7),
where writing ``g_hat`` and reading it back for its norm moved 13.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import torch
from torch import Tensor

from msoptim.kernels import _native, pick_lists
from msoptim.kernels._exact import exact_sqrt, float32_constant
from msoptim.kernels._fused import cpu_inductor_options, fused_apply, plain_float32
from msoptim.kernels._norms import square_sum, tensor_norm
from msoptim.kernels._workspace import scratch_like

__all__ = [
    "bias_corrections",
    "lamb_foreach",
    "lamb_fused",
    "lamb_g_hat_update",
    "lamb_moments_update",
    "lamb_native_or_reference",
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


def _new_moments_and_g_hat(
    param: Tensor,
    grad: Tensor,
    m: Tensor,
    v: Tensor,
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
) -> Tensor:
    """Update the moments in place; return ``g_hat`` (the first pass's arithmetic, both forms)."""
    m.copy_(m * beta1 + grad * one_minus_beta1)
    v.copy_(v * beta2 + (grad * grad) * one_minus_beta2)
    value = (m / correction1) / exact_sqrt(v / correction2 + eps)
    if decay:
        value = value + param * weight_decay
    return value


# Without it Inductor recomputes the new moments inside the reduction loop and stores them in a
# second loop over the tensor (the stores must follow the reads of the old moments): two passes
# over memory. Realizing every value read twice makes it one loop that stores the moments and sums
# (GPT-2 embedding: 39 -> 24 ms a call, 2 threads).
@cpu_inductor_options(realize_reads_threshold=1)
def lamb_moments_update(
    param: Tensor,
    grad: Tensor,
    m: Tensor,
    v: Tensor,
    weight_square_sum: Tensor,
    g_hat_square_sum: Tensor,
    correction1: Tensor,
    correction2: Tensor,
    weight_decay: Tensor,
    **hyper: Any,
) -> None:
    """First pass of :func:`lamb_fused`: the moments, and the float64 sums of squares of ``w`` and
    ``g_hat`` (written into the 1-element ``weight_square_sum`` and ``g_hat_square_sum``);
    ``hyper``: the constants of :func:`_new_moments_and_g_hat`."""
    g_hat = _new_moments_and_g_hat(
        param, grad, m, v, correction1, correction2, weight_decay, **hyper
    )
    weight_square_sum.copy_(square_sum(param))
    g_hat_square_sum.copy_(square_sum(g_hat))


def lamb_g_hat_update(
    param: Tensor,
    grad: Tensor,
    m: Tensor,
    v: Tensor,
    g_hat: Tensor,
    correction1: Tensor,
    correction2: Tensor,
    weight_decay: Tensor,
    **hyper: Any,
) -> None:
    """:func:`lamb_moments_update` that writes ``g_hat`` instead of summing (the CUDA form)."""
    g_hat.copy_(
        _new_moments_and_g_hat(param, grad, m, v, correction1, correction2, weight_decay, **hyper)
    )


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


def _moments_and_square_sums(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    shared: tuple[Tensor, ...],
    subsets: list[list[int]],
    constants: dict[str, float],
) -> Tensor:
    """First pass on CPU: the kernel sums the squares of ``w`` and ``g_hat`` as it goes (``g_hat``
    never reaches memory); returns the ``(2, n)`` float32 norms of ``w`` and ``g_hat``."""
    # Row 0: the squares of each w, row 1: of each g_hat; one 1-element view per parameter and
    # row. Not 0-d: torch 2.13's compiled code drops a write into a 0-d float64 input (dynamo
    # treats such a tensor like a Python float).
    square_sums = torch.empty((2, len(params), 1), dtype=torch.float64, device=params[0].device)
    weight_sums, g_hat_sums = square_sums[0].unbind(), square_sums[1].unbind()
    for decay, indices in zip((True, False), subsets):
        if indices:
            fused_apply(
                lamb_moments_update,
                pick_lists((params, grads, exp_avgs, exp_avg_sqs), indices),
                shared,
                per_parameter=pick_lists((weight_sums, g_hat_sums), indices),
                decay=decay,
                **constants,
            )
    # A float64 square root rounded to float32: each tensor's norm, in one vectorised pass.
    return torch.sqrt(square_sums.squeeze(2)).to(torch.float32)


def _moments_and_g_hat_norms(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    shared: tuple[Tensor, ...],
    subsets: list[list[int]],
    constants: dict[str, float],
) -> Tensor:
    """First pass on CUDA: the kernel writes ``g_hat`` (a per-tensor kernel that also reduced
    would reduce a whole tensor in one thread block), then multi-tensor norms in float64."""
    g_hats = scratch_like(params, exp_avgs[0])
    for decay, indices in zip((True, False), subsets):
        if indices:
            fused_apply(
                lamb_g_hat_update,
                pick_lists((params, grads, exp_avgs, exp_avg_sqs, g_hats), indices),
                shared,
                decay=decay,
                **constants,
            )
    norms = torch._foreach_norm([*params, *g_hats], 2, dtype=torch.float64)
    return torch.stack(norms).to(torch.float32).view(2, len(params))


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
    """:func:`lamb_reference`, bit for bit: the C kernel for plain contiguous float32 CPU tensors,
    two compiled passes around the norms for other plain float32 tensors.

    Tensor subclasses (a DTensor's norm is a collective) and other dtypes take the reference path.
    """
    options = {"lr": lr, "step": step, "beta1": beta1, "beta2": beta2, "eps": eps,
               "weight_decay": weight_decay}  # fmt: skip
    rest = _step_native((params, grads, exp_avgs, exp_avg_sqs), decay_flags, **options)
    if not rest:
        return
    params, grads, exp_avgs, exp_avg_sqs = pick_lists((params, grads, exp_avgs, exp_avg_sqs), rest)
    decay_flags = [decay_flags[i] for i in rest]
    compiles = [plain_float32(p) and plain_float32(g) for p, g in zip(params, grads)]
    if not all(compiles):
        # Tensor subclasses (a DTensor's norm is a collective) and other dtypes: the reference.
        others = [i for i, flag in enumerate(compiles) if not flag]
        lists = pick_lists((params, grads, exp_avgs, exp_avg_sqs), others)
        lamb_reference(*lists, **options, decay_flags=[decay_flags[i] for i in others])
        compiled = [i for i, flag in enumerate(compiles) if flag]
        if not compiled:
            return
        params, grads, exp_avgs, exp_avg_sqs = pick_lists(
            (params, grads, exp_avgs, exp_avg_sqs), compiled
        )
        decay_flags = [decay_flags[i] for i in compiled]
    device = params[0].device
    constants, shared = _step_scalars(step, beta1, beta2, eps, weight_decay, device)
    subsets = [
        [i for i, flag in enumerate(decay_flags) if flag == decay] for decay in (True, False)
    ]
    first_pass = _moments_and_square_sums if device.type == "cpu" else _moments_and_g_hat_norms
    norms = first_pass(params, grads, exp_avgs, exp_avg_sqs, shared, subsets, constants)
    scales = (_trust_ratio(norms[0], norms[1]) * lr).unbind()
    for decay, indices in zip((True, False), subsets):
        if indices:
            fused_apply(
                lamb_param_update,
                pick_lists((params, exp_avgs, exp_avg_sqs), indices),
                shared,
                per_parameter=([scales[i] for i in indices],),
                decay=decay,
                eps=constants["eps"],
            )


def lamb_native_or_reference(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    *,
    decay_flags: list[bool],
    **options: Any,
) -> None:
    """Lamb's default on CPU (``fused`` and ``foreach`` unset): the C kernel where it runs (plain
    contiguous float32 tensors, a C compiler: nothing to compile per process), the reference
    elsewhere; the reference's bits either way. ``options``: :func:`lamb_reference`'s."""
    lists = (params, grads, exp_avgs, exp_avg_sqs)
    rest = _step_native(lists, decay_flags, **options)
    if rest:
        lamb_reference(
            *pick_lists(lists, rest), **options, decay_flags=[decay_flags[i] for i in rest]
        )


def _step_scalars(
    step: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float | Tensor,
    device: torch.device,
) -> tuple[dict[str, float], tuple[Tensor, Tensor, Tensor]]:
    """A step's constants (:func:`_hyper`) and its 0-d float32 tensors: the two bias corrections
    and the weight decay (the C kernel and the compiled passes read the same ones)."""
    constants = _hyper(beta1, beta2, eps)
    correction1, correction2 = bias_corrections(step, constants["beta1"], constants["beta2"])
    if not isinstance(weight_decay, Tensor):
        weight_decay = torch.full((), weight_decay, dtype=torch.float32, device=device)
    return constants, (correction1, correction2, weight_decay)


def _step_native(
    lists: tuple[list[Tensor], ...],
    decay_flags: list[bool],
    *,
    lr: Tensor,
    step: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float | Tensor,
) -> list[int]:
    """Step the parameters the C kernel ``lamb_native.c`` takes (plain contiguous float32 CPU
    tensors with their gradients and moments, scalars it can read: :mod:`msoptim.kernels._native`);
    return the positions of the others. None is taken while dynamo traces or when the kernel
    cannot be built."""
    params = lists[0]
    if not isinstance(lr, Tensor) or not _native.can_step(params, _load_native):
        return list(range(len(params)))
    constants, shared = _step_scalars(step, beta1, beta2, eps, weight_decay, params[0].device)
    correction1, correction2, decay = shared
    if not all(map(_native.plain_float32_scalar, (*shared, lr))):
        return list(range(len(params)))

    def native_step(picked: tuple[list[Tensor], ...], positions: list[int], _: Any) -> None:
        _native_step(picked, [decay_flags[i] for i in positions], constants,
                     correction1=correction1, correction2=correction2, weight_decay=decay,
                     lr=lr)  # fmt: skip

    return _native.step_where_possible(lists, native_step)


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
        trust = _trust_ratio(tensor_norm(param), tensor_norm(g_hat))
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

    weight_norms = [tensor_norm(t) for t in params]
    g_hat_norms = [tensor_norm(t) for t in g_hats]
    scales = [_trust_ratio(w, g) * lr for w, g in zip(weight_norms, g_hat_norms)]
    torch._foreach_mul_(updates, scales)
    torch._foreach_sub_(params, updates)


# ------------------------------------------------------------------ the C kernel

#: Extra compiler flags of the C kernel (tests build a variant that splits small tensors too).
NATIVE_FLAGS: tuple[str, ...] = ()
#: Run the C kernel's threads as torch's OpenMP workers where torch has one (tests also run its
#: own threads).
USE_OPENMP = True


def _load_native() -> Any:
    """The C kernel's step function, or None (no compiler, or a failed build)."""
    return _native.load_step("lamb_native", "msoptim_lamb_step", NATIVE_FLAGS)


def _native_step(
    lists: tuple[list[Tensor], ...],
    decay_flags: list[bool],
    constants: dict[str, float],
    *,
    correction1: Tensor,
    correction2: Tensor,
    weight_decay: Tensor,
    lr: Tensor,
) -> None:
    """One visit per parameter: the moments and the two sums of squares, then the trust ratio and
    the update while the tensors are in cache (``lamb_native.c``; the reference's bits)."""
    params, grads, exp_avgs, exp_avg_sqs = lists
    table, lengths, order = _native.address_table(
        [params, grads, exp_avgs, exp_avg_sqs, [int(flag) for flag in decay_flags]]
    )
    hyper = np.array(
        [
            constants[name]
            for name in ("beta1", "beta2", "one_minus_beta1", "one_minus_beta2", "eps")
        ],
        dtype=np.float32,
    )
    # The kernel writes through raw pointers: bump the version counters as in-place ops would.
    torch._C._increment_version([*params, *exp_avgs, *exp_avg_sqs])
    _load_native()(
        ctypes.c_void_p(table.ctypes.data),
        ctypes.c_void_p(lengths.ctypes.data),
        ctypes.c_int64(len(order)),
        ctypes.c_void_p(hyper.ctypes.data),
        *(ctypes.c_void_p(t.data_ptr()) for t in (correction1, correction2, weight_decay, lr)),
        *_native.team_arguments(USE_OPENMP),
    )
