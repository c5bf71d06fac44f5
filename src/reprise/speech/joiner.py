"""Transducer joint network: combines an encoder frame and a predictor state into
output-token logits (blank, </s> and the units)."""

from __future__ import annotations

import torch
from torch import nn


class Joiner(nn.Module):
    def __init__(self, dim: int, hidden: int, vocab: int):
        super().__init__()
        self.enc = nn.Linear(dim, hidden)
        self.pred = nn.Linear(dim, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, enc: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """enc (..., T, D) and pred (..., U, D) broadcast to logits (..., T, U, V);
        for one frame and one state pass enc (B, D), pred (B, D) via `step`."""
        return self.out(
            torch.tanh(self.enc(enc)[..., :, None, :] + self.pred(pred)[..., None, :, :])
        )

    def step(self, enc: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.enc(enc) + self.pred(pred)))
