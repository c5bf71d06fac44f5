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
    """Accuracy on `data` (an ImageData); on its adversarial versions when `attack` is given."""
    from reprise.attacks import attack_dataset

    if len(data) == 0:
        return float("nan")
    x = (
        data.x
        if attack is None
        else attack_dataset(model, data, attack, batch_size=batch_size, accel=accel, **attack_kw)
    )
    pred = predict(model, x, batch_size=batch_size, accel=accel).argmax(1)
    return (pred == data.y).float().mean().item()
