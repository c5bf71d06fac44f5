"""A small CNN for smoke runs: two conv pairs, global pooling, one hidden linear layer.

    [conv3x3(c) norm relu] x2, maxpool | [conv3x3(2c) norm relu] x2, maxpool
    | global average pool | linear(2c -> 4c) relu  = features (4c) | linear = head

c = 32 at width 1. Global pooling makes it work for any input size (8x8 digits, 32x32 CIFAR).
"""

from __future__ import annotations

from torch import nn

from reprise.models.base import ImageClassifier, channels, norm2d


def conv_block(c_in: int, c_out: int, norm: str) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), norm2d(norm, c_out), nn.ReLU()]


class SmallCNN(ImageClassifier):
    def __init__(self, num_classes=10, width=1.0, norm="bn", in_channels=3, mean=None, std=None):
        c = channels(32, width)
        super().__init__(num_classes, 4 * c, in_channels, mean, std)
        self.body = nn.Sequential(
            *conv_block(in_channels, c, norm),
            *conv_block(c, c, norm),
            nn.MaxPool2d(2),
            *conv_block(c, 2 * c, norm),
            *conv_block(2 * c, 2 * c, norm),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * c, 4 * c),
            nn.ReLU(),
        )

    def trunk(self, x):
        return self.body(x)
