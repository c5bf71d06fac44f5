"""One training run of either experiment, on the shared core: data, labels, model, method.

A run's config is its experiment's section (`random_labels` or `te`) with the dataset's
`dataset_overrides` merged in; the rule narrows the section's lists to the one job.
"""

from __future__ import annotations

import logging
from pathlib import Path

from reprise.attacks import PGD
from reprise.config import deep_merge
from reprise.data.prepared import ImageData, load_split
from reprise.errors import ConfigError
from reprise.models import build_model
from reprise.papers.memorization.te import TemporalEnsemble, TESchedule
from reprise.training import PGDAT, TRADES, TrainConfig, random_labels

log = logging.getLogger("reprise")


def only(section: dict, key: str) -> str:
    """The single value of a list the rule narrowed to this job."""
    values = section[key]
    if len(values) != 1:
        raise ConfigError(f"this step runs one {key[:-1]} at a time; got {key} = {values}")
    return values[0]


def for_dataset(section: dict, dataset: str) -> dict:
    """The section with the dataset's overrides merged in (e.g. no augmentation on SVHN)."""
    return deep_merge(section, section.get("dataset_overrides", {}).get(dataset, {}))


def load(path: Path, data_opts: dict | None, size: int | None = None) -> ImageData:
    """A prepared split (resized/recoloured as `data:` says), its first `size` samples."""
    opts = data_opts or {}
    return load_split(path, size=opts.get("size"), channels=opts.get("channels")).subset(size)


def training_labels(train: ImageData, kind: str, rate: float, seed: int) -> ImageData:
    """The training set as trained: true labels, or each redrawn uniformly with prob. `rate`."""
    if kind == "true":
        return train
    y = random_labels(train.y, train.num_classes, rate, seed)
    log.info(
        "random labels (rate %.2f, seed %d): %.1f%% differ from the true ones",
        rate,
        seed,
        100 * (y != train.y).float().mean().item(),
    )
    return ImageData(train.x, y, train.classes)


def model_for(cfg: dict, data: ImageData):
    """The configured model for this data's channels and classes (seeded by the runtime)."""
    return build_model(**{**cfg, "in_channels": data.x.shape[1]}, num_classes=data.num_classes)


def method_for(name: str, section: dict, num_samples: int, num_classes: int, epochs: int):
    """PGD-AT or TRADES by name; a `_te` suffix adds temporal ensembling (section `ensemble`)."""
    attack = PGD.from_config(section["attack"])
    base = name.removesuffix("_te")
    hooks = []
    if name.endswith("_te"):
        te = section["ensemble"]
        schedule = TESchedule(epochs, te["start"], te["end"], te["weight"])
        trades = base == "trades"
        hooks.append(
            TemporalEnsemble(
                num_samples,
                num_classes,
                schedule,
                momentum=te["momentum"],
                on_clean=trades,
                attack_scale=1.0 / section["beta"] if trades else 1.0,
            )
        )
    if base == "pgd_at":
        return PGDAT(attack, hooks=hooks)
    if base == "trades":
        return TRADES(attack, beta=section["beta"], hooks=hooks)
    raise ConfigError(f"unknown method {name!r}; expected pgd_at or trades (optionally _te)")


def train_config(section: dict) -> TrainConfig:
    return TrainConfig.from_config(section["train"])
