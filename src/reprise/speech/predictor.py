"""Transducer prediction network: an LSTM language model over the emitted tokens.

It reads the previous non-blank token (blank stands for "start of sentence") and returns one
vector per prefix; `step` advances one token at a time for decoding.
"""

from __future__ import annotations

import torch
from torch import nn

from reprise.speech.tokens import BLANK


class Predictor(nn.Module):
    def __init__(
        self, vocab: int, dim: int = 128, layers: int = 1, out: int = 144, dropout: float = 0.1
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(
            dim, dim, layers, batch_first=True, dropout=dropout if layers > 1 else 0
        )
        self.proj = nn.Linear(dim, out)
        self.drop = nn.Dropout(dropout)

    def forward(self, targets: torch.Tensor) -> torch.Tensor:
        """targets (B, U) -> (B, U+1, out): the output after each prefix [], y1, ..., y1..yU."""
        start = torch.full_like(targets[:, :1], BLANK)
        h, _ = self.lstm(self.drop(self.embed(torch.cat([start, targets], dim=1))))
        return self.proj(h)

    def step(self, token: torch.Tensor, state=None):
        """token (B,) -> (output (B, out), new LSTM state)."""
        h, state = self.lstm(self.embed(token)[:, None], state)
        return self.proj(h[:, 0]), state
