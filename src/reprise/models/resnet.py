"""ResNet-18, CIFAR variant (He et al. 2016): a 3x3 stem without max-pooling, so 32x32 inputs
keep their resolution into the first stage.

    conv3x3(64) norm relu | 4 stages of 2 BasicBlocks (64, 128, 256, 512; strides 1, 2, 2, 2)
    | global average pool = features (512) | linear = head

Channel counts scale with `width`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from reprise.models.base import ImageClassifier, channels, norm2d


class BasicBlock(nn.Module):
    """conv-norm-relu-conv-norm, plus the (projected) input, then relu."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.norm1 = norm2d(norm, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, padding=1, bias=False)
        self.norm2 = norm2d(norm, c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), norm2d(norm, c_out)
            )

    def forward(self, x):
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def stages(block, widths, blocks_per_stage, strides, c_in, norm) -> nn.Sequential:
    """Residual stages; the first block of each stage changes width and stride."""
    layers = []
    for c_out, n, stride in zip(widths, blocks_per_stage, strides, strict=True):
        for s in [stride] + [1] * (n - 1):
            layers.append(block(c_in, c_out, s, norm))
            c_in = c_out
    return nn.Sequential(*layers)


class ResNet18(ImageClassifier):
    def __init__(self, num_classes=10, width=1.0, norm="bn", in_channels=3, mean=None, std=None):
        widths = [channels(c, width) for c in (64, 128, 256, 512)]
        super().__init__(num_classes, widths[-1], in_channels, mean, std)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, padding=1, bias=False),
            norm2d(norm, widths[0]),
            nn.ReLU(),
        )
        self.stages = stages(BasicBlock, widths, [2, 2, 2, 2], [1, 2, 2, 2], widths[0], norm)

    def trunk(self, x):
        x = self.stages(self.stem(x))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
