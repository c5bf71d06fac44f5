"""The `train:` config section as dataclasses (defaults here match workflow/schemas/core)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from reprise.errors import ConfigError

SCHEDULES = ("constant", "step", "multistep", "cosine")


@dataclass(frozen=True)
class Schedule:
    """Learning rate per epoch: constant, ×gamma every `step_size` epochs, ×gamma at each of
    `milestones`, or cosine annealing from lr to 0 over the run."""

    kind: str = "constant"
    step_size: int = 1
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ConfigError(f"train.schedule.kind = {self.kind!r}; expected one of {SCHEDULES}")
        if self.step_size < 1:
            raise ConfigError(f"train.schedule.step_size = {self.step_size}; expected >= 1")
        object.__setattr__(self, "milestones", tuple(sorted(self.milestones)))

    def lr(self, base_lr: float, epoch: int, epochs: int) -> float:
        """The rate of 0-based `epoch` in a run of `epochs`."""
        if self.kind == "step":
            return base_lr * self.gamma ** (epoch // self.step_size)
        if self.kind == "multistep":
            return base_lr * self.gamma ** sum(epoch >= m for m in self.milestones)
        if self.kind == "cosine":
            return base_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        return base_lr


@dataclass(frozen=True)
class Augment:
    """Random crop after zero-padding by `crop` pixels (0: none) and horizontal flips."""

    crop: int = 0
    flip: bool = False


@dataclass(frozen=True)
class Monitor:
    """What each epoch's row records beyond the training loss.

    Clean and robust accuracy on the first `train_size` training / `test_size` test samples
    (all when null, none when 0); the mean squared gradient norm of the batch loss when
    `grad_norm`; `best_by` names a column whose maximum selects the best epoch (fit's `best`)."""

    train_size: int | None = None
    test_size: int | None = None
    batch_size: int = 512
    grad_norm: bool = False
    best_by: str | None = None


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    schedule: Schedule = field(default_factory=Schedule)
    augment: Augment = field(default_factory=Augment)
    monitor: Monitor = field(default_factory=Monitor)

    @classmethod
    def from_config(cls, cfg: dict) -> TrainConfig:
        """From a `train:` section (a dict, as validated by the schema)."""
        cfg = dict(cfg)
        nested = {"schedule": Schedule, "augment": Augment, "monitor": Monitor}
        try:
            for key, kind in nested.items():
                if key in cfg:
                    cfg[key] = kind(**cfg[key])
            return cls(**cfg)
        except TypeError as e:
            raise ConfigError(f"train: {e}") from None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
