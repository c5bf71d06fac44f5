"""Projected gradient descent (Madry et al. 2018) under L∞ and L2, and FGSM as its one-step case.

One implementation serves every paper: the objective is a standard loss (cross-entropy or
the CW margin) on the logits plus an optional `extra` term computed from the same forward
pass (logits and penultimate features), so adaptive attacks (e.g. also raising a rejection
score) and regularised inner maximisations (e.g. temporal ensembling) reuse this loop.

The attack runs in eval mode and restores every submodule's mode afterwards; it takes
gradients with respect to the input only, so the model's parameter gradients are untouched.
Adversarial inputs stay in [0, 1] and within ε of the clean inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from reprise.errors import ConfigError
from reprise.models.base import BN_MODES, attacking

NORMS = ("linf", "l2")


class Forward(NamedTuple):
    """One forward pass: logits, and penultimate features where the model exposes them."""

    logits: torch.Tensor
    features: torch.Tensor | None


def forward(model: nn.Module, x: torch.Tensor) -> Forward:
    if hasattr(model, "features") and hasattr(model, "head"):
        z = model.features(x)
        return Forward(model.head(z), z)
    return Forward(model(x), None)


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CW margin: the best other logit minus the logit of y (positive = misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return other - true


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce": lambda logits, y: F.cross_entropy(logits, y, reduction="none"),
    "cw": margin,
}

# (forward pass on x_adv, x_adv) -> per-sample term added to the maximised objective
Extra = Callable[[Forward, torch.Tensor], torch.Tensor]
# (logits on x_adv, y) -> per-sample loss to maximise, replacing "ce"/"cw" (e.g. TRADES' KL)
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Ball:
    """The set an attack searches: the ε-ball around x in `norm`, intersected with [0, 1]."""

    def __init__(self, x: torch.Tensor, eps: float, norm: str):
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.x, self.eps, self.norm = x, eps, norm
        if norm == "linf":  # one clamp per step: the box is the intersection of both
            self.low, self.high = (x - eps).clamp_(min=0), (x + eps).clamp_(max=1)

    def project(self, x_adv: torch.Tensor) -> torch.Tensor:
        """The nearest point of the ball, then clipped to [0, 1] (which stays inside it)."""
        if self.norm == "linf":
            return torch.clamp(x_adv, self.low, self.high)
        delta = x_adv - self.x
        scale = (self.eps / _norms(delta).clamp_min(1e-12)).clamp(max=1.0)
        return (self.x + delta * _per_sample(scale, delta)).clamp(0, 1)

    def random_point(self) -> torch.Tensor:
        """Uniform in the L∞ box, or a random direction at a uniform radius for L2."""
        if self.norm == "linf":
            return self.project(self.x + torch.empty_like(self.x).uniform_(-self.eps, self.eps))
        delta = torch.randn_like(self.x)
        radius = self.eps * torch.rand(len(delta), device=delta.device, dtype=delta.dtype)
        delta *= _per_sample(radius / _norms(delta).clamp_min(1e-12), delta)
        return (self.x + delta).clamp(0, 1)


def _norms(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1)


def _per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *[1] * (like.ndim - 1))


def ascent_step(grad: torch.Tensor, step_size: float, norm: str) -> torch.Tensor:
    if norm == "linf":
        return step_size * grad.sign()
    return grad * _per_sample(step_size / _norms(grad).clamp_min(1e-12), grad)


def succeeded(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    pred = logits.argmax(1)
    return pred == y if targeted else pred != y


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    norm: str = "linf",
    loss: str | LossFn = "ce",
    targeted: bool = False,
    random_start: bool = True,
    early_stop: bool = False,
    extra: Extra | None = None,
    x_init: torch.Tensor | None = None,
    bn: str = "eval",
) -> torch.Tensor:
    """Adversarial examples for a batch x (in [0, 1]) with labels y (the targets if `targeted`).

    Maximises loss(logits, y) (minimises it towards y when targeted) plus `extra(out, x_adv)`
    over `steps` steps of `step_size` in the `norm` ball of radius `eps`. It starts from
    `x_init` if given, else a random point of the ball (`random_start`) or x itself. With
    `early_stop`, a sample stops moving once it is misclassified (classified as its target).
    `bn`: the model's mode during the attack (models.base.attacking).
    """
    x, y = x.detach(), y.detach()
    ball = Ball(x, eps, norm)
    loss_fn = loss if callable(loss) else LOSSES[loss]
    sign = -1.0 if targeted else 1.0
    if x_init is not None:
        x_adv = ball.project(x_init.detach())
    else:
        x_adv = ball.random_point() if random_start else x.clone()
    with attacking(model, bn), torch.enable_grad():
        for _ in range(steps):
            x_adv.requires_grad_(True)
            out = forward(model, x_adv)
            objective = sign * loss_fn(out.logits.float(), y)
            if extra is not None:
                objective = objective + extra(out, x_adv)
            (grad,) = torch.autograd.grad(objective.sum(), x_adv)
            with torch.no_grad():
                step = ascent_step(grad, step_size, norm)
                if early_stop:
                    active = ~succeeded(out.logits, y, targeted)
                    if not active.any():
                        break
                    step *= _per_sample(active, step)
                x_adv = ball.project(x_adv.detach() + step)
    return x_adv.detach()


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, **kw) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): one L∞ step of size ε from x."""
    return pgd(model, x, y, eps=eps, step_size=eps, steps=1, random_start=False, **kw)


def from_section(cls, cfg: dict, where: str = "attack", magnitudes=("eps", "step_size"), **fixed):
    """An attack (a dataclass) from its config section, the magnitudes written as numbers or
    fractions ("8/255"); an unknown key is one ConfigError naming the section. A magnitude
    set to null stays None (an optional one, like CW's ε)."""
    cfg = dict(cfg)
    for key in magnitudes:
        if cfg.get(key) is not None:
            cfg[key] = magnitude(cfg[key], f"{where}.{key}")
    try:
        return cls(**fixed, **cfg)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from None


def magnitude(value: float | int | str, name: str = "value") -> float:
    """A config magnitude: a number, or a fraction written as "8/255"."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} = {value!r} is not allowed; expected a number or 'a/b'")
    if isinstance(value, int | float):
        return float(value)
    num, sep, den = str(value).partition("/")
    try:
        return float(num) / float(den) if sep else float(num)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(
            f"{name} = {value!r} is not allowed; expected a number or a fraction like '8/255'"
        ) from None


@dataclass(frozen=True)
class PGD:
    """A configured PGD attack (a config `attack:` section); call it like `pgd` on a batch."""

    eps: float
    step_size: float
    steps: int
    norm: str = "linf"
    loss: str = "ce"
    random_start: bool = True
    targeted: bool = False
    early_stop: bool = False
    bn: str = "eval"

    def __post_init__(self):
        if self.bn not in BN_MODES:
            raise ConfigError(f"attack.bn = {self.bn!r} is not allowed; expected {BN_MODES}")
        if self.norm not in NORMS:
            raise ConfigError(f"attack.norm = {self.norm!r} is not allowed; expected {NORMS}")
        if self.loss not in LOSSES:
            raise ConfigError(f"attack.loss = {self.loss!r} is not allowed; expected {[*LOSSES]}")
        for name in ("eps", "step_size"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"attack.{name} = {getattr(self, name)} must be >= 0")
        if self.steps < 0:
            raise ConfigError(f"attack.steps = {self.steps} must be >= 0")

    @classmethod
    def from_config(cls, cfg: dict) -> PGD:
        return from_section(cls, cfg)

    def __call__(self, model, x, y, *, extra=None, x_init=None, loss=None) -> torch.Tensor:
        kw = {**self.__dict__, "loss": loss or self.loss}
        return pgd(model, x, y, extra=extra, x_init=x_init, **kw)
