"""Rectified rejection (Pang et al. 2021): the RR head, its training term and its scores.

For logits f(x) with softmax p, on the penultimate features z:

    Con(x)   = max_k p_k               the confidence (what a plain model rejects by)
    T-Con(x) = p_y                     the true confidence: a better oracle, but needs y
    A(x)     = sigmoid(aux(z))         the RR head (a WithAuxHead model's `aux`)
    R-Con(x) = Con(x) · A(x)           the rectified confidence, trained to match T-Con

Training adds λ·BCE(R-Con(x_adv), T-Con(x_adv)) to the AT loss, with T-Con detached and,
for correctly classified inputs, the gradient through Con stopped too (there Con = T-Con,
so only A has something to learn). Since A ≤ 1, R-Con ≤ Con; the paper's coupled rule
(accept when both Con and R-Con exceed 1/2) therefore accepts exactly when R-Con > 1/2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reprise.training import Hook


def has_rr_head(model) -> bool:
    return hasattr(model, "aux")


def confidences(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(Con, T-Con, predicted class) from logits."""
    p = F.softmax(logits.float(), dim=1)
    con, pred = p.max(1)
    return con, p.gather(1, y[:, None]).squeeze(1), pred


def rectified(con: torch.Tensor, aux_logit: torch.Tensor) -> torch.Tensor:
    """R-Con = Con · sigmoid(aux logit)."""
    return con * torch.sigmoid(aux_logit.float()).view(-1)


def bce(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample BCE(p, target) in fp32 with autocast off: CUDA autocast refuses
    F.binary_cross_entropy ("unsafe to autocast"), and a bf16 probability near 0 or 1 would
    lose the log's precision anyway."""
    with torch.autocast(p.device.type, enabled=False):
        return F.binary_cross_entropy(p.float(), target.float(), reduction="none")


def rr_loss(
    logits: torch.Tensor, aux_logit: torch.Tensor, y: torch.Tensor, stop_gradient: bool = True
) -> torch.Tensor:
    """Per-sample BCE(R-Con, detach(T-Con)); Con detached where the prediction is right."""
    con, tcon, pred = confidences(logits, y)
    if stop_gradient:
        con = torch.where(pred == y, con.detach(), con)
    return bce(rectified(con, aux_logit), tcon.detach())


class RectifiedRejection(Hook):
    """Adds λ·mean rr_loss on the method's adversarial forward pass (batch.adv), so it plugs
    into PGD-AT, TRADES and CCAT alike. The epoch table gets the mean BCE as `rr_bce`."""

    def __init__(self, lam: float = 1.0, stop_gradient: bool = True):
        self.lam, self.stop_gradient = lam, stop_gradient
        self._sum, self._count = 0.0, 0

    def start_epoch(self, model, data, epoch):
        self._sum, self._count = 0.0, 0

    def loss(self, model, batch):
        out = batch.adv
        per_sample = rr_loss(out.logits, model.aux(out.features), batch.y, self.stop_gradient)
        self._sum = self._sum + per_sample.detach().double().sum()  # stays on the device
        self._count += len(per_sample)
        return self.lam * per_sample.mean()

    def epoch_metrics(self):
        return {"rr_bce": float(self._sum) / max(self._count, 1)}

    def config(self):
        return {"lambda": self.lam, "stop_gradient": self.stop_gradient}
