"""The poisoner: a poisoned trigger batch, accumulative-phase batches (online) and the
accumulative update (federated), all from gradient_cosine.

With g_T = ∇θL(S_T) and g_val = ∇θL(S_val), one victim step on the trigger changes the
validation loss by about −lr·⟨g_val, g_T⟩, so the trigger does most harm when
c(θ) = cos(g_T, g_val) is as negative as possible:
- the poisoned trigger minimises c over the trigger's pixels (L∞ ε);
- the accumulative phase moves θ down ∇θc before the trigger arrives: online, each
  incoming batch is perturbed (L∞ ε) so that its own gradient, which the victim descends,
  points along γ·ĝ_t + ∇θc/‖∇θc‖ (ĝ_t: the clean batch's normalised gradient, which keeps
  the victim learning, hence accurate). Federated, the poisoner submits updates, not data:
  its trigger is the reversed gradient −g_T of the clean trigger batch, and in the
  accumulative rounds it submits λ·∇θ cos(−g_T, g_val), clipped in L2 (the server descends
  it, so the reversed trigger comes to point along −g_val: ascent of the validation loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reprise.errors import ConfigError
from reprise.papers.poisoning.gradcos import (
    Grads,
    clip_norm,
    gradient_cosine,
    kept_buffers,
    loss_grad,
    norm,
    params_of,
    signed_ascent,
)


@dataclass(frozen=True)
class PoisonConfig:
    """`eps`, `steps` and `step_size` (default 2·eps/steps, the official code's) of the
    signed-gradient steps on pixels; `gamma` weights the clean gradient in the accumulative
    target (0: the code's --only_reg); `adv_trigger`: the accumulative direction is taken
    for the poisoned trigger (true) or the clean one."""

    eps: float
    steps: int = 2
    step_size: float | None = None
    gamma: float = 0.0
    adv_trigger: bool = True

    def __post_init__(self):
        if not 0 <= self.eps <= 1:
            raise ConfigError(f"poison.eps = {self.eps}; expected a value in [0, 1]")
        if self.steps < 1:
            raise ConfigError(f"poison.steps = {self.steps}; expected >= 1")
        if self.step_size is None:
            object.__setattr__(self, "step_size", 2 * self.eps / self.steps)

    @classmethod
    def from_config(cls, cfg: dict) -> PoisonConfig:
        try:
            return cls(**cfg)
        except TypeError as e:
            raise ConfigError(f"poison: {e}") from None


class Poisoner:
    """Knows the trigger batch S_T and the validation batch S_val; sees the current model."""

    def __init__(self, cfg: PoisonConfig, trigger: tuple, val: tuple):
        self.cfg, self.trigger_batch, self.val = cfg, trigger, val

    def _pixels(self, objective, x, sign):
        c = self.cfg
        return signed_ascent(objective, x, c.eps, c.step_size, c.steps, sign)

    def trigger(self, model) -> torch.Tensor:
        """The poisoned trigger images: minimise cos(∇θL(S_T), ∇θL(S_val))."""
        x, y = self.trigger_batch
        with kept_buffers(model):
            g_val = [g.detach() for g in loss_grad(model, *self.val)]
        return self._pixels(lambda a: gradient_cosine(model, a, y, g_val, [a]), x, -1.0)

    def direction(self, model) -> Grads:
        """∇θ cos(∇θL(S_T), ∇θL(S_val)), both gradients live (second order)."""
        x, y = self.trigger_batch
        if self.cfg.adv_trigger:
            x = self.trigger(model)
        _, grads = gradient_cosine(model, x, y, self.val, params_of(model))
        return grads

    def accumulative_batch(self, model, x, y) -> torch.Tensor:
        """The incoming batch, perturbed so that descending its gradient descends ∇θc."""
        d = self.direction(model)
        target = [g / norm(d).clamp_min(1e-12) for g in d]
        if self.cfg.gamma:
            with kept_buffers(model):
                clean = loss_grad(model, x, y)
            scale = self.cfg.gamma / norm(clean).clamp_min(1e-12)
            target = [t + scale * g for t, g in zip(target, clean, strict=True)]
        return self._pixels(lambda a: gradient_cosine(model, a, y, target, [a]), x, 1.0)

    def federated_update(self, model, lam: float, clip: float | None) -> Grads:
        """The poisoner's submitted update in the accumulative rounds: λ·∇θ cos(−g_T, g_val)
        for the clean trigger (its trigger will be the reversed gradient −g_T), clipped to L2
        norm `clip`. The server descends it, which turns −g_T towards −g_val."""
        _, grads = gradient_cosine(model, *self.trigger_batch, self.val, params_of(model))
        return clip_norm([-lam * g for g in grads], clip)

    def trigger_update(self, model, scale: float) -> Grads:
        """Federated trigger round: the trigger batch's reversed gradient −scale·∇θL(S_T)
        (a poisoned update; the official code's trigger, not clipped there either)."""
        with kept_buffers(model):
            grads = loss_grad(model, *self.trigger_batch)
        return [-scale * g for g in grads]
