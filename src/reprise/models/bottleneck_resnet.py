"""ResNet-50/101/152, ImageNet variant (He et al. 2016; the "v1.5" layout with the stride on
the 3×3 convolution): a 7×7 stride-2 stem with max-pooling, then bottleneck blocks.

    conv7x7(64)/2 norm relu maxpool3x3/2 | 4 stages of Bottlenecks (widths 64, 128, 256,
    512, output 4× that; strides 1, 2, 2, 2; [3, 4, 6, 3] blocks for depth 50, [3, 4, 23, 3]
    for 101, [3, 8, 36, 3] for 152) | global average pool = features (2048) | linear = head

Module names follow torchvision's resnet50 (conv1, bn1, layer1..layer4, each block's conv1-3,
bn1-3, downsample), so its published ImageNet weights load by name (`reprise.models.
pretrained`); only its `fc` is this project's `head`. Channel counts scale with `width`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from reprise.errors import ConfigError
from reprise.models.base import ImageClassifier, channels, norm2d

EXPANSION = 4
BLOCKS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (strided), 1×1 expand, each with norm; plus the (projected) input."""

    def __init__(self, c_in: int, width: int, stride: int, norm: str):
        super().__init__()
        c_out = width * EXPANSION
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = norm2d(norm, width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=1, bias=False)
        self.bn2 = norm2d(norm, width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = norm2d(norm, c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), norm2d(norm, c_out)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class BottleneckResNet(ImageClassifier):
    def __init__(
        self, depth=50, num_classes=1000, width=1.0, norm="bn", in_channels=3, mean=None, std=None
    ):
        if depth not in BLOCKS:
            raise ConfigError(f"ResNet depth = {depth}; expected one of {sorted(BLOCKS)}")
        widths = [channels(c, width) for c in (64, 128, 256, 512)]
        super().__init__(num_classes, widths[-1] * EXPANSION, in_channels, mean, std)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, padding=3, bias=False)
        self.bn1 = norm2d(norm, widths[0])
        c_in = widths[0]
        plan = zip(widths, BLOCKS[depth], (1, 2, 2, 2), strict=True)
        for i, (w, n, stride) in enumerate(plan, start=1):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(Bottleneck(c_in, w, s, norm))
                c_in = w * EXPANSION
            setattr(self, f"layer{i}", nn.Sequential(*blocks))

    def stem(self, x):
        return F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, padding=1)

    def trunk(self, x):
        x = self.stem(x)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
