"""Accuracy, compute and latency metrics of streaming ASR (torch-free).

Times are seconds of audio from the start of the utterance unless said otherwise.
- WER (jiwer), over a corpus.
- RTF: compute time / audio time (measure the compute single-threaded).
- Token emission delay: a word's emission time minus its true end, for words recognised
  correctly (aligned "equal" by jiwer); summarised by mean, P50 and P90.
- Endpoint latency: endpoint decision time minus end of speech; early cut-off: the endpoint
  fired before the speech ended.
- First-token latency: first token's emission time minus the start of speech.
- UPL (user-perceived latency): in a real-time simulation where chunk k's audio has arrived at
  a_k and its compute takes the measured c_k, chunk k finishes at
  f_k = max(a_k, f_{k-1}) + c_k; the final result is available when the chunk where the
  endpointer fired has finished, and UPL = that time minus the end of speech.
- FLOPs per second of audio, counted from the model's shapes (`transducer_flops`).
"""

from __future__ import annotations

import math

import numpy as np


def wer(refs: list[str], hyps: list[str]) -> float:
    """Corpus word error rate (edits / reference words); an empty hypothesis counts its
    reference words as deletions."""
    import jiwer

    if len(refs) != len(hyps) or not refs:
        raise ValueError(f"wer: {len(refs)} references vs {len(hyps)} hypotheses")
    return float(jiwer.wer(list(refs), [h if h.strip() else "" for h in hyps]))


def rtf(compute_seconds: float, audio_seconds: float) -> float:
    return compute_seconds / audio_seconds


def word_emission_times(hyp_words_tokens: list[list[float]]) -> list[float]:
    """A word's emission time: that of its last token."""
    return [ts[-1] for ts in hyp_words_tokens]


def emission_delays(
    ref_words: list[str], ref_ends: list[float], hyp_words: list[str], hyp_times: list[float]
) -> list[float]:
    """Delay (hyp time - true end) of each reference word matched exactly by the hypothesis."""
    import jiwer

    if not hyp_words or not ref_words:
        return []
    out = jiwer.process_words(" ".join(ref_words), " ".join(hyp_words))
    delays = []
    for chunk in out.alignments[0]:
        if chunk.type == "equal":
            for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
                r, h = chunk.ref_start_idx + k, chunk.hyp_start_idx + k
                delays.append(hyp_times[h] - ref_ends[r])
    return delays


def summarize(values: list[float]) -> dict:
    """mean, p50, p90 (None when there are no values)."""
    if not values:
        return {"mean": None, "p50": None, "p90": None}
    v = np.asarray(values, float)
    return {
        "mean": float(v.mean()),
        "p50": float(np.percentile(v, 50)),
        "p90": float(np.percentile(v, 90)),
    }


def endpoint_latency(endpoint: float | None, speech_end: float) -> float | None:
    return None if endpoint is None else endpoint - speech_end


def early_cutoff_rate(endpoints: list[float | None], speech_ends: list[float]) -> float:
    """Fraction of utterances whose endpoint fired before their speech ended."""
    cut = [e is not None and e < s for e, s in zip(endpoints, speech_ends, strict=True)]
    return float(np.mean(cut))


def first_token_latency(token_times: list[float], speech_start: float) -> float | None:
    return None if not token_times else token_times[0] - speech_start


def simulate_stream(arrivals: list[float], compute: list[float]) -> list[float]:
    """Finish time of each chunk when chunk k arrives at arrivals[k] and takes compute[k]."""
    done, finish = -math.inf, []
    for a, c in zip(arrivals, compute, strict=True):
        done = max(a, done) + c
        finish.append(done)
    return finish


def upl(arrivals: list[float], compute: list[float], final_chunk: int, speech_end: float) -> float:
    """User-perceived latency: when the final result (chunk `final_chunk`) is ready, minus
    the end of speech."""
    return simulate_stream(arrivals, compute)[final_chunk] - speech_end


def pearson_spearman(x, y) -> tuple[float, float]:
    from scipy.stats import pearsonr, spearmanr

    return float(pearsonr(x, y)[0]), float(spearmanr(x, y)[0])


def transducer_flops(cfg: dict, tokens_per_second: float = 0.0) -> float:
    """Multiply-adds x 2 per second of audio for a TransducerConfig (as a dict).

    Encoder: per segment of S frames (R look-ahead, L left, M memories, summary query), each
    layer projects queries for S+R+1 rows and keys/values for S+R new rows (the left context
    and memories are cached; memory keys are re-projected: M rows), scores and mixes against
    M+R+L+S keys, applies the output projection and feed-forward to S+R rows. Input
    projection per encoder frame; the joiner runs once per frame plus once per emitted token,
    the predictor (LSTM + projection) once per token. Layer norms, softmax and
    nonlinearities are not counted."""
    e = cfg["encoder"]
    d, s, r, left, m, ff = e["d_model"], e["segment"], e["right"], e["left"], e["memory"], e["ffn"]
    frames = 1.0 / (0.01 * cfg["reduction"])  # encoder frames per second
    segments = frames / s
    nq, nk_new = s + r + 1, s + r
    nk = m + r + left + s
    layer = d * d * nq + 2 * d * d * (nk_new + m) + 2 * nq * nk * d + d * d * (s + r)
    layer += 2 * d * ff * (s + r)
    enc = e["layers"] * layer * segments
    enc += (cfg["feat_dim"] * cfg["reduction"] + cfg["domains"]) * d * frames
    j, v, p = cfg["join_dim"], cfg["vocab"], cfg["pred_dim"]
    joiner = 2 * d * j + j * v
    predictor = 4 * p * (p + p) * cfg["pred_layers"] + p * d
    joiner_evals = frames + tokens_per_second
    return 2.0 * (enc + joiner * joiner_evals + predictor * tokens_per_second)
