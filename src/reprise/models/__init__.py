"""Image classifiers in plain torch, one file per family, built from a config section.

    model = build_model("preact_resnet18", num_classes=10, width=0.25, norm="gn")
    z = model.features(x)        # penultimate features, N x model.feature_dim
    logits = model.head(z)       # == model(x)
    model = build_model("small_cnn", 10, aux_head={"outputs": 1})   # plus model.aux(z)

Every model takes inputs in [0, 1] and normalises them itself (`mean`/`std`), so attacks
and augmentation work in image space. `save_model`/`load_model` keep the build arguments
beside the weights, so an evaluation step rebuilds the model from the checkpoint alone.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from reprise.errors import CheckpointError, ConfigError
from reprise.models.aux_head import WithAuxHead
from reprise.models.base import ImageClassifier, evaluating
from reprise.models.bottleneck_resnet import BottleneckResNet
from reprise.models.preact_resnet import PreActResNet18
from reprise.models.resnet import ResNet18
from reprise.models.small_cnn import SmallCNN
from reprise.models.wide_resnet import WideResNet

ARCHS = {
    "small_cnn": SmallCNN,
    "resnet18": ResNet18,
    "preact_resnet18": PreActResNet18,
    **{f"resnet{d}": functools.partial(BottleneckResNet, d) for d in (50, 101, 152)},
}
WRN = re.compile(r"wrn-(\d+)-(\d+)")  # wrn-<depth>-<widen factor>, e.g. wrn-34-10
__all__ = [
    "ARCHS",
    "ImageClassifier",
    "WithAuxHead",
    "build_model",
    "evaluating",
    "load_model",
    "save_model",
]


def build_model(
    arch: str, num_classes: int, aux_head: dict | None = None, **options
) -> ImageClassifier | WithAuxHead:
    """`arch`: small_cnn, resnet18 (CIFAR), preact_resnet18, resnet50/101/152 (ImageNet,
    torchvision's layout) or wrn-<depth>-<k>; `options`: width,
    norm ("bn"/"gn"), in_channels, mean, std (the keys of a config `model:` section).
    `aux_head` ({outputs, hidden, bn}) adds an auxiliary head on the features (WithAuxHead)."""
    if wrn := WRN.fullmatch(arch):
        family, options = WideResNet, {"depth": int(wrn[1]), "widen_factor": int(wrn[2]), **options}
    elif arch in ARCHS:
        family = ARCHS[arch]
    else:
        raise ConfigError(
            f"model.arch = {arch!r} is not allowed; expected one of {list(ARCHS)} or "
            "wrn-<depth>-<widen factor> (e.g. wrn-34-10)"
        )
    spec = {"arch": arch, "num_classes": num_classes, **options}
    try:
        model = family(num_classes=num_classes, **options)
    except TypeError as e:  # an option this family does not take
        raise ConfigError(f"model: bad options {sorted(options)} for arch {arch!r}: {e}") from None
    if aux_head is not None:
        try:
            model = WithAuxHead(model, **aux_head)
        except TypeError as e:
            raise ConfigError(f"model.aux_head: bad options {sorted(aux_head)}: {e}") from None
        spec["aux_head"] = dict(aux_head)
    model.spec = spec
    return model


def save_model(path: str | Path, model, **extra) -> None:
    """Weights, the build arguments (for a model made by build_model) and any plain `extra`
    values, atomically. Any module's weights can be saved; load_model needs the spec."""
    from reprise.io import save_checkpoint

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    spec = {"spec": model.spec} if hasattr(model, "spec") else {}
    save_checkpoint(path, {**spec, "state_dict": state, **extra})


def load_model(path: str | Path, map_location: str = "cpu") -> tuple[ImageClassifier, dict]:
    """Rebuild a model saved by `save_model`; returns (model, the whole checkpoint dict)."""
    from reprise.io import load_checkpoint

    ckpt = load_checkpoint(path, map_location)
    if not isinstance(ckpt.get("spec"), dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"checkpoint {path} holds no model (expected keys spec, state_dict)")
    spec = dict(ckpt["spec"])
    try:
        model = build_model(spec.pop("arch"), **spec)
        model.load_state_dict(ckpt["state_dict"])
    except (ConfigError, KeyError, RuntimeError, TypeError) as e:
        lines = [line.strip() for line in str(e).splitlines()[1:] if line.strip()] or [str(e)]
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        raise CheckpointError(
            f"checkpoint {path} does not fit its recorded model: {lines[0].rstrip('.')}{more}"
        ) from None
    return model, ckpt
