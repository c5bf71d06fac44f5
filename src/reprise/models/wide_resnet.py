"""Wide ResNet WRN-depth-k (Zagoruyko & Komodakis 2016), pre-activation blocks.

    conv3x3(16) | 3 stages of n = (depth - 4) / 6 blocks (16k, 32k, 64k; strides 1, 2, 2)
    | norm relu | global average pool = features (64k) | linear = head

WRN-28-10 and WRN-34-10 at paper scale (features 640). `width` scales every channel count
on top of the widen factor k, so smoke runs use a narrow network of the same depth.
"""

from __future__ import annotations

from torch import nn

from reprise.errors import ConfigError
from reprise.models.base import ImageClassifier, channels, norm2d
from reprise.models.preact_resnet import PreActBlock, PreActResNet18
from reprise.models.resnet import stages


class WideResNet(ImageClassifier):
    def __init__(
        self,
        num_classes=10,
        depth=28,
        widen_factor=10,
        width=1.0,
        norm="bn",
        in_channels=3,
        mean=None,
        std=None,
    ):
        if depth < 10 or (depth - 4) % 6:
            raise ConfigError(f"model.depth = {depth} is not allowed; expected 6n + 4 (n >= 1)")
        n = (depth - 4) // 6
        stem = channels(16, width)
        widths = [channels(c * widen_factor, width) for c in (16, 32, 64)]
        super().__init__(num_classes, widths[-1], in_channels, mean, std)
        self.stem = nn.Conv2d(in_channels, stem, 3, 1, padding=1, bias=False)
        self.stages = stages(PreActBlock, widths, [n, n, n], [1, 2, 2], stem, norm)
        self.final_norm = norm2d(norm, widths[-1])
        for m in self.modules():  # the original initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    trunk = PreActResNet18.trunk  # the same stem -> stages -> norm-relu -> pool
