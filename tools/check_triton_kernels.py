"""Run msoptim's CUDA multi-tensor kernels in Triton's CPU interpreter against the reference.

Usage: ``TRITON_INTERPRET=1 python tools/check_triton_kernels.py`` (needs Triton; no GPU). Exits 1
on any difference. Each kernel's entry point in ``msoptim.kernels._triton`` runs on CPU tensors
of lengths around the block size and MindSpore's 8-wide remainder, and parameters and state must
equal the reference loop's bit for bit. This checks the indexing, the argument order and the op
order; the rounding of the real GPU code (libdevice) is checked on CUDA by ``tests/gpu``.

The interpreter computes ``tl.fma`` as ``a * b + c`` in float32 (two roundings); it is replaced
here by an exact one (the float64 sum of the exact product, rounded once: wrong only on ties so
rare that the fixed inputs below never meet one).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

if os.environ.get("TRITON_INTERPRET") != "1":
    sys.exit("set TRITON_INTERPRET=1 (Triton's CPU interpreter)")

import triton.runtime.interpreter as interpreter


def _exact_fma(self, x, y, z):
    wide = x.data.astype(np.float64) * y.data.astype(np.float64) + z.data.astype(np.float64)
    return interpreter.TensorHandle(wide.astype(z.data.dtype), z.dtype.scalar)


interpreter.InterpreterBuilder.create_fma = _exact_fma

from msoptim.kernels import _triton  # noqa: E402
from msoptim.kernels.adagrad import adagrad_reference  # noqa: E402
from msoptim.kernels.adam import _constants, adam_reference  # noqa: E402
from msoptim.kernels.adam_weight_decay import _one_minus, adam_weight_decay_reference  # noqa: E402
from msoptim.kernels.momentum import momentum_reference  # noqa: E402
from msoptim.kernels.rmsprop import _constants as rmsprop_constants  # noqa: E402
from msoptim.kernels.rmsprop import rmsprop_reference  # noqa: E402
from msoptim.kernels.sgd import _keep as sgd_keep  # noqa: E402
from msoptim.kernels.sgd import sgd_reference  # noqa: E402

# More than RMSPROP_TAIL_TENSORS tensors: two of the RMSProp kernel's tail programs.
SHAPES = [(), (1,), (3,), (7, 5), (8,), (2047,), (2049,), (4094,), (4096,), (5003,), (6151,)]
SHAPES += [(n,) for n in (2, 5, 9, 15, 16, 17, 23, 31)]
# Many scalar remainders: a rounding that differs on 1 element in 50 there still shows.
SHAPES += [(7,)] * 40
F32 = lambda value: float(np.float32(value))  # noqa: E731
failures: list[str] = []


def tensors(kind: str) -> list[torch.Tensor]:
    make = {"normal": torch.randn, "positive": lambda s: torch.rand(s) + 0.1}[kind]
    return [make(shape) for shape in SHAPES]


def compare(name: str, expected: list[list[torch.Tensor]], got: list[list[torch.Tensor]]) -> None:
    before = len(failures)
    for column, (a_list, b_list) in enumerate(zip(expected, got)):
        for a, b in zip(a_list, b_list):
            if not torch.equal(a.view(torch.int32), b.view(torch.int32)):
                failures.append(f"{name}: column {column}, shape {tuple(a.shape)}")
    print(f"{name}: {'same bits' if len(failures) == before else 'DIFFERS'}")


def twin(*columns: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    return [[t.clone() for t in column] for column in columns]


def run(name, reference, fast, columns, grads, steps=2):
    """``reference(columns, grads)`` and ``fast(copies, grads)`` ``steps`` times, then compare."""
    copies = twin(*columns)
    for _ in range(steps):
        reference(columns, grads)
        if not fast(copies, grads):
            failures.append(f"{name}: the multi-tensor kernel did not take the call")
            return
    compare(name, columns, copies)
    _triton.clear_tables()


def in_groups(reference, columns, grads, lrs):
    """``reference(columns, grads, lr)`` on each group (consecutive tensors, one lr each)."""
    start = 0
    for size, lr in lrs:
        part = slice(start, start + size)
        reference([column[part] for column in columns], grads[part], lr)
        start += size


#: Two groups (odd sizes: a group's tensors straddle the kernels' blocks of tensors) and their lrs.
GROUPS = [(31, torch.tensor(0.01)), (len(SHAPES) - 31, torch.tensor(0.37))]
PER_TENSOR_LR = [lr for size, lr in GROUPS for _ in range(size)]


def main() -> int:
    torch.manual_seed(0)
    lr = torch.tensor(0.01)
    for nesterov in (False, True):
        run(
            f"momentum nesterov={nesterov}",
            lambda c, g, n=nesterov: momentum_reference(
                c[0], g, c[1], lr=lr, momentum=0.9, nesterov=n
            ),
            lambda c, g, n=nesterov: _triton.momentum(
                (c[0], g, c[1]), lr, momentum=0.9, nesterov=n
            ),
            [tensors("normal"), tensors("normal")],
            tensors("normal"),
        )
    run(
        "momentum, two groups' lrs in one launch",
        lambda c, g: in_groups(
            lambda c, g, lr: momentum_reference(c[0], g, c[1], lr=lr, momentum=0.9, nesterov=False),
            c, g, GROUPS,
        ),
        lambda c, g: _triton.momentum((c[0], g, c[1]), PER_TENSOR_LR, momentum=0.9, nesterov=False),
        [tensors("normal"), tensors("normal")],
        tensors("normal"),
    )  # fmt: skip
    for momentum, dampening, nesterov in (
        (0.9, 0.0, False),
        (0.9, 0.1, False),
        (0.9, 0.0, True),
        (0.0, 0.0, False),
    ):
        kw = {"momentum": momentum, "dampening": dampening, "nesterov": nesterov}
        fast = {"momentum": momentum, "keep": sgd_keep(dampening), "nesterov": nesterov}
        run(
            f"sgd {kw}",
            lambda c, g, kw=kw: sgd_reference(c[0], g, c[1], c[2], lr=lr, **kw),
            lambda c, g, kw=fast: _triton.sgd((c[0], g, c[1], c[2]), lr, **kw),
            [tensors("normal"), tensors("normal"), [torch.ones(s) for s in SHAPES]],
            tensors("normal"),
        )
        run(  # past the first step (stat 0): the momentum buffer's update from the start
            f"sgd {kw} after the first step",
            lambda c, g, kw=kw: sgd_reference(c[0], g, c[1], c[2], lr=lr, **kw),
            lambda c, g, kw=fast: _triton.sgd((c[0], g, c[1], c[2]), lr, **kw),
            [tensors("normal"), tensors("normal"), [torch.zeros(s) for s in SHAPES]],
            tensors("normal"),
        )
    for momentum, dampening in ((0.9, 0.1), (0.0, 0.0)):
        kw = {"momentum": momentum, "dampening": dampening, "nesterov": False}
        fast = {"momentum": momentum, "keep": sgd_keep(dampening), "nesterov": False}
        run(
            f"sgd momentum={momentum}, two groups' lrs in one launch",
            lambda c, g, kw=kw: in_groups(
                lambda c, g, lr: sgd_reference(c[0], g, c[1], c[2], lr=lr, **kw), c, g, GROUPS
            ),
            lambda c, g, kw=fast: _triton.sgd((c[0], g, c[1], c[2]), PER_TENSOR_LR, **kw),
            [tensors("normal"), tensors("normal"), [torch.ones(s) for s in SHAPES]],
            tensors("normal"),
        )
    for update_slots in (True, False):
        run(
            f"adagrad update_slots={update_slots}",
            lambda c, g, u=update_slots: adagrad_reference(c[0], g, c[1], lr=lr, update_slots=u),
            lambda c, g, u=update_slots: _triton.adagrad((c[0], g, c[1]), lr, update_slots=u),
            [tensors("normal"), tensors("positive")],
            tensors("normal"),
        )
    for centered, pieces in ((False, 1.0), (False, 2.0), (True, 1.0)):
        # eps 1e-3: large enough that the vector loop's sqrt(ms) + eps and the scalar tail's
        # sqrt(ms + eps) give different bits; decay < 0.5: 1 - decay is not a float32 value, so
        # the scalar loop's double arithmetic shows; two pieces: MindSpore's launches 6-10
        constants = rmsprop_constants(0.2797, 0.9, 1e-3)
        hyper = {"decay": 0.2797, "momentum": 0.9, "epsilon": 1e-3, "centered": centered}
        chunks = torch.tensor(pieces, device=lr.device)
        extra = 3 if centered else 2
        run(
            f"rmsprop centered={centered} pieces={pieces:g}",
            lambda c, g, h=hyper, x=extra, p=chunks: rmsprop_reference(
                c[0], g, c[1], c[2], c[3] if x == 3 else None, lr=lr, **h, chunks=p
            ),
            lambda c, g, x=extra, k=constants, p=chunks: _triton.rmsprop(
                (c[0], g, c[1], c[2], *c[3 : x + 1]), lr, p, **k, decay=float(F32(0.2797))
            ),
            [tensors("normal"), tensors("positive"), tensors("normal"), tensors("normal")],
            tensors("normal"),
        )
    beta1, beta2, eps = F32(0.9), F32(0.999), F32(1e-8)
    beta1c, beta2c = _constants(beta1, beta2)
    for nesterov in (False, True):
        hyper = {"beta1": beta1, "beta2": beta2, "eps": eps, "nesterov": nesterov}
        run(
            f"adam nesterov={nesterov}",
            lambda c, g, h=hyper: adam_reference(c[0], g, c[1], c[2], c[3], c[4], lr=lr, **h),
            lambda c, g, h=hyper: _triton.adam(
                (c[0], g, c[1], c[2], c[3], c[4]), lr, beta1c=beta1c, beta2c=beta2c, **h
            ),
            [
                tensors("normal"),
                [0.1 * t for t in tensors("normal")],
                [0.1 * t for t in tensors("positive")],
                [torch.full((1,), beta1**3) for _ in SHAPES],
                [torch.full((1,), beta2**3) for _ in SHAPES],
            ],
            tensors("normal"),
        )
    adam_columns = [
        tensors("normal"),
        [0.1 * t for t in tensors("normal")],
        [0.1 * t for t in tensors("positive")],
        [torch.full((1,), beta1**3) for _ in SHAPES],
        [torch.full((1,), beta2**3) for _ in SHAPES],
    ]
    hyper = {"beta1": beta1, "beta2": beta2, "eps": eps, "nesterov": False}
    run(
        "adam, two groups' lrs in one launch",
        lambda c, g: in_groups(
            lambda c, g, lr: adam_reference(c[0], g, c[1], c[2], c[3], c[4], lr=lr, **hyper),
            c, g, GROUPS,
        ),
        lambda c, g: _triton.adam(
            (c[0], g, *c[1:5]), PER_TENSOR_LR, beta1c=beta1c, beta2c=beta2c, **hyper
        ),
        adam_columns,
        tensors("normal"),
    )  # fmt: skip
    decay = torch.tensor(0.01)
    awd = {"beta1": beta1, "beta2": beta2, "eps": F32(1e-6)}
    decays = [(GROUPS[0][0], decay), (GROUPS[1][0], torch.tensor(0.0))]
    run(
        "adam_weight_decay, two groups' lrs and decays in one launch",
        lambda c, g: [
            in_groups(
                lambda c, g, lr, d=d: adam_weight_decay_reference(
                    c[0], g, c[1], c[2], lr=lr, **awd, weight_decay=d
                ),
                [column[start : start + size] for column in c],
                g[start : start + size],
                [(size, lr)],
            )
            for (size, lr), (_, d), start in zip(GROUPS, decays, (0, GROUPS[0][0]))
        ],
        lambda c, g: _triton.adam_weight_decay(
            (c[0], g, c[1], c[2]),
            PER_TENSOR_LR,
            [d for size, d in decays for _ in range(size)],
            beta1c=_one_minus(beta1),
            beta2c=_one_minus(beta2),
            eps=F32(1e-6),
        ),
        [tensors("normal"), tensors("normal"), tensors("positive")],
        tensors("normal"),
    )
    run(
        "adam_weight_decay",
        lambda c, g: adam_weight_decay_reference(
            c[0], g, c[1], c[2], lr=lr, beta1=beta1, beta2=beta2, eps=F32(1e-6), weight_decay=decay
        ),
        lambda c, g: _triton.adam_weight_decay(
            (c[0], g, c[1], c[2]),
            lr,
            decay,
            beta1c=_one_minus(beta1),
            beta2c=_one_minus(beta2),
            eps=F32(1e-6),
        ),
        [tensors("normal"), tensors("normal"), tensors("positive")],
        tensors("normal"),
    )
    for failure in failures:
        print("DIFFERS:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
