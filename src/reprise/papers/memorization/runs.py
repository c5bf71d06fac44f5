"""One training run of either experiment, on the shared core: data, labels, model, method.

A run's config is its experiment's section (`random_labels` or `te`) with the dataset's
`dataset_overrides` merged in; the rule narrows the section's lists to the one job.
"""

from __future__ import annotations

import logging

from reprise.data.prepared import ImageData
from reprise.models import build_model
from reprise.papers.memorization.te import TemporalEnsemble, TESchedule
from reprise.training import TrainConfig, random_labels
from reprise.training.recipe import build_method, parse_run
from reprise.yamlconf import deep_merge

log = logging.getLogger("reprise")
# a run name's addons: `_te` (temporal ensembling), `_noisy` (te.label_noise on the labels)
RUN_ADDONS = ("te", "noisy")


def for_dataset(section: dict, dataset: str) -> dict:
    """The section with the dataset's overrides merged in (e.g. no augmentation on SVHN)."""
    return deep_merge(section, section.get("dataset_overrides", {}).get(dataset, {}))


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
    """PGD-AT or TRADES by name (the core recipe); a `_te` suffix adds temporal ensembling
    (section `ensemble`); `_noisy` changes the labels, not the method."""
    method, addons = parse_run(name, RUN_ADDONS)
    hooks = []
    if "te" in addons:
        te = section["ensemble"]
        schedule = TESchedule(epochs, te["start"], te["end"], te["weight"])
        trades = method == "trades"
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
    return build_method(method, section["attack"], trades={"beta": section["beta"]}, hooks=hooks)


def train_config(section: dict) -> TrainConfig:
    return TrainConfig.from_config(section["train"])
