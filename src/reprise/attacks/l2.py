"""L2 attacks as Dong et al.'s benchmark and LiBRe run them: FGSM-L2 (one normalised
gradient step of length ε, Goodfellow et al.'s fast gradient method), BIM-L2 (iterated, from
x) and PGD-L2 (iterated, from a random point), all through the core PGD loop.

`per_pixel`: ε and the step are given per pixel, as for L∞, and scaled by √D (D = pixels ×
channels) into an L2 radius, the convention of the LiBRe code (ε = 16/255 for every attack).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from reprise.attacks.pgd import LOSSES, from_section, pgd
from reprise.errors import ConfigError

KINDS = ("fgsm", "bim", "pgd")


def l2_scale(x: torch.Tensor) -> float:
    """√D of one input of the batch x: the L2 norm of a perturbation of 1 in every pixel."""
    return math.sqrt(x[0].numel())


@dataclass(frozen=True)
class L2Attack:
    """FGSM-L2 (`kind: fgsm`, one step of ε), BIM-L2 or PGD-L2; call it on a batch."""

    kind: str
    eps: float
    step_size: float = 0.0  # unused by fgsm
    steps: int = 1
    per_pixel: bool = True
    loss: str = "ce"
    targeted: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"l2 attack kind = {self.kind!r}; expected one of {KINDS}")
        if self.loss not in LOSSES:
            raise ConfigError(f"attack.loss = {self.loss!r} is not allowed; expected {[*LOSSES]}")
        if not (self.eps >= 0 and self.step_size >= 0 and self.steps >= 1):
            raise ConfigError("attack eps and step_size must be >= 0 and steps >= 1")

    @classmethod
    def from_config(cls, kind: str, cfg: dict) -> L2Attack:
        return from_section(cls, cfg, kind=kind)

    def __call__(self, model, x, y, *, extra=None) -> torch.Tensor:
        scale = l2_scale(x) if self.per_pixel else 1.0
        eps, step = self.eps * scale, self.step_size * scale
        common = dict(norm="l2", loss=self.loss, targeted=self.targeted, extra=extra)
        if self.kind == "fgsm":
            return pgd(model, x, y, eps=eps, step_size=eps, steps=1, random_start=False, **common)
        random_start = self.kind == "pgd"
        return pgd(
            model,
            x,
            y,
            eps=eps,
            step_size=step,
            steps=self.steps,
            random_start=random_start,
            **common,
        )
