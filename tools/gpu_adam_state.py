"""Does Adam's CUDA-graph step time depend on its data or on where its buffers lie? (needs CUDA)

Usage: ``python tools/gpu_adam_state.py``. A probe (a new ``msoptim.Adam(fused=True)`` on the
GPT-2 shapes, its step captured and replayed) is timed on fresh parameters, after reference steps
(other values), on a copy at new addresses, beside and after a foreach optimizer, and after each
part of ``bench.cuda_graph``'s sequence for Adam. Findings: ``bench/RESULTS.md`` (GPU section).
"""

from __future__ import annotations

import torch
from bench.cuda_graph import Captured, device_ms, variants
from bench.run import make_params, model_shapes, set_grads
from bench.variants import SPECS

import msoptim

SHAPES = model_shapes("gpt2-small", False)
CUDA = torch.device("cuda")


def probe(params) -> str:
    step = msoptim.Adam(params, learning_rate=1e-3, fused=True).step
    return f"{device_ms(Captured(step), 20):.3f} ms"


def fresh_params():
    params = make_params(SHAPES, CUDA)
    set_grads(params, CUDA)
    return params


def values_and_addresses() -> None:
    params = fresh_params()
    print("fresh parameters:", probe(params))
    reference = msoptim.Adam(params, learning_rate=1e-3, foreach=False)
    for _ in range(30):
        reference.step()
    print("after 30 reference steps (other values):", probe(params))
    for name in ("moment1", "moment2"):
        flat = torch.cat([reference.state[p][name].flatten() for _, p in params])
        subnormal = ((flat != 0) & (flat.abs() < torch.finfo(torch.float32).tiny)).sum().item()
        print(f"  reference {name}: {subnormal} subnormal values")
    copies = [(name, torch.nn.Parameter(p.detach().clone())) for name, p in params]
    for (_, copy), (_, p) in zip(copies, params):
        copy.grad = p.grad.clone()
    print("a copy at new addresses (same values):", probe(copies))
    foreach = msoptim.Adam(copies, learning_rate=1e-3, foreach=True)
    device_ms(foreach.step, 5)
    print("beside a foreach optimizer's state:", probe(copies))
    del foreach
    print("after it is freed:", probe(copies))


def bench_sequence() -> None:
    params = fresh_params()
    print("bench.cuda_graph's sequence; first probe:", probe(params))
    for label, build in variants(SPECS["Adam"], params):
        eager = device_ms(build(False).step, 20)
        print(f"{label} eager {eager:.3f} ms; probe:", probe(params))
        replay = device_ms(Captured(build(True).step), 20)
        print(f"{label} graph {replay:.3f} ms; probe:", probe(params))


if __name__ == "__main__":
    values_and_addresses()
    torch.cuda.empty_cache()
    bench_sequence()
