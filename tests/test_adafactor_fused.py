"""AdaFactor's ``fused=True`` C kernel equals the reference bit for bit: parameters and all state.

The shapes cover each way the kernel walks a parameter: flat (0-d, 1-element, above and below
the 1,000-element RMS block), long rows (eight-row vector blocks with row and column tails),
short rows (3x3 kernels in groups of eight and a tail, 1x1 kernels, other small slices), and
what it leaves to the reference (a transposed parameter, a gradient of another layout, bfloat16).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import msoptim.kernels.adafactor as kernels
from msoptim.kernels import _native
from msoptim.optimizers.adafactor import AdaFactor
from native_kernels import assert_compiled_steps_equal_eager
from test_fast_path import bits, same_values

SHAPES = [
    (),
    (1,),
    (7,),
    (1500,),
    (3, 16),
    (2, 16, 1, 1),
    (2, 3, 2, 2),
    (19, 37),
    (5, 40, 24),
    (33, 2100),
    (9, 300),
    (1, 16),
    (16, 1),
    (8, 8),
    (300, 9),
    (64, 64, 3, 3),
    (3, 5, 3, 3),
    (256, 64, 1, 1),
    (2, 1, 40),
    (2, 9, 12),  # short rows (< 16) long enough for the eight-row vector block
    (2100, 3),  # short rows with too many of them for the short-row walk: the long-row one
]

CONFIGS = {
    "default": {},
    "no-first-moment-wd": {"beta1": None, "weight_decay": 0.1},
    "fixed-lr-wd": {"learning_rate": 0.1, "relative_step": False, "weight_decay": 0.05},
    "eps-clip": {"eps": (1e-3, 0.5), "clip_threshold": 0.5, "decay_rate": 0.5},
    "warmup-unscaled": {"warmup_init": True, "scale_parameter": False},
}

needs_compiler = pytest.mark.skipif(
    kernels._load_native() is None, reason="no C compiler: the fused path runs the reference"
)


def _params(shapes=SHAPES, seed: int = 1) -> list[tuple[str, torch.nn.Parameter]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (f"p{i}", torch.nn.Parameter(torch.randn(shape, generator=gen) * (i + 1)))
        for i, shape in enumerate(shapes)
    ]


def _run(
    kwargs: dict, fused: bool, shapes=SHAPES, steps: int = 3, grad_layout=None, grad_scale=0.1
):
    params = _params(shapes)
    opt = AdaFactor(params, **kwargs, fused=fused)
    gen = torch.Generator().manual_seed(2)
    for _ in range(steps):
        grads = [torch.randn(p.shape, generator=gen) * grad_scale for _, p in params]
        if grad_layout is not None:
            grads = [grad_layout(g) for g in grads]
        opt(tuple(grads))
    return [p for _, p in params], opt.ms_state_dict()


def _assert_same_run(kwargs: dict, **run) -> None:
    params_a, state_a = _run(kwargs, False, **run)
    params_b, state_b = _run(kwargs, True, **run)
    for index, (a, b) in enumerate(zip(params_a, params_b)):
        assert a.dtype == b.dtype
        assert a.stride() == b.stride()
        assert torch.equal(bits(a), bits(b)), f"parameter {index} differs"
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(bits(state_a[key]), bits(state_b[key])), f"{key} differs"


@pytest.fixture
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@needs_compiler
@pytest.mark.parametrize("name", list(CONFIGS))
def test_fused_equals_reference_bitwise(two_threads, name):
    _assert_same_run(CONFIGS[name])


@needs_compiler
def test_portable_build_equals_reference_bitwise(monkeypatch):
    """The kernel without its vector blocks (non-AVX machines) gives the same bits."""
    monkeypatch.setattr(kernels, "NATIVE_FLAGS", ("-DMSOPTIM_PORTABLE",))
    assert kernels._load_native(("-DMSOPTIM_PORTABLE",)) is not None
    _assert_same_run(CONFIGS["default"])


@needs_compiler
def test_the_c_kernel_takes_what_it_can_and_the_reference_the_rest(monkeypatch):
    calls = []
    real = kernels._load_native()

    def spy(*args):
        calls.append(args[1].value)  # the number of parameters handed to the C kernel
        return real(*args)

    monkeypatch.setattr(kernels, "_load_native", lambda extra_flags=(): spy)
    shapes = [(6, 5), (4, 3), (7,), (2, 2, 3)]
    params = _params(shapes)
    params.append(("t", torch.nn.Parameter(torch.randn(5, 4).t())))  # not contiguous
    params.append(("bf16", torch.nn.Parameter(torch.randn(3, 4).bfloat16())))
    opt = AdaFactor(params, fused=True)
    opt(tuple(torch.ones(p.shape, dtype=p.dtype) for _, p in params))
    assert calls == [len(shapes)]


def _other_layout(grad: torch.Tensor) -> torch.Tensor:
    """The same values with the last two axes stored swapped (not contiguous)."""
    if grad.ndim < 2:
        return grad
    return grad.transpose(-1, -2).contiguous().transpose(-1, -2)


@needs_compiler
def test_gradients_of_another_layout_and_16bit_parameters_fall_back_exactly():
    _assert_same_run(CONFIGS["default"], grad_layout=_other_layout)
    shapes = [(4, 6), (5,)]
    runs = []
    for fused in (False, True):
        gen = torch.Generator().manual_seed(0)
        params = [
            (f"p{i}", torch.nn.Parameter(torch.randn(s, generator=gen).bfloat16()))
            for i, s in enumerate(shapes)
        ]
        opt = AdaFactor(params, fused=fused)
        opt(tuple(torch.full(p.shape, 0.5, dtype=torch.bfloat16) for _, p in params))
        runs.append([p.detach().clone() for _, p in params])
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@needs_compiler
def test_the_row_sums_are_sequential_where_pairwise_sums_differ(two_threads):
    """Rows whose float32 total depends on the order: the C kernel adds in sequence, as the
    reference (and MindSpore) does; a pairwise total would differ on this data."""
    gen = torch.Generator().manual_seed(3)
    grad = torch.randn(24, 1001, generator=gen) * torch.logspace(-3, 3, 1001)
    upd = grad * grad
    sequential = kernels.sum_along(upd, -1)
    assert not torch.equal(sequential, upd.sum(-1)), "the data must make the order matter"
    results = []
    for fused in (False, True):
        param = torch.nn.Parameter(torch.ones(24, 1001))
        opt = AdaFactor([("w", param)], fused=fused)
        opt((grad.clone(),))
        results.append((param.detach().clone(), opt.state[param]["exp_avg_sq_row"].clone()))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_rms_above_one_block_is_the_float64_sum_rounded_once():
    x = torch.randn(5000, generator=torch.Generator().manual_seed(4))
    square = x * x
    want = torch.sqrt((square.double().sum().float() / 5000).double()).float()
    assert torch.equal(kernels._rms(x), want)


def test_without_a_compiler_the_fused_path_is_the_reference(monkeypatch, tmp_path):
    monkeypatch.setenv("MSOPTIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(_native, "_compiler", lambda: None)
    flags = ("-DMSOPTIM_TEST_NO_COMPILER",)
    assert _native.load("adafactor_native", flags) is None
    assert "no C compiler" in _native.unavailable_reason("adafactor_native", flags)
    monkeypatch.setattr(kernels, "NATIVE_FLAGS", flags)
    _assert_same_run(CONFIGS["no-first-moment-wd"], shapes=[(6, 20), (3,), (4, 4, 3, 3)])


def test_a_failing_build_says_why(monkeypatch, tmp_path):
    monkeypatch.setenv("MSOPTIM_CACHE_DIR", str(tmp_path))
    flags = ("-DMSOPTIM_TEST_BAD_FLAG", "--no-such-option-for-any-compiler")
    if _native._compiler() is None:
        pytest.skip("no C compiler")
    assert _native.load("adafactor_native", flags) is None
    assert "failed" in _native.unavailable_reason("adafactor_native", flags)


def test_fused_and_foreach_together_are_refused():
    with pytest.raises(ValueError, match="'foreach' and 'fused' cannot both"):
        AdaFactor([("w", torch.nn.Parameter(torch.ones(2)))], foreach=True, fused=True)


@needs_compiler
@pytest.mark.parametrize(
    "kwargs", [{}, {"learning_rate": [0.1, 0.05, 0.02], "relative_step": False}]
)
def test_the_fused_step_never_syncs_with_the_host(kwargs):
    from test_compile import NoHostSync

    params = _params([(6, 20), (3,), (4, 4, 3, 3)])
    opt = AdaFactor(params, **kwargs, fused=True)
    for _ in range(3):  # the first step too (state initialisation, the kernel's build)
        with NoHostSync():
            opt(tuple(torch.ones(p.shape) for _, p in params))
    assert int(opt.global_step) == 3


@needs_compiler
def test_under_torch_compile_the_fused_step_is_the_reference_math():
    """Dynamo cannot trace a ctypes call: while it traces, the step is the reference's (which the
    caller's compiler then fuses itself); the results equal an eager fused run's."""
    shapes = {"p0": (6, 20), "p1": (3,), "p2": (4, 4, 3, 3)}
    assert_compiled_steps_equal_eager(lambda named: AdaFactor(named, fused=True), shapes)


@needs_compiler
def test_the_c_kernel_bumps_version_counters():
    """Autograd must see the in-place update: a parameter saved for backward, then stepped."""
    params = _params([(6, 20), (3,), (4, 4, 3, 3)])
    opt = AdaFactor(params, fused=True)
    weight = params[0][1]
    state_before = None
    for step in range(2):
        if step == 1:
            state_before = opt.state[weight]["exp_avg_sq_row"]._version
        before = weight._version
        opt(tuple(torch.ones(p.shape) for _, p in params))
        assert weight._version > before
    assert opt.state[weight]["exp_avg_sq_row"]._version > state_before
    saved = (weight * weight).sum()  # saves weight for backward
    opt(tuple(torch.ones(p.shape) for _, p in params))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        saved.backward()


def test_an_unwritable_cache_directory_falls_back_to_a_temporary_one(monkeypatch, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setattr(_native.tempfile, "gettempdir", lambda: str(tmp_path))
    chosen = _native._writable(blocked / "cache")
    assert chosen.parent == tmp_path
    assert chosen.name.startswith("msoptim-")


_DIMENSION = st.sampled_from([1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 33])


@needs_compiler
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    shapes=st.lists(st.lists(_DIMENSION, min_size=0, max_size=4), min_size=1, max_size=4),
    config=st.sampled_from(sorted(CONFIGS)),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
)
def test_random_shapes_and_configs_equal_the_reference(shapes, config, scale):
    """Shapes drawn from lengths around the vector widths (tails of 1-7, whole blocks of 8)."""
    shapes = [tuple(s) for s in shapes]
    params_a, state_a = _run(CONFIGS[config], False, shapes=shapes, steps=2, grad_scale=scale)
    params_b, state_b = _run(CONFIGS[config], True, shapes=shapes, steps=2, grad_scale=scale)
    for a, b in zip(params_a, params_b):
        assert torch.equal(bits(a), bits(b))
    for key in state_a:
        assert torch.equal(bits(state_a[key]), bits(state_b[key])), key


@needs_compiler
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), -0.0])
def test_non_finite_and_signed_zero_gradients_match_the_reference(value):
    shapes = [(19, 37), (3, 9, 3, 3), (2, 16, 1, 1), (1500,), (5,)]

    def poisoned(grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        grad.view(-1)[:: max(1, grad.numel() // 3)] = value
        return grad

    params_a, state_a = _run(CONFIGS["default"], False, shapes=shapes, grad_layout=poisoned)
    params_b, state_b = _run(CONFIGS["default"], True, shapes=shapes, grad_layout=poisoned)
    for index, (a, b) in enumerate(zip(params_a, params_b)):
        assert same_values(a.detach(), b.detach()), f"parameter {index}"
    for key in state_a:
        assert same_values(state_a[key], state_b[key]), key


def test_the_kernel_builds_wherever_there_is_a_compiler():
    """The tests above skip without a C compiler; with one, a failing build must not hide."""
    if _native._compiler() is None:
        pytest.skip("no C compiler on this machine")
    assert kernels._load_native() is not None, _native.unavailable_reason("adafactor_native")
    assert kernels._load_native(("-DMSOPTIM_PORTABLE",)) is not None


@needs_compiler
@pytest.mark.parametrize("openmp", [True, False], ids=["openmp-workers", "own-threads"])
@pytest.mark.parametrize("threads", [2, 3, 4])
@pytest.mark.parametrize("config", ["default", "no-first-moment-wd"])
def test_tensors_larger_than_a_share_are_walked_by_all_threads_exactly(
    monkeypatch, threads, config, openmp
):
    """From three threads on, a tensor above an even share of the step is split across them
    phase by phase (rows and columns, slices, elements); the sums keep their order, the bits
    stay the reference's. (Two threads: the queue, for comparison.) The threads are torch's
    OpenMP workers (where torch has an OpenMP runtime) or the kernel's own."""
    if openmp and _native.openmp_entry_points() is None:
        pytest.skip("torch has no OpenMP runtime here")
    monkeypatch.setattr(kernels, "USE_OPENMP", openmp)
    shapes = [(3, 50, 700), (1201, 37), (700, 12, 3, 3), (300, 64, 1, 1), (2, 9, 12), (5,)]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for shape in shapes[:4]:  # each alone: the whole step is that tensor
            _assert_same_run(CONFIGS[config], shapes=[shape, (5,)], steps=2)
        _assert_same_run(CONFIGS[config], shapes=shapes, steps=2)
    finally:
        torch.set_num_threads(before)
