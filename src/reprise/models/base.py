"""What every classifier shares: inputs in [0, 1], normalisation inside, features/head split.

`features(x)` maps an image batch to penultimate features z (N × feature_dim) and `head(z)`
maps them to logits, so papers that work on penultimate features (rejection's RR head,
LiBRe's ensemble, detection baselines) call the same model the attacks see.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from reprise.errors import ConfigError


def channels(base: int, width: float) -> int:
    """A layer's channel count under the width multiplier (at least 1)."""
    return max(1, round(base * width))


def norm2d(kind: str, num_channels: int) -> nn.Module:
    """BatchNorm, or GroupNorm with up to 32 groups (as many as divide the channels)."""
    if kind == "bn":
        return nn.BatchNorm2d(num_channels)
    if kind == "gn":
        return nn.GroupNorm(math.gcd(32, num_channels), num_channels)
    raise ConfigError(f"model.norm = {kind!r} is not allowed; expected 'bn' or 'gn'")


class ImageClassifier(nn.Module):
    """Base class: subclasses build `self.trunk` (normalised image -> features) in __init__."""

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        in_channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        self.feature_dim = feature_dim
        self.register_buffer("mean", _per_channel(mean, 0.0, in_channels, "mean"))
        self.register_buffer("std", _per_channel(std, 1.0, in_channels, "std"))
        self.head = nn.Linear(feature_dim, num_classes)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _per_channel(values, default: float, in_channels: int, name: str) -> torch.Tensor:
    values = [default] if values is None else list(values)
    if len(values) == 1:
        values = values * in_channels
    if len(values) != in_channels:
        raise ConfigError(
            f"model.{name} has {len(values)} values; expected 1 or in_channels = {in_channels}"
        )
    if name == "std" and min(values) <= 0:
        raise ConfigError(f"model.std = {values} is not allowed; expected positive values")
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)


@contextlib.contextmanager
def evaluating(model: nn.Module, training: bool = False) -> Iterator[nn.Module]:
    """Eval mode (train mode if `training`) inside the block; every submodule's own train/eval
    mode restored after it."""
    modes = [(m, m.training) for m in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


BN_MODES = ("eval", "train")


def attacking(model: nn.Module, bn: str = "eval") -> contextlib.AbstractContextManager:
    """The model's mode while an attack crafts its inputs: "eval" (running BatchNorm
    statistics, nothing updated) or "train" (batch statistics, the running ones updated by
    every attack step: the training attacks of Rice et al.'s and Pang et al.'s PGD-AT and
    CCAT code, BNeval=False)."""
    if bn not in BN_MODES:
        raise ConfigError(f"attack.bn = {bn!r} is not allowed; expected one of {BN_MODES}")
    return evaluating(model, training=bn == "train")
