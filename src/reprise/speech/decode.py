"""Decoding and endpointing.

`greedy_stream` decodes one utterance the way a device does: segment by segment (each with
its look-ahead), cached encoder and predictor state, and records for every emitted token its
encoder frame and the chunk it came out of, and for every chunk the audio time it needs and
its measured compute time (the input of the real-time simulation in metrics.py).

Endpointers decide when the user has stopped speaking:
- `eos_endpoint`: the transducer emits the end-of-sentence token </s> (joint endpointing);
- `vad_endpoint`: a trailing-silence threshold on frame energy (a classic VAD endpointer).
`truncate` keeps what was recognised up to the endpoint's chunk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from reprise.speech.features import FRAME_SHIFT
from reprise.speech.tokens import BLANK, EOS


@dataclass
class StreamResult:
    tokens: list[int] = field(default_factory=list)  # emitted ids, </s> included
    frames: list[int] = field(default_factory=list)  # encoder frame of each token
    chunk_of: list[int] = field(default_factory=list)  # chunk that emitted each token
    chunk_audio_end: list[float] = field(default_factory=list)  # s of audio each chunk needs
    chunk_compute: list[float] = field(default_factory=list)  # measured compute per chunk, s
    frame_shift: float = 0.04  # seconds per encoder frame

    def emission_times(self) -> list[float]:
        """Alignment time of each token: its frame's end (frame x shift + shift)."""
        return [(f + 1) * self.frame_shift for f in self.frames]

    def availability(self) -> list[float]:
        """Audio time at which each token can be emitted (its chunk's audio end)."""
        return [self.chunk_audio_end[c] for c in self.chunk_of]

    def eos_chunk(self) -> int | None:
        return next((c for k, c in zip(self.tokens, self.chunk_of, strict=True) if k == EOS), None)


@torch.inference_mode()
def greedy_stream(
    model,
    feats: torch.Tensor,
    domain: int | None = None,
    segment: int | None = None,
    max_symbols: int = 5,
    stop_at_eos: bool = False,
) -> StreamResult:
    """Stream (T, F) normalised features through `model` (eval mode), greedy search, with
    segments of `segment` encoder frames (default: the model's)."""
    t = feats.shape[0]
    sf, rf = model.chunk_frames(segment)
    dom = None if domain is None else torch.tensor([domain])
    state = model.encoder.init_state(1)
    pred, pstate = model.predictor.step(torch.tensor([BLANK]))
    pred_proj = model.joiner.pred(pred)  # projected once per emitted token, for the joiner
    res = StreamResult(frame_shift=model.frame_shift)
    frame0 = 0
    x = feats[None]
    for ci, i in enumerate(range(0, t, sf)):
        # the process's CPU time: decoding runs on one thread (decode(threads=1)), so it is the
        # chunk's compute, which other processes on a busy machine do not inflate as they
        # would wall time (RTF and the UPL simulation read it); with more threads it sums them
        start = time.process_time()
        enc, state = model.stream_encode(x[:, i : i + sf], x[:, i + sf : i + sf + rf], state, dom)
        enc_proj = model.joiner.enc(enc)  # once a frame, however many symbols it emits
        for j in range(enc.shape[1]):
            for _ in range(max_symbols):
                k = int(model.joiner.step(enc_proj[:, j], pred_proj).argmax(-1))
                if k == BLANK:
                    break
                res.tokens.append(k)
                res.frames.append(frame0 + j)
                res.chunk_of.append(ci)
                pred, pstate = model.predictor.step(torch.tensor([k]), pstate)
                pred_proj = model.joiner.pred(pred)
        frame0 += enc.shape[1]
        res.chunk_compute.append(time.process_time() - start)
        res.chunk_audio_end.append(min(i + sf + rf, t) * FRAME_SHIFT)
        if stop_at_eos and EOS in res.tokens:
            break
    return res


def truncate(res: StreamResult, last_chunk: int | None) -> list[int]:
    """Token ids (without </s>) emitted up to and including chunk `last_chunk` (None: all)."""
    return [
        k
        for k, c in zip(res.tokens, res.chunk_of, strict=True)
        if k != EOS and (last_chunk is None or c <= last_chunk)
    ]


def eos_endpoint(res: StreamResult) -> float | None:
    """Audio time of the joint endpoint: the audio end of the chunk that emitted </s>."""
    c = res.eos_chunk()
    return None if c is None else res.chunk_audio_end[c]


def vad_endpoint(
    energy_db: np.ndarray,
    threshold: float,
    delta_db: float = 20.0,
    frame_shift: float = FRAME_SHIFT,
) -> float | None:
    """Time (s) at which `threshold` s of trailing silence has been seen after speech.

    A 10-ms frame is speech when its energy is within `delta_db` of the loudest frame so far
    (causal); the endpoint fires at the end of the first run of non-speech frames lasting
    `threshold` seconds that follows a speech frame. None if it never fires."""
    need = max(1, int(round(threshold / frame_shift)))
    loudest, run, spoke = -np.inf, 0, False
    for i, e in enumerate(energy_db):
        loudest = max(loudest, e)
        if e > loudest - delta_db:
            spoke, run = True, 0
        elif spoke:
            run += 1
            if run >= need:
                return (i + 1) * frame_shift
    return None


def chunk_at(res: StreamResult, audio_time: float) -> int:
    """The first chunk whose audio reaches `audio_time` (the last chunk if none does)."""
    for c, end in enumerate(res.chunk_audio_end):
        if end >= audio_time - 1e-9:
            return c
    return len(res.chunk_audio_end) - 1


@torch.inference_mode()
def beam_search(model, feats: torch.Tensor, domain: int | None = None, beam: int = 4):
    """Time-synchronous beam search (at most one token per frame) over the full-utterance
    encoder output; hypotheses with the same tokens merge. Returns (tokens, frames)."""
    dom = None if domain is None else torch.tensor([domain])
    enc, _ = model.encode(feats[None], torch.tensor([feats.shape[0]]), dom)
    enc = model.joiner.enc(enc)
    pred0, st0 = model.predictor.step(torch.tensor([BLANK]))
    # tokens -> (log prob, frames, projected predictor output, predictor state)
    hyps = {(): (0.0, (), model.joiner.pred(pred0), st0)}
    for t in range(enc.shape[1]):
        cand: dict[tuple, list] = {}
        for toks, (score, frames, pred, st) in hyps.items():
            lp = torch.log_softmax(model.joiner.step(enc[:, t], pred)[0], -1)
            top = torch.topk(lp, min(beam + 1, lp.numel()))
            for v, k in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                key = toks if k == BLANK else toks + (k,)
                new = (score + v, frames if k == BLANK else frames + (t,), pred, st, k)
                if key in cand:  # the same tokens by another path: add probabilities
                    old = cand[key]
                    best = max(old, new, key=lambda h: h[0])
                    cand[key] = [float(np.logaddexp(old[0], new[0])), *best[1:]]
                else:
                    cand[key] = list(new)
        kept = sorted(cand.items(), key=lambda kv: -kv[1][0])[:beam]
        hyps = {}
        for key, (score, frames, pred, st, k) in kept:
            if k != BLANK:  # advance the predictor only for the hypotheses kept
                pred, st = model.predictor.step(torch.tensor([k]), st)
                pred = model.joiner.pred(pred)
            hyps[key] = (score, frames, pred, st)
    best = max(hyps.items(), key=lambda kv: kv[1][0])
    return list(best[0]), list(best[1][1])
