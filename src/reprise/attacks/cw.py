"""Carlini-Wagner attack (Carlini & Wagner 2017) with an optional penalty for adaptive use.

For each sample it minimises, by Adam in a tanh-reparametrised space,

    distance(x_adv, x) + c · (max(logit_y − max_{k≠y} logit_k + κ, 0) + penalty(out, x_adv))

and searches the constant c per sample (`search_steps` rounds of bisection, ×10 while no
success). An input counts as adversarial when it is misclassified by a margin κ and its
penalty is 0, so an adaptive attack adds e.g. max(t − score, 0) to also push a detector's
score above its threshold t. It returns, per sample, the successful input of smallest
distance, or x itself where none was found.

distance: L∞ (max |x_adv − x|, as in the L∞ variant Pang et al. 2021 use) or squared L2.
With `eps`, x_adv = clip(x + eps·tanh(w), 0, 1) never leaves the L∞ ε-ball; without it,
x_adv = (tanh(w) + 1)/2 ranges over the whole image box (the original attack).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from reprise.attacks.pgd import Forward, forward, from_section, margin
from reprise.errors import ConfigError
from reprise.models.base import evaluating

# (forward pass on x_adv, x_adv) -> per-sample penalty >= 0; zero where the goal is met
Penalty = Callable[[Forward, torch.Tensor], torch.Tensor]
COEFF_MAX = 1e10


@dataclass(frozen=True)
class CW:
    steps: int = 100  # Adam iterations per value of c
    search_steps: int = 9  # values of c tried per sample
    lr: float = 0.01
    initial_const: float = 1e-3
    confidence: float = 0.0  # κ
    distance: str = "linf"  # linf or l2 (squared)
    eps: float | None = None
    abort_early: bool = True

    def __post_init__(self):
        if self.distance not in ("linf", "l2"):
            raise ConfigError(f"cw.distance = {self.distance!r}; expected 'linf' or 'l2'")
        if self.steps < 1 or self.search_steps < 1:
            raise ConfigError("cw.steps and cw.search_steps must be >= 1")
        if self.eps is not None and not self.eps > 0:
            raise ConfigError(f"cw.eps = {self.eps}; expected a positive number or null")

    @classmethod
    def from_config(cls, cfg: dict) -> CW:
        return from_section(cls, cfg, "cw", ("eps",))

    def __call__(self, model, x, y, *, penalty: Penalty | None = None) -> torch.Tensor:
        return cw(model, x, y, penalty=penalty, **self.__dict__)


def _image(w: torch.Tensor, x: torch.Tensor, eps: float | None) -> torch.Tensor:
    if eps is None:
        return (torch.tanh(w) + 1) / 2
    return (x + eps * torch.tanh(w)).clamp(0, 1)


def _distance(d: torch.Tensor, kind: str) -> torch.Tensor:
    d = d.flatten(1)
    return d.abs().amax(1) if kind == "linf" else d.pow(2).sum(1)


def cw(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    search_steps: int,
    lr: float,
    initial_const: float,
    confidence: float = 0.0,
    distance: str = "linf",
    eps: float | None = None,
    abort_early: bool = True,
    penalty: Penalty | None = None,
) -> torch.Tensor:
    x, y = x.detach(), y.detach()
    n = len(x)
    best = x.clone()
    best_dist = torch.full((n,), float("inf"), device=x.device)
    lo, hi = torch.zeros(n, device=x.device), torch.full((n,), COEFF_MAX, device=x.device)
    c = torch.full((n,), initial_const, device=x.device)
    w0 = torch.zeros_like(x) if eps is not None else torch.atanh((2 * x - 1) * (1 - 1e-6))
    with evaluating(model), torch.enable_grad():
        for _ in range(search_steps):
            w = w0.clone().requires_grad_(True)
            opt = torch.optim.Adam([w], lr=lr)
            found = torch.zeros(n, dtype=torch.bool, device=x.device)
            previous = float("inf")
            for i in range(steps):
                x_adv = _image(w, x, eps)
                out = forward(model, x_adv)
                hinge = (confidence - margin(out.logits.float(), y)).clamp(min=0)
                goal = hinge if penalty is None else hinge + penalty(out, x_adv)
                dist = _distance(x_adv - x, distance)
                loss = (dist + c * goal).sum()
                (w.grad,) = torch.autograd.grad(loss, w)
                with torch.no_grad():
                    ok = (goal <= 0) & (out.logits.argmax(1) != y)
                    better = ok & (dist < best_dist)
                    best[better], best_dist[better] = x_adv[better].detach(), dist[better]
                    found |= ok
                opt.step()
                if abort_early and i % max(steps // 10, 1) == 0:
                    if loss.item() > previous * 0.9999:
                        break
                    previous = loss.item()
            with torch.no_grad():  # bisect c where it sufficed, grow it tenfold where not
                hi = torch.where(found, torch.minimum(hi, c), hi)
                lo = torch.where(found, lo, torch.maximum(lo, c))
                c = torch.where(hi < COEFF_MAX, (lo + hi) / 2, c * 10)
    return best
