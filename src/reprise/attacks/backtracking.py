"""PGD with momentum and backtracking that keeps only improving steps: the attack of
confidence-calibrated adversarial training (Stutz et al. 2020, as Pang et al.'s CCAT runs use).

Per sample, as the official code (Pang et al.'s attack_ccat, Stutz et al.'s normalised
momentum): the momentum averages the step directions d(g) = sign(g) (L∞; L2: g/‖g‖₂),

    m         ← μ·m + (1 − μ)·d(g)
    candidate = project(x_adv + lr · m)               (the first step is (1 − μ)·lr)
    accepted  if score(candidate) ≥ best score so far
    lr        ← lr / backtrack unless the score strictly improved, else lr · up

The score is the objective itself, or `accept` (Pang et al. accept by the true-class
cross-entropy, with the best starting at 0, so the first step is always taken).

so a sample stops where its objective stops improving instead of being pushed to the
ball's edge by fixed sign steps (which sets CCAT's interpolation weight to 0 everywhere).
The last accepted point, the best found, is returned.
"""

from __future__ import annotations

import torch

from reprise.attacks.pgd import Ball, Extra, LossFn, _norms, _per_sample, forward
from reprise.models.base import attacking


def _direction(g: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "linf":
        return g.sign()
    return g / _per_sample(_norms(g).clamp_min(1e-12), g)


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
    accept: LossFn | None = None,
    bn: str = "eval",
) -> torch.Tensor:
    """Maximise loss(logits, y) (+ extra) over the `norm` ball of radius `eps` from `x_init`
    (default x): `steps` candidate steps of per-sample size starting at `step_size`; a step
    is kept when `accept(logits, y)` (default: the objective) does not fall below its best.
    `bn`: the model's mode during the attack (models.base.attacking)."""
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
        score = value if accept is None else accept(out.logits.float(), y)
        return score.detach().float(), grad.detach().float()

    x_adv = ball.project(x if x_init is None else x_init.detach())
    lr = torch.full((len(x),), float(step_size), device=x.device)
    with attacking(model, bn), torch.enable_grad():
        best, grad = objective(x_adv)
        if accept is not None:  # as the official code: the first step is always taken
            best = torch.zeros_like(best)
        v = torch.zeros_like(grad)
        for _ in range(steps):
            with torch.no_grad():
                v = momentum * v + (1 - momentum) * _direction(grad, norm)
                candidate = ball.project(x_adv + view(lr).to(x.dtype) * v)
            value, grad_c = objective(candidate)
            with torch.no_grad():
                keep = value >= best
                x_adv = torch.where(view(keep), candidate, x_adv)
                grad = torch.where(view(keep), grad_c, grad)
                lr = torch.where(value > best, lr * up, lr / backtrack)
                best = torch.where(keep, value, best)
    return x_adv.detach()
