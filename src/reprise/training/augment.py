"""Crop + flip augmentation of a whole batch in torch, on the batch's device.

The random offsets and flips come from a CPU generator, so the augmented data are the same
on any device and are fixed by (seed, epoch) for exact resumption."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_flip(x: torch.Tensor, generator: torch.Generator, crop: int, flip: bool) -> torch.Tensor:
    n, _, h, w = x.shape
    if crop:
        dy = torch.randint(0, 2 * crop + 1, (n, 1, 1), generator=generator)
        dx = torch.randint(0, 2 * crop + 1, (n, 1, 1), generator=generator)
        rows = (dy + torch.arange(h).view(1, h, 1)).to(x.device)
        cols = (dx + torch.arange(w).view(1, 1, w)).to(x.device)
        padded = F.pad(x, (crop, crop, crop, crop))
        batch = torch.arange(n, device=x.device).view(n, 1, 1)
        x = padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # (n, h, w, c) -> (n, c, h, w)
    if flip:
        flipped = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(flipped.view(n, 1, 1, 1), x.flip(3), x)
    return x
