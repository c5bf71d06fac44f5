"""Clean and robust accuracy of a model over a dataset, batched, in eval mode."""

from __future__ import annotations

import torch

from reprise.models.base import evaluating
from reprise.runtime import Accel


@torch.no_grad()
def predict(
    model, x: torch.Tensor, *, batch_size: int = 512, accel: Accel | None = None
) -> torch.Tensor:
    """Logits for every image of x (float32, on CPU)."""
    accel = accel or Accel.cpu()
    out = []
    with evaluating(model):
        for i in range(0, len(x), batch_size):
            with accel.autocast():
                out.append(model(accel.batch(x[i : i + batch_size])).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def accuracy(
    model, data, *, attack=None, batch_size: int = 512, accel: Accel | None = None, **attack_kw
) -> float:
    """Accuracy on `data` (an ImageData); on adversarial inputs when `attack` (a PGD, or any
    callable like it) is given, with `attack_kw` passed to each call (e.g. extra=...).
    Batches stay on the device: data already there are not copied."""
    accel = accel or Accel.cpu()
    if len(data) == 0:
        return float("nan")
    correct = torch.zeros((), dtype=torch.int64, device=accel.device)
    for x, y in accel.batches(data, batch_size):
        with accel.autocast():
            if attack is not None:
                x = attack(model, x, y, **attack_kw)
            with torch.no_grad(), evaluating(model):
                correct += (model(x).argmax(1) == y).sum()
    return correct.item() / len(data)
