"""How many kernels the groups' lr kernel (msoptim.kernels.lr.evaluate_lrs) launches on CUDA under
several Inductor option sets: the one msoptim uses first. Run on a GPU:
``PYTHONPATH=src python bench/results/h100-2026-11-26e/probe_lr_fusion.py``."""

import torch

import msoptim
from msoptim.kernels import lr as lr_kernels
from msoptim.lr_sources import ConstantLR, TableLR

VARIANTS = {
    "msoptim's": dict(lr_kernels.GROUP_FUSION_OPTIONS),
    "aggressive only": {"aggressive_fusion": True},
    "combo kernels": {"combo_kernels": True},
    "all three": {**lr_kernels.GROUP_FUSION_OPTIONS, "combo_kernels": True},
}
table = TableLR(torch.tensor(msoptim.cosine_decay_lr(0.001, 0.01, 64, 4, 8), device="cuda"))
sources = [
    table,
    msoptim.CosineDecayLR(0.001, 0.01, 40),
    ConstantLR(torch.tensor(0.005, device="cuda")),
    ConstantLR(torch.tensor(0.01, device="cuda")),
]
step = torch.tensor([5], dtype=torch.int32, device="cuda")
for name, options in VARIANTS.items():
    lr_kernels.GROUP_FUSION_OPTIONS = options
    lr_kernels._GROUP_KERNELS.clear()
    outs = [torch.zeros((), device="cuda") for _ in sources]
    try:
        lr_kernels.evaluate_lrs(sources, step, outs)
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            lr_kernels.evaluate_lrs(sources, step, outs)
            torch.cuda.synchronize()
        kernels = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        expected = [source(step).reshape(()).float() for source in sources]
        same = all(
            torch.equal(o.view(torch.int32), e.view(torch.int32)) for o, e in zip(outs, expected)
        )
        print(f"{name}: {len(kernels)} kernels, eager CUDA bits: {same}; {kernels}")
    except Exception as error:  # a probe reports and goes on
        print(f"{name}: failed: {type(error).__name__}: {error}")
