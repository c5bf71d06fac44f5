"""Per-run, per-domain scores of the decode tables, the paired bootstrap of a WER difference,
and the sweep curves (pure pandas/numpy: the evaluate and figures steps and the tests share
them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprise.speech import metrics as M

DOMAINS = ("command", "dictation")
SCORES = ("wer", "rtf", "emission_delay_p50", "emission_delay_p90")


def word_delays(table: pd.DataFrame) -> pd.DataFrame:
    """One row per correctly recognised word: run, domain, delay (s) between the word's
    true end and the time its last token was available to the user."""
    rows = []
    for r in table.itertuples():
        ref = r.ref.split()
        for d in M.emission_delays(ref, list(r.ref_ends), list(r.hyp_words), list(r.hyp_times)):
            rows.append((r.run, r.domain, d))
    return pd.DataFrame(rows, columns=["run", "domain", "delay"])


def scores(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, domain): WER, RTF, emission delay P50 and P90, and the run's
    settings for that domain (segment in ms, Ar-RNNT b_l/b_r in ms, domain vector)."""
    delays = word_delays(table)
    rows = []
    for (run, dom), g in table.groupby(["run", "domain"], sort=False):
        d = delays[(delays["run"] == run) & (delays["domain"] == dom)]["delay"].tolist()
        s = M.summarize(d)
        first = g.iloc[0]
        rows.append(
            {
                "run": run,
                "domain": dom,
                "model": first["model"],
                "n": len(g),
                "wer": M.wer(g["ref"].tolist(), g["hyp"].tolist()),
                "rtf": M.rtf(g["compute"].sum(), g["duration"].sum()),
                "emission_delay_p50": s["p50"],
                "emission_delay_p90": s["p90"],
                "segment_ms": first["segment_ms"],
                "b_l_ms": first["b_l_ms"],
                "b_r_ms": first["b_r_ms"],
                "domain_vector": bool(first["domain_vector"]),
            }
        )
    return pd.DataFrame(rows)


def value(table: pd.DataFrame, run: str, domain: str, col: str):
    """One score of the `scores` table; None when the run or domain was not decoded."""
    hit = table[(table["run"] == run) & (table["domain"] == domain)]
    if hit.empty:
        return None
    x = hit[col].iloc[0]
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def paired_wer_gain(
    a: pd.DataFrame, b: pd.DataFrame, n_boot: int, seed: int, level: float = 0.95
) -> dict:
    """WER(a) - WER(b) over the same utterances (corpus WER: errors over reference words),
    with a percentile bootstrap interval that resamples utterances, keeping each pair."""
    import jiwer

    pair = a[["id", "ref", "hyp"]].merge(b[["id", "hyp"]], on="id", suffixes=("_a", "_b"))
    if pair.empty:
        return {"gain": None, "low": None, "high": None}

    def one(ref: str, hyp: str) -> int:
        if not hyp.strip():  # jiwer refuses an empty hypothesis: every word deleted
            return len(ref.split())
        o = jiwer.process_words(ref, hyp)
        return o.substitutions + o.deletions + o.insertions

    def errors(hyps):
        return np.array([one(r, h) for r, h in zip(pair["ref"], hyps, strict=True)])

    words = pair["ref"].str.split().str.len().to_numpy()
    ea, eb = errors(pair["hyp_a"]), errors(pair["hyp_b"])
    gain = (ea.sum() - eb.sum()) / words.sum()
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(pair), size=(n_boot, len(pair)))
    boot = (ea[idx].sum(1) - eb[idx].sum(1)) / words[idx].sum(1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return {"gain": float(gain), "low": float(low), "high": float(high)}


def sweep(table: pd.DataFrame, runs: list[str], domain: str, x: str) -> pd.DataFrame:
    """The sweep's points (one per run, in order): x, WER, RTF and emission delay in
    `domain`."""
    out = []
    for run in runs:
        hit = table[(table["run"] == run) & (table["domain"] == domain)]
        if not hit.empty:
            out.append(hit.iloc[0][["run", "domain", x, *SCORES]].rename({x: "x"}))
    return pd.DataFrame(out).reset_index(drop=True).assign(parameter=x)
