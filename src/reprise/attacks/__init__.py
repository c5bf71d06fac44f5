"""White-box attacks: FGSM and PGD (L∞/L2, CE/CW, targeted, early stop, extra-loss hook),
multi-target PGD, and Carlini-Wagner with an optional penalty (adaptive attacks).

attack = PGD.from_config({"eps": "8/255", "step_size": "2/255", "steps": 10})
x_adv = attack(model, x, y)                        # one batch
x_adv = attack_dataset(model, data, attack, accel=rt.accel())   # a whole split, batched
x_adv = attack(model, x, y, extra=lambda out, x_adv: score(out.features))  # adaptive
x_adv = multitarget(model, x, y, attack, num_classes=10)
x_adv = CW.from_config({"steps": 100, "search_steps": 9})(model, x, y, penalty=...)
"""

from __future__ import annotations

import torch

from reprise.attacks.cw import CW, Penalty, cw
from reprise.attacks.multitarget import multitarget, target_margin
from reprise.attacks.pgd import (
    LOSSES,
    NORMS,
    PGD,
    Ball,
    Extra,
    Forward,
    LossFn,
    fgsm,
    forward,
    magnitude,
    margin,
    pgd,
)
from reprise.runtime import Accel

__all__ = [
    "CW",
    "LOSSES",
    "NORMS",
    "PGD",
    "Ball",
    "Extra",
    "Forward",
    "LossFn",
    "Penalty",
    "attack_dataset",
    "cw",
    "fgsm",
    "forward",
    "magnitude",
    "margin",
    "multitarget",
    "pgd",
    "target_margin",
]


def attack_dataset(model, data, attack, *, batch_size: int = 256, accel=None, **kw) -> torch.Tensor:
    """Adversarial versions of every image of `data` (an ImageData), batch by batch, on CPU.

    `attack` is a PGD (or any callable with its signature); `kw` goes to each call (extra=...).
    With an `accel`, batches run on its device under its autocast and memory layout."""
    accel = accel or Accel.cpu()
    out = []
    for x, y in accel.batches(data, batch_size):
        with accel.autocast():
            x_adv = attack(model, x, y, **kw)
        out.append(x_adv.float().cpu().contiguous())
    return torch.cat(out) if out else data.x[:0].clone()
