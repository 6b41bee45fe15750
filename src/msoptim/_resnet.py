"""A small ResNet for 8x8 single-channel images (the demo's model; no torchvision needed).

The layout follows ResNet's recipe at toy scale: a 3x3 stem, basic residual blocks (two 3x3
convolutions with batch norm, an identity or 1x1 projection shortcut), global average pooling and a
dense classifier. Convolutions have no bias (batch norm follows them), so the parameters fall into
the four groups of MindSpore's grouping example: conv weights, BN gamma/beta, the dense weight,
and the rest (the dense bias).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["BasicBlock", "ResNet", "small_resnet"]


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with a residual shortcut (ResNet-18's block).

    Args:
        in_channels: input channels.
        channels: output channels.
        stride: stride of the first convolution (2 halves the resolution).
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.down_sample: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.down_sample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.down_sample(x))


class ResNet(nn.Module):
    """Stem, residual stages, global average pooling and a dense classifier.

    Args:
        widths: channels of each stage; every stage after the first halves the resolution.
        blocks: basic blocks per stage.
        num_classes: outputs of the classifier.
        in_channels: channels of the input images.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64),
        blocks: int = 1,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        stages = []
        channels = widths[0]
        for index, width in enumerate(widths):
            layer = [BasicBlock(channels, width, stride=1 if index == 0 else 2)]
            layer += [BasicBlock(width, width) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layer))
            channels = width
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        """Logits of shape ``(batch, num_classes)`` for images of shape ``(batch, C, H, W)``."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.layers(x))
        return self.fc(torch.flatten(x, 1))


def small_resnet(num_classes: int = 10) -> ResNet:
    """The demo's network: a 32-channel stem and two stages (32 and 64 channels) of one block.

    About 76k parameters; on 8x8 digits it trains to ~99% held-out accuracy in seconds on a CPU.
    """
    return ResNet(widths=(32, 64), blocks=1, num_classes=num_classes)
