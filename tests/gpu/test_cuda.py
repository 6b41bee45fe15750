"""CUDA: a whole training step captured in a CUDA graph, no host sync in a step, fast == reference.

Skipped cleanly without CUDA. What is checked, for static, table and schedule lrs:

1. A training step (forward, backward, ``opt.step()``) captured once with ``torch.cuda.graph``
   and replayed gives the same parameters as the same steps run eagerly (the lr is read from
   ``global_step`` on the device, so replays follow the table/schedule).
2. Eager steps run under ``torch.cuda.set_sync_debug_mode("error")``: any device-to-host copy
   (``.item()``, ``bool(t)``, ``nonzero``) raises.
3. ``fused=True`` (Triton kernels, FMA contraction off) and ``foreach`` equal the reference loop
   bit for bit on CUDA, parameters and state; the multi-tensor kernels of Momentum, SGD, Adam,
   AdamWeightDecay, Adagrad and RMSProp too (one launch for all groups of Momentum, Adam and
   AdamWeightDecay), on lengths around their block size and
   MindSpore's 8-wide remainder, and they leave odd layouts to the per-tensor path.

Note: host-side bookkeeping is not replayed by a CUDA graph (``opt._host_step``, the
past-the-end check of a table); the device ``global_step`` is. Build tables for the whole run.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import msoptim
from test_lr_kernels import SCHEDULES as CPU_SCHEDULES
from test_lr_kernels import STEPS as SCHEDULE_STEPS

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

DEVICE = "cuda"
STEPS = 5


def lr_of(kind: str, base: float):
    if kind == "table":
        return [base * (1.0 - 0.05 * i) for i in range(64)]
    if kind == "schedule":
        return msoptim.CosineDecayLR(0.1 * base, base, 40)
    return base


def model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(32, 64), nn.LayerNorm(64), nn.ReLU(), nn.Linear(64, 8)).to(
        DEVICE
    )


def batches(count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator(device="cpu").manual_seed(7)
    return [
        (torch.randn(16, 32, generator=g).to(DEVICE), torch.randn(16, 8, generator=g).to(DEVICE))
        for _ in range(count)
    ]


OPTIMIZERS = [
    ("Momentum", {"momentum": 0.9}),
    ("Adam", {}),
    ("AdamWeightDecay", {"weight_decay": 0.01}),
]


def build(net: nn.Module, name: str, kwargs: dict, kind: str, **impl) -> msoptim.Optimizer:
    base = 0.01
    return getattr(msoptim, name)(
        msoptim.trainable_params(net), learning_rate=lr_of(kind, base), **kwargs, **impl
    )


@pytest.mark.parametrize("kind", ["static", "table", "schedule"])
@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS, ids=[n for n, _ in OPTIMIZERS])
@pytest.mark.parametrize("impl", [{"foreach": True}, {"fused": True}], ids=["foreach", "fused"])
def test_cuda_graph_replays_a_whole_training_step(name, kwargs, kind, impl):
    data = batches(3 + STEPS)
    eager_net, graph_net = model(), model()
    eager_opt = build(eager_net, name, kwargs, kind, **impl)
    graph_opt = build(graph_net, name, kwargs, kind, **impl)
    loss_fn = nn.MSELoss()

    for x, y in data:  # the eager twin: every step
        eager_opt.zero_grad(set_to_none=False)
        loss_fn(eager_net(x), y).backward()
        eager_opt.step()

    static_x, static_y = data[0][0].clone(), data[0][1].clone()

    def train_step() -> None:
        graph_opt.zero_grad(set_to_none=False)
        loss_fn(graph_net(static_x), static_y).backward()
        graph_opt.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up: state, compiled kernels, autograd buffers
        for x, y in data[:3]:
            static_x.copy_(x)
            static_y.copy_(y)
            train_step()
    torch.cuda.current_stream().wait_stream(side)

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        train_step()
    for x, y in data[3:]:
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
    torch.cuda.synchronize()

    assert int(graph_opt.global_step) == len(data)
    for a, b in zip(eager_net.parameters(), graph_net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["static", "table", "schedule"])
@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS, ids=[n for n, _ in OPTIMIZERS])
@pytest.mark.parametrize("impl", [{"foreach": False}, {"foreach": True}, {"fused": True}], ids=str)
def test_no_host_sync_in_a_step(name, kwargs, kind, impl):
    net = model()
    opt = build(net, name, kwargs, kind, **impl)
    x, y = batches(1)[0]
    nn.MSELoss()(net(x), y).backward()
    opt.step()  # first step: state, compiles (fused=True)
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            opt.step()
    finally:
        torch.cuda.set_sync_debug_mode(previous)


CASES = [
    ("Momentum", {"learning_rate": 0.1, "momentum": 0.9}),
    ("Momentum", {"learning_rate": 0.1, "momentum": 0.9, "use_nesterov": True}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "dampening": 0.1}),
    ("Adam", {"learning_rate": 0.01}),
    ("AdamWeightDecay", {"learning_rate": 0.01, "weight_decay": 0.01}),
    ("AdaMax", {"learning_rate": 0.01}),
    ("RMSProp", {"learning_rate": 0.01, "momentum": 0.9, "centered": True}),
    ("Adagrad", {"learning_rate": 0.1}),
    ("ProximalAdagrad", {"learning_rate": 0.1, "l1": 0.01, "l2": 0.01}),
    ("Adadelta", {"learning_rate": 1.0}),
    ("FTRL", {"learning_rate": 0.1, "l1": 0.01}),
    ("ASGD", {"learning_rate": 0.1, "t0": 1.0}),
    ("Rprop", {"learning_rate": 0.1}),
    ("Lamb", {"learning_rate": 0.01, "weight_decay": 0.01}),
]


def mixed_params(seed: int = 0) -> list[tuple[str, nn.Parameter]]:
    g = torch.Generator(device="cpu").manual_seed(seed)
    shapes = {"s.w": (), "o.b": (1,), "c.w": (4, 8, 3, 3), "f.w": (33, 7), "big.w": (40000,)}
    return [(n, nn.Parameter(torch.randn(s, generator=g).to(DEVICE))) for n, s in shapes.items()]


def bits(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    if not t.is_floating_point():
        return t
    return t.contiguous().view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def assert_same_bits(reference, fast, params_a, params_b, step: int) -> None:
    """Parameters and every state tensor of the two optimizers hold the same bits."""
    for (n, a), (_, b) in zip(params_a, params_b):
        assert torch.equal(bits(a), bits(b)), f"step {step}: {n}"
    sa, sb = reference.ms_state_dict(), fast.ms_state_dict()
    for key in sa:
        assert torch.equal(bits(sa[key]), bits(sb[key])), f"step {step}: {key}"


def step_both_with_the_same_bits(reference, fast, params_a, params_b, seed: int) -> None:
    """Three steps of both optimizers on the same random gradients, the same bits after each."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    for step in range(3):
        grads = tuple((0.5 * torch.randn(p.shape, generator=g)).to(DEVICE) for _, p in params_a)
        reference(grads)
        fast(tuple(x.clone() for x in grads))
        assert_same_bits(reference, fast, params_a, params_b, step)


@pytest.mark.parametrize(
    ("name", "kwargs"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
)
@pytest.mark.parametrize("impl", [{"foreach": True}, {"fused": True}], ids=["foreach", "fused"])
def test_fast_paths_equal_the_reference_on_cuda(name, kwargs, impl):
    cls = getattr(msoptim, name)
    params_a, params_b = mixed_params(), mixed_params()
    reference = cls(params_a, **kwargs, foreach=False)
    fast = cls(params_b, **kwargs, **impl)
    step_both_with_the_same_bits(reference, fast, params_a, params_b, seed=1)


@pytest.mark.parametrize(
    ("name", "kwargs"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
)
def test_the_cuda_reference_has_the_cpu_bits(name, kwargs):
    """MindSpore's values are CPU values: the eager reference on CUDA must compute the same bits
    as on CPU (no device-dependent arithmetic such as a division by a Python number)."""
    cls = getattr(msoptim, name)
    on_cpu = [(n, nn.Parameter(p.detach().cpu())) for n, p in mixed_params()]
    on_cuda = mixed_params()
    cpu, cuda = cls(on_cpu, **kwargs, foreach=False), cls(on_cuda, **kwargs, foreach=False)
    g = torch.Generator(device="cpu").manual_seed(2)
    for step in range(3):
        grads = tuple(0.5 * torch.randn(p.shape, generator=g) for _, p in on_cpu)
        cpu(grads)
        cuda(tuple(x.to(DEVICE) for x in grads))
        for (n, a), (_, b) in zip(on_cpu, on_cuda):
            assert torch.equal(bits(a), bits(b.cpu())), f"step {step}: {n}"


# ------------------------------------------------------------------ multi-tensor (Triton) kernels

MULTI_TENSOR = [
    ("Momentum", {"learning_rate": 0.1, "momentum": 0.9}),
    ("Momentum", {"learning_rate": 0.1, "momentum": 0.9, "use_nesterov": True}),
    ("Adam", {"learning_rate": 0.01}),
    ("Adam", {"learning_rate": 0.01, "use_nesterov": True}),
    ("AdamWeightDecay", {"learning_rate": 0.01, "weight_decay": 0.1}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "dampening": 0.1, "nesterov": False}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"learning_rate": 0.1}),
    ("Adagrad", {"learning_rate": 0.1}),
    ("Adagrad", {"learning_rate": 0.1, "update_slots": False}),
    ("RMSProp", {"learning_rate": 0.01, "momentum": 0.9}),
    ("RMSProp", {"learning_rate": 0.01, "momentum": 0.9, "centered": True}),
]
#: Lengths around the block size (2048) and MindSpore's 8-wide remainder, 0-d and 1-element; more
#: tensors than one program of RMSProp's scalar-loop elements takes (RMSPROP_TAIL_TENSORS).
LENGTHS = [(), (1,), (7,), (8,), (2047,), (2048,), (2049,), (4103,), (33, 7), (300, 301), (100003,)]
LENGTHS += [(n,) for n in (2, 5, 9, 15, 16, 17, 23)]


def many_params(seed: int) -> list[tuple[str, nn.Parameter]]:
    g = torch.Generator(device="cpu").manual_seed(seed)
    return [
        (
            f"p{i}.weight" if len(s) > 1 else f"p{i}.gamma",
            nn.Parameter(torch.randn(s, generator=g).to(DEVICE)),
        )
        for i, s in enumerate(LENGTHS)
    ]


@pytest.mark.parametrize(
    ("name", "kwargs"), MULTI_TENSOR, ids=[f"{n}-{i}" for i, (n, _) in enumerate(MULTI_TENSOR)]
)
def test_multi_tensor_kernels_equal_the_reference_bit_for_bit(name, kwargs):
    from msoptim.kernels import _triton

    _triton.clear_tables()
    cls = getattr(msoptim, name)
    params_a, params_b = many_params(0), many_params(0)
    reference = cls(params_a, **kwargs, foreach=False)
    fast = cls(params_b, **kwargs, fused=True)
    g = torch.Generator(device="cpu").manual_seed(2)
    # RMSProp splits launches 6-10 into two pieces, each with its own scalar tail (launch_chunks).
    for step in range(12 if name == "RMSProp" else 4):
        grads = tuple((0.5 * torch.randn(p.shape, generator=g)).to(DEVICE) for _, p in params_a)
        grads[4].mul_(1e-37)  # subnormal squares and moments: nothing may flush them to zero
        if step == 2:  # new gradient tensors at new addresses: the kept table is refreshed
            grads = tuple(x.clone() for x in grads)
        reference(grads)
        fast(tuple(x.clone() for x in grads))
        assert_same_bits(reference, fast, params_a, params_b, step)
    assert _triton._STEP_EXTENSION, "the multi-tensor kernel did not run"


def test_multi_tensor_kernels_leave_odd_layouts_to_the_per_tensor_path():
    from msoptim.kernels import _triton

    _triton.clear_tables()
    base = torch.randn(4097, device=DEVICE)
    odd = [
        ("t.weight", nn.Parameter(torch.randn(8, 6, device=DEVICE).t())),  # not contiguous
        ("o.gamma", nn.Parameter(base[1:])),  # 4 bytes past an aligned address
    ]
    twin = [(n, nn.Parameter(p.detach().clone())) for n, p in odd]
    fast = msoptim.Adam(odd, learning_rate=0.01, fused=True)
    reference = msoptim.Adam(twin, learning_rate=0.01, foreach=False)
    grads = tuple(torch.randn(p.shape, device=DEVICE) for _, p in odd)
    fast(grads)
    reference(grads)
    for (_, a), (_, b) in zip(odd, twin):
        assert torch.equal(bits(a), bits(b))
    assert not _triton._STEP_EXTENSION


@pytest.mark.parametrize(
    "name", ["Momentum", "Adam", "AdamWeightDecay", "SGD", "Adagrad", "RMSProp"]
)
def test_cuda_default_is_the_multi_tensor_kernel_unless_foreach_is_asked_for(name):
    from msoptim.kernels import _triton

    cls = getattr(msoptim, name)
    kwargs = {"momentum": 0.9} if name == "Momentum" else {}
    for impl, expected in (({}, True), ({"foreach": True}, False), ({"fused": False}, False)):
        _triton.clear_tables()
        params = many_params(3)
        cls(params, learning_rate=0.01, **kwargs, **impl)(
            tuple(torch.ones_like(p) for _, p in params)
        )
        assert bool(_triton._STEP_EXTENSION) == expected, impl


# ------------------------------------------------------------------ several groups, one launch

#: (optimizer, arguments, Triton launches a step: Adam's powers kernel and its update).
GROUPED = [
    ("Momentum", {"momentum": 0.9}, 1),
    ("Momentum", {"momentum": 0.9, "use_nesterov": True}, 1),
    ("Adam", {}, 2),
    ("AdamWeightDecay", {"weight_decay": 0.1}, 1),
    ("SGD", {"momentum": 0.9, "dampening": 0.1}, 1),
    ("SGD", {}, 1),
]


def seed_recipe(params: list[tuple[str, nn.Parameter]]) -> list[dict]:
    """MindSpore's grouping recipe: a dynamic table, a schedule, a static lr (with a weight decay
    of its own) and the default lr."""
    tensors = [p for _, p in params]
    return [
        {"params": tensors[:6], "lr": msoptim.cosine_decay_lr(0.001, 0.01, 64, 4, 8)},
        {"params": tensors[6:11], "lr": msoptim.CosineDecayLR(0.001, 0.01, 40)},
        {"params": tensors[11:15], "lr": 0.005, "weight_decay": 0.0},
        {"params": tensors[15:]},
    ]


@pytest.mark.parametrize(
    ("name", "kwargs", "launches"), GROUPED, ids=[f"{n}-{i}" for i, (n, *_) in enumerate(GROUPED)]
)
def test_groups_share_one_multi_tensor_launch_with_the_reference_bits(
    name, kwargs, launches, monkeypatch
):
    from msoptim.kernels import _triton

    _triton.clear_tables()
    ran: list[str] = []
    run = _triton._run
    monkeypatch.setattr(
        _triton,
        "_run",
        lambda kernel, *a, **k: (ran.append(_triton._name(kernel)), run(kernel, *a, **k)),
    )
    import msoptim.optimizer

    compiled: list[list[bool]] = []
    evaluate = msoptim.optimizer.evaluate_lrs
    monkeypatch.setattr(
        msoptim.optimizer,
        "evaluate_lrs",
        lambda *a: compiled.append(evaluate(*a)) or compiled[-1],
    )
    cls = getattr(msoptim, name)
    params_a, params_b = many_params(4), many_params(4)
    reference = cls(seed_recipe(params_a), learning_rate=0.01, **kwargs, foreach=False)
    fast = cls(seed_recipe(params_b), learning_rate=0.01, **kwargs)  # the CUDA default
    g = torch.Generator(device="cpu").manual_seed(5)
    for step in range(5):
        grads = tuple((0.5 * torch.randn(p.shape, generator=g)).to(DEVICE) for _, p in params_a)
        ran.clear()
        compiled.clear()
        reference(grads)
        fast(tuple(x.clone() for x in grads))
        assert_same_bits(reference, fast, params_a, params_b, step)
        assert len(ran) == launches, ran
        # the default's lrs (a table, a schedule, two static) are compiled too; the reference's not
        assert compiled == [[True] * 4], compiled


def test_without_triton_the_cuda_default_neither_launches_nor_compiles_the_lrs(monkeypatch):
    """A CUDA machine where Triton does not run: the default step is the per-tensor path and the
    lrs are evaluated eagerly (compiling them would need Triton too), with the reference bits."""
    from msoptim.kernels import _triton

    monkeypatch.setattr(_triton, "triton", None)
    _triton.clear_tables()
    params_a, params_b = many_params(9), many_params(9)
    reference = msoptim.Adam(seed_recipe(params_a), learning_rate=0.01, foreach=False)
    default = msoptim.Adam(seed_recipe(params_b), learning_rate=0.01)
    assert default._compiled_lrs() == {}
    step_both_with_the_same_bits(reference, default, params_a, params_b, seed=9)
    assert not _triton._STEP_EXTENSION


def test_groups_with_a_tensor_the_launch_cannot_take_step_group_by_group():
    from msoptim.kernels import _triton

    _triton.clear_tables()
    params_a, params_b = many_params(6), many_params(6)
    for params in (params_a, params_b):  # a transposed parameter in the schedule's group
        params[8] = ("t.weight", nn.Parameter(params[8][1].detach().t()))
    reference = msoptim.Momentum(seed_recipe(params_a), 0.01, 0.9, foreach=False)
    fast = msoptim.Momentum(seed_recipe(params_b), 0.01, 0.9, fused=True)
    g = torch.Generator(device="cpu").manual_seed(6)
    for step in range(3):
        grads = tuple(torch.randn(p.shape, generator=g).to(DEVICE) for _, p in params_a)
        reference(grads)
        fast(tuple(x.clone() for x in grads))
        assert_same_bits(reference, fast, params_a, params_b, step)


def test_graphs_of_two_optimizers_over_the_same_parameters_replay_in_turn():
    """One static group and two groups over the same parameters, in another order but with the
    same first and last (as the benchmark's ResNet-50 recipe), each step captured: replays in
    turn equal the same steps run eagerly (a table a graph reads outlives its call site's)."""
    graphed, eager = many_params(8), many_params(8)
    for params in (graphed, eager):
        for _, p in params:
            p.grad = torch.full_like(p, 0.01)
    tensors = [[p for _, p in params] for params in (graphed, eager)]

    def two_groups(items):
        return [
            {"params": [items[0], *items[2:9]], "lr": msoptim.CosineDecayLR(0.001, 0.01, 40)},
            {"params": [items[1], *items[9:]]},
        ]

    graph_opts = [
        msoptim.Adam(tensors[0], 0.01, fused=True),
        msoptim.Adam(two_groups(tensors[0]), 0.01, fused=True),
    ]
    eager_opts = [
        msoptim.Adam(tensors[1], 0.01, fused=True),
        msoptim.Adam(two_groups(tensors[1]), 0.01, fused=True),
    ]
    replays = []
    for opt in graph_opts:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                opt.step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            opt.step()
        replays.append(graph.replay)
    for opt in eager_opts:
        for _ in range(3):
            opt.step()
    for _ in range(4):
        for replay, opt in zip(replays, eager_opts):
            replay()
            opt.step()
    torch.cuda.synchronize()
    for (name, a), (_, b) in zip(graphed, eager):
        assert torch.equal(bits(a), bits(b)), name


def test_every_groups_lr_is_one_kernel_launch():
    from msoptim.kernels import lr as lr_kernels

    params = many_params(7)
    opt = msoptim.Momentum(seed_recipe(params), 0.01, 0.9, fused=True)
    grads = tuple(torch.ones_like(p) for _, p in params)
    opt(grads)  # compiles
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        opt(grads)
        torch.cuda.synchronize()
    kernels = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    # the lrs, the update, global_step += 1
    assert len(kernels) == 3, kernels
    assert len(lr_kernels._GROUP_KERNELS) >= 1


# ------------------------------------------------------------------ schedules: CUDA == CPU

# The CPU lr-kernel test's schedules (but its static lr) and a stair whose decay_steps has an
# inexact float32 reciprocal (41 * (1/41) = 0.99999994).
SCHEDULES = {name: make for name, make in CPU_SCHEDULES.items() if name != "static"}
SCHEDULES["exponential-stair-41"] = lambda: msoptim.ExponentialDecayLR(0.1, 0.9, 41, is_stair=True)


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_on_cuda_have_the_cpu_bits(name):
    """MindSpore's values are CPU values: eager CUDA must not turn ``step / decay_steps`` into a
    multiplication by a float32 reciprocal (``msoptim._division``)."""
    schedule = SCHEDULES[name]()
    steps = torch.tensor(SCHEDULE_STEPS, dtype=torch.int32)
    cpu = torch.stack([schedule(s.reshape(1)) for s in steps])
    cuda = torch.stack([schedule(s.reshape(1).to(DEVICE)) for s in steps]).cpu()
    differ = (cpu.view(torch.int32) != cuda.view(torch.int32)).nonzero().flatten()
    assert differ.numel() == 0, f"{name}: steps {steps[differ[:5]].tolist()} differ"


@pytest.mark.parametrize("name", [*SCHEDULES, "static"])
def test_compiled_lrs_on_cuda_have_the_cpu_bits(name):
    """Compiled on CUDA (msoptim.kernels.lr), an lr must have MindSpore's (the CPU's) bits at
    every step of the range: no division by a constant turned into a reciprocal multiplication
    (H200, session 9: six kinds an ulp off at some steps before msoptim._division's op)."""
    from msoptim.kernels import lr as lr_kernels
    from msoptim.kernels.lr import evaluate_lr
    from msoptim.lr_sources import ConstantLR

    assert lr_kernels.COMPILED_ON_CUDA
    schedule = SCHEDULES[name]() if name in SCHEDULES else ConstantLR(torch.tensor(0.05))
    cuda_source = ConstantLR(schedule.lr.to(DEVICE)) if name == "static" else schedule
    step, out = torch.zeros(1, dtype=torch.int32, device=DEVICE), torch.zeros((), device=DEVICE)
    got = []
    for value in SCHEDULE_STEPS:
        step.fill_(value)
        assert evaluate_lr(cuda_source, step, out), "this source should run compiled on CUDA"
        got.append(out.clone())
    steps = torch.tensor(SCHEDULE_STEPS, dtype=torch.int32)
    cpu = torch.stack([schedule(s.reshape(1)).reshape(()).float() for s in steps])
    cuda = torch.stack(got).cpu()
    differ = (cpu.view(torch.int32) != cuda.view(torch.int32)).nonzero().flatten()
    assert differ.numel() == 0, f"{name}: steps {steps[differ[:5]].tolist()} differ"


def test_every_kind_in_one_lr_kernel_on_cuda_has_the_cpu_bits():
    """The groups' lr kernel (msoptim.kernels.lr.evaluate_lrs: every kind fused into one kernel
    on CUDA) has MindSpore's (the CPU's) bits for every kind at every step of the range."""
    from msoptim.kernels.lr import evaluate_lrs
    from msoptim.lr_sources import ConstantLR, TableLR

    values = torch.tensor(msoptim.cosine_decay_lr(0.001, 0.1, 3000, 4, 100), dtype=torch.float32)
    schedules = [make() for make in SCHEDULES.values()]
    cpu_sources = [*schedules, ConstantLR(torch.tensor(0.05)), TableLR(values)]
    cuda_sources = [
        *schedules,
        ConstantLR(torch.tensor(0.05, device=DEVICE)),
        TableLR(values.to(DEVICE)),
    ]
    outs = [torch.zeros((), device=DEVICE) for _ in cuda_sources]
    step = torch.zeros(1, dtype=torch.int32, device=DEVICE)
    steps = [s for s in SCHEDULE_STEPS if s < len(values)]
    got = []
    for value in steps:
        step.fill_(value)
        assert evaluate_lrs(cuda_sources, step, outs) == [True] * len(outs)
        got.append(torch.stack(outs))
    cuda = torch.stack(got).cpu()
    cpu = torch.stack(
        [
            torch.stack([source(torch.tensor([s], dtype=torch.int32)).reshape(()).float()
                         for source in cpu_sources])
            for s in steps
        ]
    )  # fmt: skip
    differ = (cpu.view(torch.int32) != cuda.view(torch.int32)).nonzero()
    assert differ.numel() == 0, f"(step index, source) differing: {differ[:5].tolist()}"


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_compiled_by_the_user_on_cuda_have_the_cpu_bits(name):
    """A user's ``torch.compile`` of a schedule on CUDA with ``msoptim.exact_compile_options()``
    keeps the CPU's bits (with Inductor's defaults, FMA contraction and Triton's approximate
    division put eight of these kinds an ulp off: H200, session 10)."""
    schedule = SCHEDULES[name]()
    compiled = torch.compile(
        lambda step: schedule(step), fullgraph=True, dynamic=False,
        options=msoptim.exact_compile_options(),
    )  # fmt: skip
    steps = torch.tensor(SCHEDULE_STEPS, dtype=torch.int32)
    cpu = torch.stack([schedule(s.reshape(1)) for s in steps])
    cuda = torch.stack([compiled(s.reshape(1).to(DEVICE)) for s in steps]).cpu()
    differ = (cpu.view(torch.int32) != cuda.view(torch.int32)).nonzero().flatten()
    assert differ.numel() == 0, f"{name}: steps {steps[differ[:5]].tolist()} differ"


def test_a_stair_compiled_with_inductors_defaults_steps_on_time():
    """The division op is an IEEE division on CUDA even under Inductor's default options (no
    reciprocal of the constant 41; ``div_rn`` or, on torch 2.11, the eager op)."""
    from msoptim._division import divide_by_number

    compiled = torch.compile(lambda step: torch.floor(divide_by_number(step, 41.0)), dynamic=False)
    steps = torch.arange(0, 5000, dtype=torch.float32)
    assert torch.equal(compiled(steps.to(DEVICE)).cpu(), torch.floor(steps / 41.0))
