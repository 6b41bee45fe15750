"""bench.cuda_graph's group cost on ResNet-50 shapes (Adam), as the benchmark runs it, with one
part of the grouped step switched off: ``plain`` (nothing off), ``lr-per-group`` (each group's lr
its own kernel), ``launch-per-group`` (each group's own Triton launch). Run on a GPU:
``PYTHONPATH=src:. python bench/results/h100-2026-11-26e/diagnose_group_cost.py plain``."""

import sys

import torch
from bench.cuda_graph import group_cost
from bench.run import make_params, model_shapes, set_grads

import msoptim.kernels
import msoptim.optimizers.adam
from msoptim.kernels import lr as lr_kernels

variant = sys.argv[1]
if variant == "lr-per-group":
    lr_kernels.ONE_KERNEL_DEVICES = ()
elif variant == "launch-per-group":
    msoptim.optimizers.adam.together_device = lambda params: None
params = make_params(model_shapes("resnet50", False), torch.device("cuda"))
set_grads(params, torch.device("cuda"))
try:
    print(variant, group_cost(["Adam"], "resnet50", params, 20))
except Exception as error:  # report the failure and go on with the next variant
    print(variant, "failed:", type(error).__name__, str(error).splitlines()[0])
