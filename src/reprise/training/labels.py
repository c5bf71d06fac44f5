"""Label noise fixed by a seed (random labels: rate 1.0)."""

from __future__ import annotations

import torch


def random_labels(y: torch.Tensor, num_classes: int, rate: float, seed: int) -> torch.Tensor:
    """A copy of y where a `rate` fraction of the samples (chosen by `seed`) get a label drawn
    uniformly from all classes (so it may equal the old one, as in Zhang et al. 2017)."""
    g = torch.Generator().manual_seed(seed)
    noisy = torch.rand(len(y), generator=g) < rate
    drawn = torch.randint(0, num_classes, (len(y),), generator=g)
    return torch.where(noisy, drawn, y)
