"""Why a captured 4-group step read an out-of-range global_step in bench.cuda_graph's group cost
(ResNet-50 shapes). Run on a GPU: ``PYTHONPATH=src:. python bench/results/h100-2026-11-26e/diagnose_group_graphs.py``."""

import sys

import torch
from bench.cuda_graph import Captured, device_activities
from bench.run import make_params, model_shapes, seed_groups, set_grads
from torch._dynamo.utils import counters

import msoptim

params = make_params(model_shapes("resnet50", False), torch.device("cuda"))
set_grads(params, torch.device("cuda"))
with_eager = sys.argv[1:] == ["eager"]
layouts = (params, seed_groups(params, 1e-3))
eager = [msoptim.Adam(groups, learning_rate=1e-3, fused=True) for groups in layouts]
graphed = [msoptim.Adam(groups, learning_rate=1e-3, fused=True) for groups in layouts]
replays = []
for opt in graphed:
    before = dict(counters["stats"])
    replays.append(Captured(opt.step))
    torch.cuda.synchronize()
    print(
        "captured; global_step",
        opt.global_step.tolist(),
        hex(opt.global_step.data_ptr()),
        "dynamo stats delta",
        {k: v - before.get(k, 0) for k, v in counters["stats"].items()},
    )
if with_eager:
    for opt in eager:
        print("eager activities", device_activities(opt.step))
        for _ in range(30):
            opt.step()
    torch.cuda.synchronize()
for round_ in range(40):
    for replay in replays:
        replay()
        torch.cuda.synchronize()
    if round_ % 10 == 0:
        print(
            "round",
            round_,
            [opt.global_step.tolist() for opt in graphed],
            [hex(opt.global_step.data_ptr()) for opt in graphed],
        )
print("ok")
