"""PreAct ResNet-18 (He et al. 2016, "Identity Mappings"): normalisation and relu come before
each convolution, and the trunk ends with a final norm-relu.

    conv3x3(64) | 4 stages of 2 PreActBlocks (64, 128, 256, 512; strides 1, 2, 2, 2)
    | norm relu | global average pool = features (512) | linear = head

Channel counts scale with `width`. The standard backbone of adversarial-training papers.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from reprise.models.base import ImageClassifier, channels, norm2d
from reprise.models.resnet import stages


class PreActBlock(nn.Module):
    """norm-relu-conv-norm-relu-conv, plus the input (projected from the first pre-activation)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str):
        super().__init__()
        self.norm1 = norm2d(norm, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.norm2 = norm2d(norm, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x):
        out = F.relu(self.norm1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.norm2(out)))
        return out + skip


class PreActResNet18(ImageClassifier):
    def __init__(self, num_classes=10, width=1.0, norm="bn", in_channels=3, mean=None, std=None):
        widths = [channels(c, width) for c in (64, 128, 256, 512)]
        super().__init__(num_classes, widths[-1], in_channels, mean, std)
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, padding=1, bias=False)
        self.stages = stages(PreActBlock, widths, [2, 2, 2, 2], [1, 2, 2, 2], widths[0], norm)
        self.final_norm = norm2d(norm, widths[-1])

    def trunk(self, x):
        x = self.stages(self.stem(x))
        x = F.relu(self.final_norm(x))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
