#!/usr/bin/env bash
# One device call: GPU tests, then the CUDA benchmarks. Logs go to $OUT (the device tool's
# folder that comes back); usage on the GPU machine: bash tools/gpu_session.sh [tests|bench|all]
# (TEST_ARGS: pytest's selection instead of the GPU tests; GRAPH_ARGS: bench.cuda_graph's options)
set -u
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
export PYTHONPATH=src:. PYTHONUNBUFFERED=1
what=${1:-all}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
  nproc
} 2>&1 | tee "$OUT/env.txt"
if [[ $what == tests || $what == all ]]; then
  timeout "${TEST_TIMEOUT:-300}" python3 -m pytest -q -p no:cacheprovider -n 8 -rf \
    ${TEST_ARGS:--m gpu tests/gpu tests/test_adam.py} 2>&1 | tee "$OUT/tests.txt" | tail -40
fi
if [[ $what == bench || $what == all ]]; then
  timeout "${BENCH_TIMEOUT:-240}" python3 -m bench.cuda_graph ${GRAPH_ARGS:-} 2>&1 | tee "$OUT/graph.txt"
fi
