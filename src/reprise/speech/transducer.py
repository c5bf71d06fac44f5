"""The streaming transducer: time reduction (+ domain indicator) -> Emformer -> joiner,
with an LSTM predictor.

Input features (B, T, 80) at 10 ms are stacked `reduction` frames at a time and projected to
the model width; a one-hot domain vector (flexit's domain indicator, `domains` > 0) is
concatenated to each stacked frame before the projection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from reprise.speech.emformer import Emformer, EmformerConfig
from reprise.speech.joiner import Joiner
from reprise.speech.predictor import Predictor


@dataclass
class TransducerConfig:
    vocab: int
    feat_dim: int = 80
    reduction: int = 4  # feature frames per encoder frame
    domains: int = 0  # size of the domain-indicator vector (0 = no indicator)
    encoder: EmformerConfig = field(default_factory=EmformerConfig)
    pred_dim: int = 128
    pred_layers: int = 1
    join_dim: int = 256

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TransducerConfig:
        d = dict(d)
        d["encoder"] = EmformerConfig(**d.get("encoder", {}))
        return cls(**d)


class Transducer(nn.Module):
    def __init__(self, c: TransducerConfig):
        super().__init__()
        self.c = c
        d = c.encoder.d_model
        self.input = nn.Linear(c.feat_dim * c.reduction + c.domains, d)
        self.encoder = Emformer(c.encoder)
        self.predictor = Predictor(c.vocab, c.pred_dim, c.pred_layers, d, c.encoder.dropout)
        self.joiner = Joiner(d, c.join_dim, c.vocab)
        # CTC head on the encoder: an auxiliary loss at training (train.ctc_weight) that makes
        # the encoder learn acoustics before the predictor's language model dominates
        self.ctc = nn.Linear(d, c.vocab)

    @property
    def frame_shift(self) -> float:
        """Seconds per encoder frame."""
        return 0.01 * self.c.reduction

    def reduce(self, feats: torch.Tensor, domain: torch.Tensor | None) -> torch.Tensor:
        """(B, T, F) -> (B, ceil(T/r), D): stack r frames (zero-padding the last), add domain."""
        b, t, f = feats.shape
        r = self.c.reduction
        pad = -t % r
        x = nn.functional.pad(feats, (0, 0, 0, pad)).reshape(b, (t + pad) // r, f * r)
        if self.c.domains:
            if domain is None:
                raise ValueError("this model takes a domain indicator: pass domain ids (B,)")
            onehot = nn.functional.one_hot(domain.long(), self.c.domains).to(x.dtype)
            x = torch.cat([x, onehot[:, None].expand(-1, x.shape[1], -1)], dim=-1)
        return self.input(x)

    def encode(self, feats, lengths, domain=None, segment=None):
        """Full-utterance encoder pass: (B, T, F) -> ((B, T', D), lengths')."""
        r = self.c.reduction
        enc_len = (lengths + r - 1) // r
        # zero the padding, which would otherwise be stacked into an utterance's last frame
        valid = torch.arange(feats.shape[1], device=feats.device)[None] < lengths[:, None]
        x = self.reduce(feats * valid[..., None], domain)
        return self.encoder(x, enc_len, segment), enc_len

    def forward(self, feats, lengths, targets, domain=None, segment=None):
        """Logits (B, T', U+1, V) of every lattice cell, and the encoder lengths."""
        enc, enc_len = self.encode(feats, lengths, domain, segment)
        return self.joiner(enc, self.predictor(targets)), enc_len

    # --- streaming ---------------------------------------------------------------------
    def chunk_frames(self, segment: int | None = None) -> tuple[int, int]:
        """Feature frames per segment and per look-ahead."""
        e = self.c.encoder
        return (segment or e.segment) * self.c.reduction, e.right * self.c.reduction

    def stream_encode(self, seg_feats, right_feats, state, domain=None):
        """Encode one segment's features with its look-ahead features (each (B, n, F), n a
        multiple of the reduction except at the end of the stream)."""
        s = self.reduce(seg_feats, domain)
        r = self.reduce(right_feats, domain) if right_feats.shape[1] else s[:, :0]
        return self.encoder.stream(s, r, state)
