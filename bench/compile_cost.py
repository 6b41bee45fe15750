"""``python -m bench.compile_cost OPTIMIZER MODEL``: the first fused step (which compiles) and the
next one, in this fresh process; prints one JSON line. ``bench.run`` runs it with an empty and then
a warm Inductor cache (``TORCHINDUCTOR_CACHE_DIR``)."""

from __future__ import annotations

import json
import sys
import time

import torch

from bench.run import make_params, model_shapes, set_grads
from bench.variants import SPECS
from msoptim.kernels import _fused


def main(argv: list[str]) -> int:
    optimizer, model = argv
    params = make_params(model_shapes(model, quick=False), torch.device("cpu"))
    set_grads(params, torch.device("cpu"))
    opt = SPECS[optimizer].build(params, fused=True)
    start = time.perf_counter()
    opt.step()
    first = time.perf_counter() - start
    start = time.perf_counter()
    opt.step()
    following = time.perf_counter() - start
    kernels = [{"name": n, "serial": s, "s": t} for n, _, s, t in _fused.compile_log()]
    print(json.dumps({"first_step_s": first, "next_step_s": following, "kernels": kernels}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
