"""SPSA (Uesato et al. 2018): a gradient-free L∞ attack for models whose gradients cannot be
trusted (or are not exposed). Each step estimates the gradient of the loss by simultaneous
perturbation: for `samples` random sign vectors v, (f(x + δv) − f(x − δv)) / 2δ · v,
averaged; Adam then moves the perturbation, which is projected back into the ε-ball and
[0, 1] after every step. The loss is the CW margin (best other logit − true logit), as in
the paper; only forward passes are used, `chunk` perturbed copies at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reprise.attacks.pgd import LOSSES, Ball, forward, from_section
from reprise.errors import ConfigError
from reprise.models.base import evaluating


@torch.no_grad()
def estimate_gradient(model, x, y, loss_fn, delta: float, samples: int, chunk: int):
    """SPSA's gradient estimate of loss_fn(model(x), y) per sample (same shape as x)."""
    grad = torch.zeros_like(x)
    for start in range(0, samples, chunk):
        k = min(chunk, samples - start)
        v = torch.empty((k, *x.shape), device=x.device, dtype=x.dtype).bernoulli_(0.5)
        v = v.mul_(2).sub_(1)  # k × N × C × H × W, entries ±1
        both = torch.cat([x + delta * v, x - delta * v]).flatten(0, 1)
        f = loss_fn(forward(model, both).logits.float(), y.repeat(2 * k)).view(2, k, len(x))
        df = (f[0] - f[1]) / (2 * delta)  # k × N
        grad += (df.view(k, len(x), *[1] * (x.ndim - 1)) * v).sum(0)
    return grad / samples


def spsa(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    steps: int,
    lr: float = 0.01,
    delta: float = 0.01,
    samples: int = 128,
    chunk: int = 32,
    loss: str = "cw",
) -> torch.Tensor:
    x, y = x.detach(), y.detach()
    ball = Ball(x, eps, "linf")
    loss_fn = LOSSES[loss]
    perturbation = torch.zeros_like(x, requires_grad=True)
    opt = torch.optim.Adam([perturbation], lr=lr)
    with evaluating(model):
        for _ in range(steps):
            x_now = x + perturbation.detach()
            g = estimate_gradient(model, x_now, y, loss_fn, delta, samples, chunk)
            perturbation.grad = -g  # Adam descends: ascend the loss
            opt.step()
            with torch.no_grad():
                perturbation.copy_(ball.project(x + perturbation) - x)
    return (x + perturbation.detach()).clamp(0, 1)


@dataclass(frozen=True)
class SPSA:
    eps: float
    steps: int
    lr: float = 0.01
    delta: float = 0.01
    samples: int = 128
    chunk: int = 32
    loss: str = "cw"

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ConfigError(f"spsa.loss = {self.loss!r} is not allowed; expected {[*LOSSES]}")
        if self.steps < 1 or self.samples < 1 or self.chunk < 1:
            raise ConfigError("spsa.steps, spsa.samples and spsa.chunk must be >= 1")
        if not (self.eps >= 0 and self.delta > 0 and self.lr > 0):
            raise ConfigError("spsa.eps must be >= 0 and spsa.delta, spsa.lr > 0")

    @classmethod
    def from_config(cls, cfg: dict) -> SPSA:
        return from_section(cls, cfg, "spsa", ("eps", "delta"))

    def __call__(self, model, x, y, *, extra=None) -> torch.Tensor:
        if extra is not None:
            raise ConfigError("SPSA takes no extra (gradient) term")
        return spsa(model, x, y, **self.__dict__)
