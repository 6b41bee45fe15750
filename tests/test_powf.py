"""``msoptim._powf.powf`` is the C library's ``powf`` (glibc's algorithm), bit for bit.

MindSpore's CPU ``Pow`` kernel calls ``powf``; the schedules use ours. Compared with the C
library's own ``powf`` where it is glibc's algorithm (skipped elsewhere), on random and edge
inputs, through both entry points (a tensor base, and a constant base given by its ``log2``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from msoptim._powf import exp2_of_product, log2_constant, powf
from powf_reference import KNOWN, glibc_powf

LIBM_POWF = glibc_powf()


def _libm(bases: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    return np.array([LIBM_POWF(b, e) for b, e in zip(bases, exponents)], dtype=np.float32)


def _same_bits(actual: torch.Tensor, expected: np.ndarray) -> np.ndarray:
    actual = actual.numpy()
    return (actual.view(np.int32) == expected.view(np.int32)) | (
        np.isnan(actual) & np.isnan(expected)
    )


def _inputs(kind: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "decay":  # schedule-like: bases in (0, 2), exponents of either sign
        return rng.uniform(0, 2, n), rng.uniform(-60, 60, n)
    if kind == "wide":  # bases over the whole float32 range
        return np.exp(rng.uniform(-87, 88, n)), rng.uniform(-3, 3, n)
    if kind == "integer":
        return rng.uniform(0.25, 4, n), rng.integers(-120, 120, n)
    if kind == "negative":  # integer and fractional exponents
        exponents = rng.integers(-40, 40, n).astype(np.float64)
        exponents[::2] += rng.uniform(-1, 1, n // 2)
        return -rng.uniform(0.1, 3, n), exponents
    if kind == "subnormal":
        return rng.uniform(1, 2**23, n) * 2.0**-149, rng.uniform(-1, 1, n)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["decay", "wide", "integer", "negative", "subnormal"])
def test_tensor_base_matches_the_c_library(kind):
    bases, exponents = (
        a.astype(np.float32) for a in _inputs(kind, np.random.default_rng(len(kind)), 20_000)
    )
    expected = _libm(bases, exponents)
    same = _same_bits(powf(torch.from_numpy(bases), torch.from_numpy(exponents)), expected)
    assert same.all(), (bases[~same][:5], exponents[~same][:5], expected[~same][:5])


@pytest.mark.parametrize("base", [0.9, 0.999, 2.0, 3.3, float(np.float32(np.e)), 1e-30, 1e30])
def test_constant_base_matches_the_c_library(base):
    exponents = np.random.default_rng(7).uniform(-200, 200, 20_000).astype(np.float32)
    exponents[:3] = (0.0, 1.0, -1.0)
    log2_base = log2_constant(base)
    assert log2_base is not None
    actual = exp2_of_product(torch.from_numpy(exponents), log2_base)
    expected = _libm(np.full_like(exponents, base), exponents)
    assert _same_bits(actual, expected).all()


def test_special_values_follow_c():
    inf, nan = float("inf"), float("nan")
    bases = torch.tensor([0.0, 0.0, 0.0, 1.0, inf, inf, 2.0, 2.0, 0.5, nan, 2.0, 1.0])
    exponents = torch.tensor([2.0, -2.0, 0.0, nan, 2.0, -2.0, 200.0, -200.0, 0.0, 1.0, nan, inf])
    expected = torch.tensor([0.0, inf, 1.0, 1.0, inf, 0.0, inf, 0.0, 1.0, nan, nan, 1.0])
    torch.testing.assert_close(powf(bases, exponents), expected, equal_nan=True, rtol=0, atol=0)
    assert log2_constant(0.0) is None
    assert log2_constant(inf) is None


@pytest.mark.parametrize(("args", "mindspore"), KNOWN)
def test_values_mindspore_gave(args, mindspore):
    """Not the correctly rounded power: ``powf``'s own last bit, and no float32 products."""
    assert powf(torch.tensor(args[0]), args[1]).item() == np.float32(mindspore)
