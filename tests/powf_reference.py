"""C ``powf`` from the C library, as MindSpore's CPU ``Pow`` kernel calls it (test helper).

glibc 2.28+ and musl compute ``powf`` with Arm's algorithm, which :mod:`msoptim._powf` follows.
Where the C library is another one (or absent), tests that need it skip.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import pytest

#: Two values MindSpore 2.10 gave (``ops.pow`` on CPU): where ``powf`` is not correctly rounded
#: (the exact power rounds to 1.5274351) and an integer exponent (float32 products give 35.936996).
KNOWN = (((2.0, 0.6111111), 1.5274352), ((3.3, 3.0), 35.937))


def glibc_powf() -> Callable[[float, float], float]:
    """The C library's ``powf``, or a function that skips the calling test."""
    name = ctypes.util.find_library("m")
    try:
        function = ctypes.CDLL(name).powf if name else None
    except OSError:
        function = None
    if function is not None:
        function.restype = ctypes.c_float
        function.argtypes = [ctypes.c_float, ctypes.c_float]
        import numpy as np

        if all(np.float32(function(*args)) == np.float32(want) for args, want in KNOWN):
            return function

    def unavailable(base: float, exponent: float) -> float:
        pytest.skip("this C library's powf is not glibc's (MindSpore's) algorithm")

    return unavailable
