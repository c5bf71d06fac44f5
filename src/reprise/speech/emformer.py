"""Emformer encoder (Shi et al., ICASSP 2021): a streaming transformer.

The input (after time reduction) is cut into segments of S frames. Each layer lets segment i
attend to
- a memory bank: up to M summary vectors of the segments before it,
- a left context: the last L frames before the segment (cached keys and values),
- the segment itself, and
- a right context (look-ahead): the next R frames, which each layer processes as a separate
  copy ("right-context block") so that later segments never change an earlier output.
A summary query (the mean of the segment) attends to the same keys; its output becomes the
segment's memory vector for the next layer.

`forward` runs a whole utterance at once with attention masks (training);
`stream` runs one segment plus its look-ahead with cached state (inference). Both compute the
same function, frame for frame (tests/test_speech_model.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

NEG = -1e9  # additive mask; finite, so a fully masked (padding) row stays finite


@dataclass
class EmformerConfig:
    d_model: int = 144
    n_heads: int = 4
    ffn: int = 576
    layers: int = 4
    segment: int = 4  # S, encoder frames
    left: int = 16  # L
    right: int = 1  # R, look-ahead
    memory: int = 4  # M, memory-bank size (0 = none)
    dropout: float = 0.1


class EmformerLayer(nn.Module):
    def __init__(self, c: EmformerConfig):
        super().__init__()
        self.c = c
        self.norm_in = nn.LayerNorm(c.d_model)
        self.q = nn.Linear(c.d_model, c.d_model)
        self.kv = nn.Linear(c.d_model, 2 * c.d_model)
        self.out = nn.Linear(c.d_model, c.d_model)
        self.norm_ffn = nn.LayerNorm(c.d_model)
        self.ffn = nn.Sequential(
            nn.Linear(c.d_model, c.ffn),
            nn.GELU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.ffn, c.d_model),
        )
        self.norm_out = nn.LayerNorm(c.d_model)
        self.drop = nn.Dropout(c.dropout)

    def attend(self, q, k, v, mask):
        """Multi-head attention; q (B, Nq, D), k/v (B, Nk, D), mask (B or 1, Nq, Nk) additive.
        torch's fused kernel: softmax(q k^T / sqrt(d_head) + mask) v, with dropout on the
        attention weights in training (a quarter less time than the three ops on a CPU)."""
        b, nq, d = q.shape
        h = self.c.n_heads
        split = lambda x: x.view(b, x.shape[1], h, d // h).transpose(1, 2)  # noqa: E731
        a = nn.functional.scaled_dot_product_attention(
            split(q),
            split(k),
            split(v),
            attn_mask=mask[:, None],
            dropout_p=self.c.dropout if self.training else 0.0,
        )
        return a.transpose(1, 2).reshape(b, nq, d)

    def block(self, x, attn_out):
        """Residual attention output, then the residual feed-forward block."""
        x = x + self.drop(self.out(attn_out))
        return self.norm_out(x + self.drop(self.ffn(self.norm_ffn(x))))


def segment_bounds(t: int, s: int) -> list[tuple[int, int]]:
    return [(i, min(i + s, t)) for i in range(0, t, s)]


class Emformer(nn.Module):
    def __init__(self, c: EmformerConfig):
        super().__init__()
        self.c = c
        self.layers = nn.ModuleList(EmformerLayer(c) for _ in range(c.layers))

    # --- full utterance ----------------------------------------------------------------
    def _layout(self, t: int, lengths: torch.Tensor, seg: int):
        """Index of each right-context frame, and the additive mask over
        queries [rc blocks, utterance, summaries] x keys [memories, rc blocks, utterance]."""
        c, dev = self.c, lengths.device
        segs = segment_bounds(t, seg)
        n = len(segs)
        rc_idx, rc_seg = [], []
        for i, (_, e) in enumerate(segs):
            frames = list(range(e, min(e + c.right, t)))
            rc_idx += frames
            rc_seg += [i] * len(frames)
        rc_idx = torch.tensor(rc_idx, dtype=torch.long, device=dev)
        rc_seg = torch.tensor(rc_seg, dtype=torch.long, device=dev)
        utt_seg = torch.arange(t, device=dev) // seg
        q_seg = torch.cat([rc_seg, utt_seg, torch.arange(n, device=dev)])
        # keys: memory j (of segment j), rc frames, utterance frames
        nrc = len(rc_idx)
        mem_ok = (torch.arange(n, device=dev)[None] < q_seg[:, None]) & (
            torch.arange(n, device=dev)[None] >= q_seg[:, None] - c.memory
        )
        rc_ok = rc_seg[None] == q_seg[:, None]
        start = q_seg * seg
        end = torch.clamp((q_seg + 1) * seg, max=t)
        tt = torch.arange(t, device=dev)[None]
        utt_ok = (tt >= (start - c.left)[:, None]) & (tt < end[:, None])
        ok = torch.cat([mem_ok, rc_ok, utt_ok], dim=1)  # (Nq, Nk)
        # padding: keys from frames at or beyond each utterance's length are never attended
        key_frame = torch.cat(
            [torch.full((n,), -1, device=dev), rc_idx, torch.arange(t, device=dev)]
        )
        key_valid = key_frame[None] < lengths[:, None]  # (B, Nk)
        mem_valid = torch.arange(n, device=dev)[None] * seg < lengths[:, None]
        key_valid[:, :n] = mem_valid
        ok = ok[None] & key_valid[:, None]
        mask = torch.zeros(ok.shape, device=dev).masked_fill(~ok, NEG)
        return rc_idx, nrc, n, mask

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, segment: int | None = None):
        """x (B, T, D) -> (B, T, D); frames >= lengths are padding. `segment` overrides the
        configured segment length (flexit's per-domain segment size)."""
        b, t, d = x.shape
        seg = segment or self.c.segment
        rc_idx, nrc, n, mask = self._layout(t, lengths, seg)
        rc = x[:, rc_idx]
        utt = x
        valid = (torch.arange(t, device=x.device)[None] < lengths[:, None]).float()
        mems = self._summaries(utt, valid, n, seg)  # layer 0's memory bank: the segment means
        for layer in self.layers:
            h = layer.norm_in(torch.cat([rc, utt], dim=1))
            s = self._summaries(h[:, nrc:], valid, n, seg)
            q = layer.q(torch.cat([h, s], dim=1))
            k, v = layer.kv(torch.cat([mems, h], dim=1)).chunk(2, dim=-1)
            a = layer.attend(q, k, v, mask)
            out = layer.block(torch.cat([rc, utt], dim=1), a[:, : nrc + t])
            rc, utt, mems = out[:, :nrc], out[:, nrc:], a[:, nrc + t :]
        return utt

    def _summaries(self, x, valid, n, s):
        """Mean of each segment's valid frames: (B, n, D)."""
        t = x.shape[1]
        pad = n * s - t
        xs = nn.functional.pad(x * valid[..., None], (0, 0, 0, pad)).view(x.shape[0], n, s, -1)
        cnt = nn.functional.pad(valid, (0, pad)).view(x.shape[0], n, s).sum(-1, keepdim=True)
        return xs.sum(2) / cnt.clamp(min=1)

    # --- streaming -------------------------------------------------------------------------
    def init_state(self, batch: int = 1) -> list[dict]:
        """Per layer: memory bank (B, <=M, D), left-context keys/values (B, <=L, D)."""
        d = self.c.d_model
        z = lambda: torch.zeros(batch, 0, d)  # noqa: E731
        return [{"mem": z(), "k": z(), "v": z()} for _ in self.layers]

    def stream(self, seg: torch.Tensor, right: torch.Tensor, state: list[dict]):
        """One segment (B, s, D) with its look-ahead (B, r<=R, D) -> (output (B, s, D), state).

        Every stream in the batch has the same s and r; s may differ from the configured
        segment (as in `forward(segment=...)`)."""
        c = self.c
        s, r = seg.shape[1], right.shape[1]
        mem = seg.mean(1, keepdim=True)  # layer 0's memory vector for this segment
        utt, rc, new_state = seg, right, []
        for i, layer in enumerate(self.layers):
            st = state[i]
            h = layer.norm_in(torch.cat([rc, utt], dim=1))
            summ = h[:, r:].mean(1, keepdim=True)
            q = layer.q(torch.cat([h, summ], dim=1))
            k_new, v_new = layer.kv(h).chunk(2, dim=-1)
            k_mem, v_mem = layer.kv(st["mem"]).chunk(2, dim=-1)
            k = torch.cat([k_mem, k_new[:, :r], st["k"], k_new[:, r:]], dim=1)
            v = torch.cat([v_mem, v_new[:, :r], st["v"], v_new[:, r:]], dim=1)
            mask = torch.zeros(1, q.shape[1], k.shape[1], device=seg.device)
            a = layer.attend(q, k, v, mask)
            out = layer.block(torch.cat([rc, utt], dim=1), a[:, : r + s])
            new_state.append(
                {
                    "mem": torch.cat([st["mem"], mem], dim=1)[:, -c.memory :]
                    if c.memory
                    else st["mem"],
                    "k": torch.cat([st["k"], k_new[:, r:]], dim=1)[:, -c.left :]
                    if c.left
                    else st["k"],
                    "v": torch.cat([st["v"], v_new[:, r:]], dim=1)[:, -c.left :]
                    if c.left
                    else st["v"],
                }
            )
            rc, utt, mem = out[:, :r], out[:, r:], a[:, r + s :]
        return utt, new_state
