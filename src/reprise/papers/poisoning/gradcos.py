"""The cost centre of the attack: cosines between parameter gradients, differentiated again.

    g(x) = ∇θ L(f_θ(x), y)            computed with create_graph, so g is still a function of
                                      the input x and of the parameters θ
    c = cos(g(x), d)                  d: a fixed direction, or another batch's gradient
    ∂c/∂x  or  ∂c/∂θ                  one double backward through the whole batch at once

Every poisoner move is built from this one function: the poisoned trigger descends ∂c/∂x with
d = ∇θL(S_val); the accumulative batch ascends ∂c/∂x with d = the direction it should push
θ; the accumulative direction itself is ∂c/∂θ with both gradients live (a Hessian-vector
product of each batch's loss).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Grads = list[torch.Tensor]


def params_of(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def loss_grad(model: nn.Module, x, y, create_graph: bool = False) -> Grads:
    """∇θ of the mean cross-entropy of batch (x, y), one tensor per parameter."""
    loss = F.cross_entropy(model(x), y)
    return list(torch.autograd.grad(loss, params_of(model), create_graph=create_graph))


def dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((u * v).sum() for u, v in zip(a, b, strict=True))


def norm(a: Sequence[torch.Tensor]) -> torch.Tensor:
    return dot(a, a).sqrt()


def cosine(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return dot(a, b) / (norm(a) * norm(b)).clamp_min(1e-12)


def gradient_cosine(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: Grads | tuple[torch.Tensor, torch.Tensor],
    wrt: Sequence[torch.Tensor],
) -> tuple[torch.Tensor, Grads]:
    """c = cos(∇θL(x, y), target) and ∂c/∂wrt.

    `target` is a fixed direction (a list of tensors shaped like the parameters) or a batch
    (x', y') whose gradient is differentiated too. `wrt`: the input x (which must require
    grad) or the parameters. BatchNorm statistics are left as they were."""
    with kept_buffers(model):
        g = loss_grad(model, x, y, create_graph=True)
        t = loss_grad(model, *target, create_graph=True) if isinstance(target, tuple) else target
        c = cosine(g, t)
        return c.detach(), list(torch.autograd.grad(c, list(wrt)))


def signed_ascent(objective, x, eps: float, step_size: float, steps: int, sign: float):
    """`steps` signed-gradient steps of size `step_size` on x within the L∞ ball of radius
    `eps` and the image box [0, 1]; `objective(x) -> (c, ∂c/∂x)`, ascended for sign +1 and
    descended for sign -1. No random start, so a run is a function of its inputs."""
    x = x.detach()
    adv = x.clone()
    for _ in range(steps):
        _, (grad,) = objective(adv.requires_grad_())
        adv = adv.detach() + sign * step_size * grad.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp_(0.0, 1.0)
    return adv.detach()


def clip_norm(grads: Grads, max_norm: float | None) -> Grads:
    """The update scaled down to L2 norm `max_norm` when longer (None: unchanged)."""
    if max_norm is None:
        return grads
    scale = (max_norm / norm(grads).clamp_min(1e-12)).clamp(max=1.0)
    return [g * scale for g in grads]


@contextlib.contextmanager
def kept_buffers(model: nn.Module) -> Iterator[None]:
    """Restore every buffer (BatchNorm running statistics) after the block: the poisoner's
    train-mode forward passes must not move the victim's statistics."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)
