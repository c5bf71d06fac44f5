"""Bayesian refinements of a pre-trained classifier, all seen through one interface.

    model = Refined(dnn, members=20, layers=2)            # LiBRe: last layers -> ensemble
    model = Refined(dnn, 20, "mean_field", layers=None)   # full mean-field VI
    model = MCDropout(dnn, samples=20, p=0.2)             # MC dropout
    z = model.features(x)        # N × (C·(d + m)): every member's features, one pass
    log_p = model.head(z)        # log of the members' mean softmax (what attacks see)
    u = model.uncertainty(z)     # variance of the feature map across members, mean over m

Each member's features are its penultimate features (d, what the head reads) followed by
its last feature map before global pooling, flattened (m; the authors' code takes the
variance of that map, layer4's output in ResNet-50). A block without global pooling scores
its penultimate features.

`features`/`head` follow the core's convention, so the core attacks (reprise.attacks.forward)
attack the Bayesian model's predictive distribution, and an adaptive attack's extra term
reads the members' features from the same pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reprise.errors import ConfigError
from reprise.models.bottleneck_resnet import Bottleneck, BottleneckResNet
from reprise.models.resnet import BasicBlock, ResNet18
from reprise.models.small_cnn import SmallCNN
from reprise.papers.libre.stacked import stack


def trunk_parts(model) -> list[nn.Module]:
    """A core classifier's trunk (after normalisation) as an ordered list of modules."""
    if isinstance(model, SmallCNN):
        return list(model.body)
    if isinstance(model, ResNet18):
        return [*model.stem, *model.stages, nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if isinstance(model, BottleneckResNet):  # the stem as modules (the model calls F.*)
        stem = [model.conv1, model.bn1, nn.ReLU(), nn.MaxPool2d(3, 2, padding=1)]
        blocks = [*model.layer1, *model.layer2, *model.layer3, *model.layer4]
        return [*stem, *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    raise ConfigError(
        "LiBRe supports small_cnn, resnet18 and resnet50/101/152 backbones, not "
        f"{type(model).__name__}"
    )


def split(model, layers: int | None) -> tuple[list[nn.Module], list[nn.Module]]:
    """(deterministic front, the last `layers` parts; all of them when None)."""
    parts = trunk_parts(model)
    k = len(parts) if layers is None else layers
    if not 1 <= k <= len(parts):
        raise ConfigError(f"layers = {layers}; this backbone has {len(parts)} trunk parts")
    return parts[: len(parts) - k], parts[len(parts) - k :]


def run_block(block: nn.Sequential, z: torch.Tensor):
    """(output, the input of its global pooling layer or None) of a block."""
    fmap = None
    for m in block:
        if isinstance(m, nn.AdaptiveAvgPool2d):
            fmap = z
        z = m(z)
    return z, fmap


class Bayesian(nn.Module):
    """What the refinements share: normalisation, the pre-trained head, the scores."""

    members: int

    def __init__(self, model):
        super().__init__()
        self.register_buffer("mean", model.mean.clone())
        self.register_buffer("std", model.std.clone())
        self.classifier = model.head

    def member_features(self, x: torch.Tensor) -> torch.Tensor:  # N × C × (d + m)
        raise NotImplementedError

    def features(self, x):
        return self.member_features(x).flatten(1)

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate N × C × d, scored N × C × m) parts of member features."""
        z = z.view(len(z), self.members, -1)
        d = self.classifier.in_features
        return z[..., :d], (z[..., d:] if z.shape[-1] > d else z[..., :d])

    def member_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.split(z)[0])  # N × C × K

    def head(self, z):
        log_p = F.log_softmax(self.member_logits(z).float(), dim=-1)
        return torch.logsumexp(log_p, dim=1) - torch.log(torch.tensor(float(self.members)))

    def forward(self, x):
        return self.head(self.features(x))

    def uncertainty(self, z):
        """Variance of the scored features across members, averaged over them."""
        return self.split(z)[1].float().var(dim=1).mean(dim=1)

    def softmax_variance(self, z):
        """Variance of the predicted probabilities across members, averaged over classes."""
        return F.softmax(self.member_logits(z).float(), dim=-1).var(dim=1).mean(dim=1)


class Refined(Bayesian):
    """The pre-trained model whose last `layers` trunk parts become C members (a deep
    ensemble initialised from the pre-trained weights, or a mean-field posterior)."""

    def __init__(self, model, members: int, posterior: str = "ensemble", layers: int | None = 1):
        super().__init__(model)
        if members < 2:
            raise ConfigError(f"members = {members}; a posterior needs at least 2")
        front, last = split(model, layers)
        self.members = members
        self.front = nn.Sequential(*front)
        self.block = stack(nn.Sequential(*last), members, posterior)

    def member_features(self, x):
        z = self.front((x - self.mean) / self.std)
        z = z.repeat(1, self.members, *[1] * (z.ndim - 2))  # member-major channels
        z, fmap = run_block(self.block, z)
        parts = [z.view(len(x), self.members, -1)]
        if fmap is not None:
            parts.append(fmap.reshape(len(x), self.members, -1))
        return torch.cat(parts, dim=2)


class AlwaysDropout(nn.Dropout):
    """Dropout that stays on in eval mode (MC dropout samples at test time)."""

    def forward(self, x):
        return F.dropout(x, self.p, training=True)


class MCDropout(Bayesian):
    """The pre-trained model with dropout after every ReLU / residual block of its last
    `layers` parts; C samples run as one batch of C·N inputs."""

    def __init__(self, model, samples: int, p: float, layers: int | None = None):
        super().__init__(model)
        front, last = split(model, layers)
        with_dropout = []
        for m in last:
            with_dropout.append(m)
            if isinstance(m, nn.ReLU | BasicBlock | Bottleneck):
                with_dropout.append(AlwaysDropout(p))
        self.members = samples
        self.front, self.block = nn.Sequential(*front), nn.Sequential(*with_dropout)

    def member_features(self, x):
        z = self.front((x - self.mean) / self.std)
        z = z.repeat(self.members, *[1] * (z.ndim - 1))  # C·N, sample-major
        z, fmap = run_block(self.block, z)
        parts = [z.view(self.members, len(x), -1)]
        if fmap is not None:
            parts.append(fmap.reshape(self.members, len(x), -1))
        return torch.cat(parts, dim=2).transpose(0, 1)


def build(kind: str, dnn, cfg: dict) -> Bayesian:
    """A refinement of `dnn` from a method's config: kind libre/mean_field/mc_dropout."""
    if kind == "mc_dropout":
        return MCDropout(dnn, cfg["members"], cfg["dropout"], cfg.get("layers"))
    posterior = "ensemble" if kind == "libre" else "mean_field"
    if kind not in ("libre", "mean_field"):
        raise ConfigError(f"method kind = {kind!r}; expected libre, mean_field or mc_dropout")
    return Refined(dnn, cfg["members"], posterior, cfg.get("layers"))


def save(path, model: Bayesian, dnn_spec: dict, kind: str, cfg: dict, **extra) -> None:
    """Weights plus what rebuilds the model: the backbone's spec and the method's config."""
    from reprise.io import save_checkpoint

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    blob = {"spec": dnn_spec, "kind": kind, "method": dict(cfg), "state_dict": state}
    save_checkpoint(path, {**blob, **extra})


def load(path) -> tuple[Bayesian, dict]:
    """A refined model saved by `save` (weights only), and the whole checkpoint."""
    from reprise.errors import CheckpointError
    from reprise.io import load_checkpoint
    from reprise.models import build_model

    ckpt = load_checkpoint(path)
    if not {"spec", "kind", "method", "state_dict"} <= set(ckpt):
        raise CheckpointError(f"{path} holds no LiBRe model (keys spec, kind, method, state_dict)")
    try:
        spec = dict(ckpt["spec"])
        model = build(ckpt["kind"], build_model(spec.pop("arch"), **spec), ckpt["method"])
        model.load_state_dict(ckpt["state_dict"])
    except (ConfigError, KeyError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"{path} does not fit its recorded model: {e}") from None
    return model.eval(), ckpt
