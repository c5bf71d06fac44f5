"""Multi-target PGD (Gowal et al. 2019): one targeted-margin PGD run per wrong class.

Run k maximises logit_t − logit_y with t the k-th class other than y, by the configured PGD
(its ε, step size, steps, norm and random start); each sample keeps the run whose result
has the highest cross-entropy. K − 1 runs: for 10 classes, 9 times the cost of one PGD.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reprise.attacks.pgd import PGD
from reprise.models.base import evaluating


def target_margin(offset: int):
    """The loss of run `offset` (1..K-1): logit of class (y + offset) mod K minus logit of y."""

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = (y + offset) % logits.shape[1]
        return (logits.gather(1, t[:, None]) - logits.gather(1, y[:, None])).squeeze(1)

    return loss


def multitarget(model, x: torch.Tensor, y: torch.Tensor, attack: PGD, num_classes: int, **kw):
    """The worst of the K − 1 targeted runs per sample (`kw`, e.g. extra=, goes to each run)."""
    best, best_loss = x.clone(), torch.full((len(x),), -float("inf"), device=x.device)
    for offset in range(1, num_classes):
        x_adv = attack(model, x, y, loss=target_margin(offset), **kw)
        with torch.no_grad(), evaluating(model):
            ce = F.cross_entropy(model(x_adv).float(), y, reduction="none")
        better = ce > best_loss
        best[better], best_loss[better] = x_adv[better], ce[better]
    return best
