"""Temporal ensembling (TE), the paper's mitigation of robust overfitting.

From epoch `start` on, each training sample keeps a soft label p̄ ← m·p̄ + (1−m)·softmax(f(x))
from its clean input in eval mode (renormalised, since p̄ starts at zero). The loss adds
w(t)·mean_k (softmax(logits) − p̄)², on the adversarial logits for PGD-AT and on the clean
logits for TRADES, and the same term enters the attack's inner maximisation. The weight
ramps up as weight·exp(−5(1−t)²), t going from 0 at `start` to 1 at `end`.

`start` and `end` are fractions of the run (0.45 and 0.75 of 200 epochs are the paper's
epochs 90 and 150), so a shorter smoke run keeps the same shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reprise.models import evaluating
from reprise.training import Batch, Hook


@dataclass(frozen=True)
class TESchedule:
    """When TE is on and how strongly, in the 1-based epochs of the official code."""

    epochs: int
    start: float = 0.45  # fraction of the run
    end: float = 0.75
    weight: float = 300.0

    @property
    def first(self) -> int:
        """The first 1-based epoch that updates the soft labels (and adds the term)."""
        return max(1, round(self.start * self.epochs))

    @property
    def full(self) -> int:
        """The 1-based epoch from which the weight is at its maximum."""
        return max(self.first, round(self.end * self.epochs))

    def active(self, epoch: int) -> bool:
        """Whether 0-based `epoch` uses TE."""
        return epoch + 1 >= self.first

    def weight_at(self, epoch: int) -> float:
        """w of 0-based `epoch`: 0 before `first`, then the exponential ramp to `weight`."""
        e = epoch + 1
        if e < self.first:
            return 0.0
        if e >= self.full:
            return self.weight
        phase = 1.0 - (e - self.first) / (self.full - self.first)
        return self.weight * math.exp(-5.0 * phase * phase)


class TemporalEnsemble(Hook):
    """Per-sample soft labels and the TE term (see the module docstring).

    `on_clean`: the term reads the clean logits (TRADES+TE) instead of the adversarial ones.
    `attack_scale`: the attack term's factor relative to the method's own attack objective;
    TRADES maximises KL alone where the official code maximises β·KL, so it passes 1/β."""

    def __init__(
        self,
        num_samples: int,
        num_classes: int,
        schedule: TESchedule,
        momentum: float = 0.9,
        on_clean: bool = False,
        attack_scale: float = 1.0,
    ):
        self.schedule, self.momentum = schedule, momentum
        self.on_clean, self.attack_scale = on_clean, attack_scale
        self.soft = torch.zeros(num_samples, num_classes)
        self.weight = 0.0
        self.target: torch.Tensor | None = None  # the batch's renormalised soft labels

    def start_epoch(self, model, data, epoch):
        self.weight = self.schedule.weight_at(epoch)

    def start_batch(self, model, batch: Batch):
        self.target = None
        if not self.schedule.active(batch.epoch):
            return
        if self.soft.device != batch.x.device:
            self.soft = self.soft.to(batch.x.device)
        with torch.no_grad(), evaluating(model):
            prob = F.softmax(model(batch.x).float(), dim=1)
        idx = batch.idx.to(self.soft.device)
        self.soft[idx] = self.momentum * self.soft[idx] + (1 - self.momentum) * prob
        self.target = self.soft[idx] / self.soft[idx].sum(1, keepdim=True)

    def _term(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-sample mean squared distance of the softmax to the soft labels."""
        return (F.softmax(logits.float(), dim=1) - self.target).pow(2).mean(1)

    def attack_extra(self, batch):
        if self.target is None:
            return None
        scale = self.attack_scale * self.weight
        return lambda out, _x_adv: scale * self._term(out.logits)

    def loss(self, model, batch):
        if self.target is None:
            return 0.0
        out = batch.clean if self.on_clean else batch.adv
        return self.weight * self._term(out.logits).mean()

    def epoch_metrics(self):
        return {"te_weight": self.weight}

    def state_dict(self):
        return {"soft": self.soft.cpu()}

    def load_state_dict(self, state):
        self.soft = state["soft"].to(self.soft.device)

    def config(self):
        return {
            "schedule": vars(self.schedule),
            "momentum": self.momentum,
            "on_clean": self.on_clean,
            "attack_scale": self.attack_scale,
        }
