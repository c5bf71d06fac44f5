"""Training: standard, PGD-AT, TRADES and CCAT through one resumable, deterministic loop.

cfg = TrainConfig.from_config(params["train"])
attack = PGD.from_config(params["attack"])
fitted = fit(model, PGDAT(attack, hooks=[...]), train, cfg, resume=rt.resume, test=test,
             attack=attack, accel=rt.accel(), seed=rt.seed, history_path=...)
fitted.history (the per-epoch table), fitted.best (the monitored best epoch's weights)

A run name and config section build the method through `reprise.training.recipe`.
"""

from reprise.training.augment import crop_flip
from reprise.training.config import Augment, Monitor, Schedule, TrainConfig
from reprise.training.labels import random_labels
from reprise.training.loop import Fitted, epoch_generator, fit
from reprise.training.methods import (
    CCAT,
    METHODS,
    PGDAT,
    TRADES,
    Batch,
    Hook,
    Method,
    Standard,
    ccat_target,
    radial_start,
    wrong_class_confidence,
)
from reprise.training.state import rng_state, set_rng_state

__all__ = [
    "CCAT",
    "METHODS",
    "PGDAT",
    "TRADES",
    "Augment",
    "Batch",
    "Fitted",
    "Hook",
    "Method",
    "Monitor",
    "Schedule",
    "Standard",
    "TrainConfig",
    "crop_flip",
    "epoch_generator",
    "fit",
    "radial_start",
    "random_labels",
    "rng_state",
    "ccat_target",
    "set_rng_state",
    "wrong_class_confidence",
]
