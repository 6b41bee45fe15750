"""Parameter shapes of real models, without torchvision or transformers.

ResNet-50 (161 tensors, 25,557,032 parameters), GPT-2 small (148 tensors, 124,439,808 parameters with
tied embeddings), and a many-small-tensors case.
"""

from __future__ import annotations

Shape = tuple[int, ...]


def _bn(channels: int) -> list[Shape]:
    return [(channels,), (channels,)]


def resnet50_shapes() -> list[Shape]:
    """torchvision's resnet50() parameter shapes, in named_parameters() order."""
    shapes: list[Shape] = [(64, 3, 7, 7), *_bn(64)]
    in_channels = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for block in range(blocks):
            out_channels = width * 4
            shapes += [(width, in_channels, 1, 1), *_bn(width)]
            shapes += [(width, width, 3, 3), *_bn(width)]
            shapes += [(out_channels, width, 1, 1), *_bn(out_channels)]
            if block == 0:
                shapes += [(out_channels, in_channels, 1, 1), *_bn(out_channels)]
            in_channels = out_channels
    shapes += [(1000, 2048), (1000,)]
    return shapes


def gpt2_small_shapes() -> list[Shape]:
    """GPT-2 small (n_embd 768, 12 layers, vocab 50257, context 1024), tied lm head."""
    d = 768
    shapes: list[Shape] = [(50257, d), (1024, d)]
    for _ in range(12):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,)]
        shapes += [(d,), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,)]
    shapes += [(d,), (d,)]
    return shapes


def many_small_shapes() -> list[Shape]:
    """1,000 tensors of 1 to 4,096 elements: launch overhead dominates."""
    return [((i * 37) % 4096 + 1,) for i in range(1000)]


MODELS = {
    "resnet50": resnet50_shapes,
    "gpt2-small": gpt2_small_shapes,
    "many-small": many_small_shapes,
}
