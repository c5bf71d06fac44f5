"""Momentum iterative attacks under L∞: MIM (Dong et al. 2018), TIM (translation-invariant,
Dong et al. 2019) and DI-MIM (diverse inputs, Xie et al. 2019), one loop with two switches.

Each step takes the gradient of the loss (on a randomly resized-and-padded copy of x_adv
with probability `di_prob`: DI), smooths it with a Gaussian kernel (`ti_kernel` > 0: TI),
divides it by its mean absolute value per sample, accumulates it with momentum `decay`, and
moves x_adv by step_size · sign(momentum) inside the ε-ball (the core's Ball). It starts at
x, as the papers do. The loss and the optional `extra` term are those of the core PGD.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reprise.attacks.pgd import LOSSES, Ball, Extra, LossFn, forward, from_section
from reprise.errors import ConfigError
from reprise.models.base import evaluating


def gaussian_kernel(size: int, nsig: float = 3.0) -> torch.Tensor:
    """A size×size Gaussian spanning ±nsig standard deviations, summing to 1 (TI's kernel)."""
    t = torch.linspace(-nsig, nsig, size, dtype=torch.float64)
    k1 = torch.exp(-0.5 * t**2)
    k = torch.outer(k1, k1)
    return (k / k.sum()).float()


def smooth(grad: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve each channel of grad (N×C×H×W) with kernel, keeping the size."""
    c = grad.shape[1]
    weight = kernel.to(grad)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(grad, weight, padding="same", groups=c)


def diverse_input(x: torch.Tensor, resize: float, prob: float) -> torch.Tensor:
    """DI's transform: with probability `prob` (per batch) pad x at a random offset to
    round(size·resize) pixels (at least one more) and resize back with nearest neighbours.
    Differentiable in x, so the gradient flows back through it."""
    if prob <= 0 or float(torch.rand(())) >= prob:
        return x
    size = x.shape[-1]
    grown = max(size + 1, round(size * resize))
    top, left = (int(torch.randint(0, grown - size + 1, ())) for _ in range(2))
    padded = F.pad(x, (left, grown - size - left, top, grown - size - top), value=0.0)
    return F.interpolate(padded, size=x.shape[-2:], mode="nearest")


def mim(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    decay: float = 1.0,
    ti_kernel: int = 0,
    ti_nsig: float = 3.0,
    di_prob: float = 0.0,
    di_resize: float = 1.1,
    loss: str | LossFn = "ce",
    targeted: bool = False,
    extra: Extra | None = None,
) -> torch.Tensor:
    """MIM; TIM with ti_kernel > 0; DI-MIM with di_prob > 0 (both: TI-DI-MIM)."""
    x, y = x.detach(), y.detach()
    ball = Ball(x, eps, "linf")
    loss_fn = loss if callable(loss) else LOSSES[loss]
    sign = -1.0 if targeted else 1.0
    kernel = gaussian_kernel(ti_kernel, ti_nsig) if ti_kernel > 0 else None
    x_adv, momentum = x.clone(), torch.zeros_like(x)
    with evaluating(model), torch.enable_grad():
        for _ in range(steps):
            x_adv.requires_grad_(True)
            out = forward(model, diverse_input(x_adv, di_resize, di_prob))
            objective = sign * loss_fn(out.logits.float(), y)
            if extra is not None:
                objective = objective + extra(out, x_adv)
            (grad,) = torch.autograd.grad(objective.sum(), x_adv)
            with torch.no_grad():
                if kernel is not None:
                    grad = smooth(grad, kernel)
                grad = grad / grad.abs().mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)
                momentum = decay * momentum + grad
                x_adv = ball.project(x_adv.detach() + step_size * momentum.sign())
    return x_adv.detach()


@dataclass(frozen=True)
class MIM:
    """A configured momentum attack (MIM / TIM / DI-MIM); call it like `mim` on a batch."""

    eps: float
    step_size: float
    steps: int
    decay: float = 1.0
    ti_kernel: int = 0
    ti_nsig: float = 3.0
    di_prob: float = 0.0
    di_resize: float = 1.1
    loss: str = "ce"
    targeted: bool = False

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ConfigError(f"attack.loss = {self.loss!r} is not allowed; expected {[*LOSSES]}")
        if not (self.eps >= 0 and self.step_size >= 0 and self.steps >= 0):
            raise ConfigError("attack eps, step_size and steps must be >= 0")
        if self.ti_kernel < 0 or (self.ti_kernel and self.ti_kernel % 2 == 0):
            raise ConfigError(f"attack.ti_kernel = {self.ti_kernel}; expected 0 or an odd size")
        if not 0 <= self.di_prob <= 1 or self.di_resize < 1:
            raise ConfigError("attack.di_prob must lie in [0, 1] and di_resize be >= 1")

    @classmethod
    def from_config(cls, cfg: dict) -> MIM:
        return from_section(cls, cfg)

    def __call__(self, model, x, y, *, extra=None) -> torch.Tensor:
        return mim(model, x, y, extra=extra, **self.__dict__)
