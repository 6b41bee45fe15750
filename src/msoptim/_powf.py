"""C ``powf`` as glibc computes it, with tensor ops: MindSpore's float32 ``Pow`` on CPU, bit for bit.

MindSpore's CPU ``Pow`` kernel calls C ``powf`` for every element, integer exponents included
(``Pow(3.3, 3)`` is 35.937, where float32 products give 35.936996). glibc (2.28 and later) and
musl compute ``powf`` with Arm's algorithm: ``x ** y = 2 ** (y * log2(x))``, ``log2`` from a
16-entry table and a degree-5 polynomial, ``exp2`` from a 32-entry table and a cubic, all in
double, and one rounding to float32 at the end. It is accurate to 0.82 ulp, not correctly rounded:
``powf(2, 0.6111111)`` is 1.5274352 where the exact power rounds to 1.5274351, and a learning rate
multiplied by it lands 2 ulp away. So the schedules follow the algorithm itself, step for step in
float64 tensor ops (no host sync, capturable, compilable); only its tables and coefficients are
glibc's, the code is ours.

A double intermediate here may differ from glibc's in the last bit (glibc's FMA build fuses
``a*b + c``); the float32 result moves only if that double lies within 2**-29 relative of a
rounding boundary, far rarer than anything a schedule evaluates.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["exp2_of_product", "log2_constant", "powf", "powf_log2"]

# log2(x) = k + log2(c) + log1p(z/c - 1)/ln2 for x = 2**k * z, z in [0x3f330000, 2 * 0x3f330000):
# (1/c, log2(c)) for each of the 16 subintervals, and the polynomial in r = z/c - 1.
_LOG2_TABLE = (
    ("0x1.661ec79f8f3bep+0", "-0x1.efec65b963019p-2"),
    ("0x1.571ed4aaf883dp+0", "-0x1.b0b6832d4fca4p-2"),
    ("0x1.49539f0f010bp+0", "-0x1.7418b0a1fb77bp-2"),
    ("0x1.3c995b0b80385p+0", "-0x1.39de91a6dcf7bp-2"),
    ("0x1.30d190c8864a5p+0", "-0x1.01d9bf3f2b631p-2"),
    ("0x1.25e227b0b8eap+0", "-0x1.97c1d1b3b7afp-3"),
    ("0x1.1bb4a4a1a343fp+0", "-0x1.2f9e393af3c9fp-3"),
    ("0x1.12358f08ae5bap+0", "-0x1.960cbbf788d5cp-4"),
    ("0x1.0953f419900a7p+0", "-0x1.a6f9db6475fcep-5"),
    ("0x1p+0", "0x0p+0"),
    ("0x1.e608cfd9a47acp-1", "0x1.338ca9f24f53dp-4"),
    ("0x1.ca4b31f026aap-1", "0x1.476a9543891bap-3"),
    ("0x1.b2036576afce6p-1", "0x1.e840b4ac4e4d2p-3"),
    ("0x1.9c2d163a1aa2dp-1", "0x1.40645f0c6651cp-2"),
    ("0x1.886e6037841edp-1", "0x1.88e9c2c1b9ff8p-2"),
    ("0x1.767dcf5534862p-1", "0x1.ce0a44eb17bccp-2"),
)
_INV_C = tuple(float.fromhex(inv_c) for inv_c, _ in _LOG2_TABLE)
_LOG2_C = tuple(float.fromhex(log2_c) for _, log2_c in _LOG2_TABLE)
_LOG2_POLY = tuple(
    float.fromhex(a)
    for a in (
        "0x1.27616c9496e0bp-2",
        "-0x1.71969a075c67ap-2",
        "0x1.ec70a6ca7baddp-2",
        "-0x1.7154748bef6c8p-1",
        "0x1.71547652ab82bp0",
    )
)
_LOG2_OFFSET = 0x3F330000  # the float32 bits where the first subinterval starts
_EXPONENT_MASK = -0x800000  # 0xff800000 as int32: sign and exponent bits

# 2 ** (i/32) as glibc stores it (bits minus i << 47), and the cubic for 2 ** r, |r| <= 1/64.
_EXP2_BITS = (
    0x3FF0000000000000, 0x3FEFD9B0D3158574, 0x3FEFB5586CF9890F, 0x3FEF9301D0125B51,
    0x3FEF72B83C7D517B, 0x3FEF54873168B9AA, 0x3FEF387A6E756238, 0x3FEF1E9DF51FDEE1,
    0x3FEF06FE0A31B715, 0x3FEEF1A7373AA9CB, 0x3FEEDEA64C123422, 0x3FEECE086061892D,
    0x3FEEBFDAD5362A27, 0x3FEEB42B569D4F82, 0x3FEEAB07DD485429, 0x3FEEA47EB03A5585,
    0x3FEEA09E667F3BCD, 0x3FEE9F75E8EC5F74, 0x3FEEA11473EB0187, 0x3FEEA589994CCE13,
    0x3FEEACE5422AA0DB, 0x3FEEB737B0CDC5E5, 0x3FEEC49182A3F090, 0x3FEED503B23E255D,
    0x3FEEE89F995AD3AD, 0x3FEEFF76F2FB5E47, 0x3FEF199BDD85529C, 0x3FEF3720DCEF9069,
    0x3FEF5818DCFBA487, 0x3FEF7C97337B9B5F, 0x3FEFA4AFA2A490DA, 0x3FEFD0765B6E4540,
)  # fmt: skip
_EXP2_TABLE_BITS = tuple(bits + (i << 47) for i, bits in enumerate(_EXP2_BITS))
_EXP2_POLY = tuple(
    float.fromhex(c)
    for c in ("0x1.c6af84b912394p-5", "0x1.ebfce50fac4f3p-3", "0x1.62e42ff0c52d6p-1")
)
#: Above this ``y * log2(x)`` the power overflows float32; at or below -150 it is 0.
_OVERFLOW = float.fromhex("0x1.fffffffd1d571p+6")
_UNDERFLOW = -150.0


_STEP_EXTENSION: dict[tuple[int, torch.device], Tensor] = {}  # keyed by the id of a module constant


def _table(values: tuple[float, ...] | tuple[int, ...], like: Tensor, dtype: torch.dtype) -> Tensor:
    """A constant table on ``like``'s device, made once per device (no copy to a GPU per call, so
    none inside a CUDA-graph capture after the first call)."""
    if torch.compiler.is_compiling():
        return torch.tensor(values, dtype=dtype, device=like.device)  # a constant of the graph
    key = (id(values), like.device)
    table = _STEP_EXTENSION.get(key)
    if table is None:
        table = _STEP_EXTENSION[key] = torch.tensor(values, dtype=dtype, device=like.device)
    return table


_POSITIONS = {length: tuple(range(length)) for length in (16, 32)}


def _lookup(
    values: tuple[float, ...] | tuple[int, ...], index: Tensor, dtype: torch.dtype
) -> Tensor:
    """``values[index]`` for an int64 tensor of any shape, as a masked sum (exact: one term is
    not zero). A gather would make ``torch.compile(dynamic=True)`` guard on the index's value."""
    positions = _table(_POSITIONS[len(values)], index, torch.int64)
    selected = torch.where(index.unsqueeze(-1) == positions, _table(values, index, dtype), 0)
    return selected.sum(-1)


def powf_log2(x: Tensor) -> Tensor:
    """glibc's ``log2`` inside ``powf``, float64, for positive finite float32 ``x`` (subnormals too)."""
    bits = x.view(torch.int32)
    # A subnormal is scaled into the normal range and its exponent taken back out.
    scaled = (x * 8388608.0).view(torch.int32) - (23 << 23)
    bits = torch.where(bits < 0x800000, scaled, bits)
    offset = bits - _LOG2_OFFSET
    index = torch.bitwise_and(torch.bitwise_right_shift(offset, 19), 15).long()
    top = torch.bitwise_and(offset, _EXPONENT_MASK)
    z = (bits - top).view(torch.float32).double()
    k = torch.bitwise_right_shift(top, 23).double()
    inv_c = _lookup(_INV_C, index, torch.float64)
    log2_c = _lookup(_LOG2_C, index, torch.float64)
    a0, a1, a2, a3, a4 = _LOG2_POLY
    r = z * inv_c - 1.0
    r2 = r * r
    high = (r * a0 + a1) * (r2 * r2)
    return high + ((r * a2 + a3) * r2 + (r * a4 + (log2_c + k)))


def _exp2(t: Tensor) -> Tensor:
    """glibc's ``exp2`` inside ``powf``: float64 ``t`` in (-150, 128] to the float32 ``2 ** t``."""
    n = torch.round(t * 32.0)  # t = n/32 + r, ties to even like glibc's shift trick
    r = t - n / 32.0
    n = n.long()
    index = torch.remainder(n, 32)
    exponent = torch.div(n - index, 32, rounding_mode="floor")
    bits = _lookup(_EXP2_TABLE_BITS, index, torch.int64) + exponent * (1 << 52)
    scale = bits.view(torch.float64)
    c0, c1, c2 = _EXP2_POLY
    y = (r * c0 + c1) * (r * r) + (r * c2 + 1.0)
    return (y * scale).float()


def _exp2_of_product(y: Tensor, log2_x: Tensor | float) -> Tensor:
    t = y.double() * log2_x
    power = _exp2(t.clamp(_UNDERFLOW - 1.0, 129.0))
    power = torch.where(t > _OVERFLOW, torch.inf, power)
    power = torch.where(t <= _UNDERFLOW, 0.0, power)
    return torch.where(torch.isnan(t), torch.nan, power)


def powf(x: Tensor | float, y: Tensor | float) -> Tensor:
    """``x ** y`` in float32 exactly as glibc's ``powf`` (each of them a tensor or a float).

    One of ``x``, ``y`` is a float32 tensor (the result takes its shape and device), the other a
    tensor or a Python float (rounded to float32 first). Special values follow C: ``x ** 0 = 1``,
    ``1 ** y = 1``, ``0 ** y`` is 0 (``y > 0``) or inf (``y < 0``), NaN in, NaN out, a negative
    ``x`` gives NaN unless ``y`` is an integer (then the sign of ``(-1) ** y``).

    Example:
        >>> import torch
        >>> powf(3.3, torch.tensor(3.0)).item()  # float32 products give 35.936996...
        35.9370002746582
    """
    like = x if isinstance(x, Tensor) else y
    assert isinstance(like, Tensor)
    x = x.float() if isinstance(x, Tensor) else torch.tensor(x, dtype=torch.float32)
    y = y.float() if isinstance(y, Tensor) else torch.tensor(y, dtype=torch.float32)
    x, y = x.to(like.device), y.to(like.device)
    x, y = torch.broadcast_tensors(x, y)
    magnitude = x.abs()
    positive = torch.where(magnitude > 0, magnitude, 1.0)  # zeros and NaNs are replaced below
    power = _exp2_of_product(y, powf_log2(torch.where(torch.isinf(positive), 1.0, positive)))
    power = torch.where(torch.isinf(x), torch.where(y > 0, torch.inf, 0.0), power)
    # A negative base: NaN unless y is an integer, negated for an odd one.
    integer = y == torch.trunc(y)
    odd = integer & (torch.fmod(y, 2.0) != 0)
    signed = torch.where(odd, -power, torch.where(integer, power, torch.nan))
    power = torch.where(x < 0, signed, power)
    power = torch.where(x == 0, torch.where(y > 0, 0.0, torch.inf), power)
    power = torch.where(torch.isnan(x) | torch.isnan(y), torch.nan, power)
    return torch.where((y == 0) | (x == 1), 1.0, power)


def log2_constant(x: float) -> float | None:
    """:func:`powf_log2` of a Python float (rounded to float32), as a Python float (at set-up);
    None where ``powf`` treats ``x`` as a special value (0, inf, NaN, negative)."""
    x32 = torch.tensor(x, dtype=torch.float32)
    if not (torch.isfinite(x32) and x32 > 0):
        return None
    return float(powf_log2(x32))


def exp2_of_product(y: Tensor, log2_x: float) -> Tensor:
    """``powf(x, y)`` for a constant positive finite ``x`` given as ``log2_constant(x)``."""
    return torch.where(y == 0, 1.0, _exp2_of_product(y, log2_x))
