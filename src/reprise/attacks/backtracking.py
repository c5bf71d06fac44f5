"""PGD with momentum and backtracking that keeps only improving steps: the attack of
confidence-calibrated adversarial training (Stutz et al. 2020, as Pang et al.'s CCAT runs use).

Per sample, with v ← μ·v + g/‖g‖₁ (the ascent direction g normalised, so the momentum
averages directions, not magnitudes):

    candidate = project(x_adv + lr · sign(v))        (L∞; L2: lr · v/‖v‖₂)
    accepted  if objective(candidate) > objective(x_adv)
    lr        ← lr · up if accepted, lr / backtrack if not

so a sample stops where its objective stops improving instead of being pushed to the
ball's edge by fixed sign steps (which sets CCAT's interpolation weight to 0 everywhere).
The last accepted point, the best found, is returned.
"""

from __future__ import annotations

import torch

from reprise.attacks.pgd import Ball, Extra, LossFn, _norms, _per_sample, forward
from reprise.models.base import evaluating


def _direction(v: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "linf":
        return v.sign()
    return v / _per_sample(_norms(v).clamp_min(1e-12), v)


def momentum_pgd(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    loss: LossFn,
    norm: str = "linf",
    momentum: float = 0.9,
    backtrack: float = 1.5,
    up: float = 1.0,
    x_init: torch.Tensor | None = None,
    extra: Extra | None = None,
) -> torch.Tensor:
    """Maximise loss(logits, y) (+ extra) over the `norm` ball of radius `eps` from `x_init`
    (default x): `steps` candidate steps of per-sample size starting at `step_size`."""
    x, y = x.detach(), y.detach()
    ball = Ball(x, eps, norm)
    view = lambda t: _per_sample(t, x)  # noqa: E731

    def objective(x_adv):
        x_adv = x_adv.detach().requires_grad_(True)
        out = forward(model, x_adv)
        value = loss(out.logits.float(), y)
        if extra is not None:
            value = value + extra(out, x_adv)
        (grad,) = torch.autograd.grad(value.sum(), x_adv)
        return value.detach().float(), grad.detach().float()

    x_adv = ball.project(x if x_init is None else x_init.detach())
    lr = torch.full((len(x),), float(step_size), device=x.device)
    with evaluating(model), torch.enable_grad():
        best, grad = objective(x_adv)
        v = torch.zeros_like(grad)
        for _ in range(steps):
            with torch.no_grad():
                v = momentum * v + grad / view(grad.flatten(1).abs().sum(1).clamp_min(1e-12))
                candidate = ball.project(x_adv + view(lr).to(x.dtype) * _direction(v, norm))
            value, grad_c = objective(candidate)
            with torch.no_grad():
                better = value > best
                x_adv = torch.where(view(better), candidate, x_adv)
                grad = torch.where(view(better), grad_c, grad)
                best = torch.where(better, value, best)
                lr = torch.where(better, lr * up, lr / backtrack)
    return x_adv.detach()
