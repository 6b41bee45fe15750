"""GPU: where an eager ``fused=True`` Adam step on GPT-2 shapes spends its host time (cProfile)."""

from __future__ import annotations

import cProfile
import pstats

import torch
from bench.run import make_params, model_shapes, set_grads

import msoptim

params = make_params(model_shapes("gpt2-small", False), torch.device("cuda"))
set_grads(params, torch.device("cuda"))
for name in ("Adam", "RMSProp"):
    opt = getattr(msoptim, name)(params, learning_rate=1e-3, fused=True)
    for _ in range(3):
        opt.step()
    torch.cuda.synchronize()
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(20):
        opt.step()
    torch.cuda.synchronize()
    profile.disable()
    print(f"--- {name}: 20 steps")
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)
