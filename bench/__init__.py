"""Throughput of msoptim's kernels against torch.optim at the same math (``make bench``).

``python -m bench [--models resnet50,gpt2-small,many-small] [--optimizers Momentum,Adam,...]
[--repeats N] [--quick] [--device cpu|cuda]``; results and how to read them in ``RESULTS.md``.
"""
