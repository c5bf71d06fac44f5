"""The upl analysis on decode tables (pure pandas/numpy/scipy: the evaluate and figures steps
and the tests share it).

A configuration is a run (a zoo model decoded at one chunk size) with one endpointer. Per
utterance: UPL (from the simulated clock of the core's decode), endpoint latency, early
cut-off and the hypothesis kept at the endpoint. A stream whose endpointer never fires ends
with the audio (the corpus's trailing silence is 0.2-1.0 s): its endpoint is the audio end.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reprise.speech import metrics as M
from reprise.speech.features import FRAME_SHIFT

JOINT = "eos"  # the transducer's end-of-sentence token
FACTORS = {  # column of the configuration table -> axis label
    "params": "parameters",
    "chunk_ms": "chunk size (ms)",
    "flops": "GFLOPs per second of audio",
    "rtf": "real-time factor (one thread)",
    "emission_delay": "mean token emission delay (s)",
    "endpoint_latency": "mean endpoint latency (s)",
}
SIZE_AND_COMPUTE = ("params", "chunk_ms", "flops", "rtf")
LATENCY = ("emission_delay", "endpoint_latency")
UPL = "upl_mean"  # what the correlations are of


def endpointer_names(vad: dict) -> list[str]:
    """The joint endpointer, then the trailing-silence ones in config order."""
    return [JOINT, *vad]


def run_facts(model_config: dict, cfg: dict, segment: int, model) -> dict:
    """Size and compute of a zoo model decoded at `segment` encoder frames per chunk. FLOPs
    count the encoder and the per-frame joiner (transducer_flops without emitted tokens: the
    per-token work depends on what is said)."""
    mc = {**model_config, "encoder": {**model_config["encoder"], "segment": segment}}
    return {
        "params": int(sum(p.numel() for p in model.parameters())),
        "chunk_ms": round(1000 * FRAME_SHIFT * segment * int(model_config["reduction"])),
        "flops": M.transducer_flops(mc) / 1e9,
        "loss": cfg["train"]["loss"],
    }


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def utterances(table: pd.DataFrame, endpointers: list[str]) -> pd.DataFrame:
    """One row per (run, endpointer, utterance): UPL, endpoint latency, early cut-off, missed
    endpoint, and the reference and hypothesis at the endpoint."""
    rows = []
    for r in table.itertuples():
        for ep in endpointers:
            end = getattr(r, f"endpoint_{ep}")
            missed = _missing(end)
            end = r.duration if missed else float(end)
            rows.append(
                {
                    "run": r.run,
                    "endpointer": ep,
                    "id": r.id,
                    "upl": float(getattr(r, f"upl_{ep}")),
                    "endpoint_latency": end - r.speech_end,
                    "early_cutoff": (not missed) and end < r.speech_end,
                    "missed": missed,
                    "ref": r.ref,
                    "hyp": getattr(r, f"hyp_{ep}"),
                }
            )
    return pd.DataFrame(rows)


def configurations(table: pd.DataFrame, utts: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, endpointer): the run's size and compute (params, chunk, FLOPs, RTF,
    loss), its mean emission delay (words recognised correctly; the same for every
    endpointer), and the endpointer's mean endpoint latency, early cut-off and missed rates,
    WER at the endpoint and UPL mean/P50/P90."""
    rows = []
    for run, g in table.groupby("run", sort=False):
        delays = []
        for r in g.itertuples():
            delays += M.emission_delays(
                r.ref.split(), list(r.ref_ends), list(r.hyp_words), list(r.hyp_times)
            )
        first = g.iloc[0]
        per_run = {
            "run": run,
            "model": first["model"],
            "loss": first["loss"],
            "params": int(first["params"]),
            "chunk_ms": int(first["chunk_ms"]),
            "flops": float(first["flops"]),
            "rtf": M.rtf(g["compute"].sum(), g["duration"].sum()),
            "emission_delay": M.summarize(delays)["mean"],
        }
        for ep, u in utts[utts["run"] == run].groupby("endpointer", sort=False):
            rows.append(
                {
                    **per_run,
                    "endpointer": ep,
                    "joint": ep == JOINT,
                    "endpoint_latency": float(u["endpoint_latency"].mean()),
                    "early_cutoff_rate": float(u["early_cutoff"].mean()),
                    "missed_rate": float(u["missed"].mean()),
                    "wer": M.wer(u["ref"].tolist(), u["hyp"].tolist()),
                    "upl_mean": float(u["upl"].mean()),
                    "upl_p50": float(u["upl"].quantile(0.5)),
                    "upl_p90": float(u["upl"].quantile(0.9)),
                }
            )
    return pd.DataFrame(rows)


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair (NaN where a row is constant)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((xc**2).sum(-1) * (yc**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (xc * yc).sum(-1) / np.where(den > 0, den, 1), np.nan)


def _rowwise_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return _rowwise_pearson(rankdata(x, axis=-1), rankdata(y, axis=-1))


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap index rows over the configurations (one set shared by every factor, so
    differences between factors' r are paired)."""
    return np.random.default_rng(seed).integers(n, size=(n_boot, n))


def boot_r(configs: pd.DataFrame, n_boot: int, seed: int, kind: str = "pearson") -> pd.DataFrame:
    """r of UPL with every factor on each bootstrap resample of the configurations
    (n_boot x factors; NaN where a resample leaves a factor constant)."""
    idx = _resamples(len(configs), n_boot, seed)
    y = configs[UPL].to_numpy(float)[idx]
    fn = _rowwise_pearson if kind == "pearson" else _rowwise_spearman
    return pd.DataFrame({f: fn(configs[f].to_numpy(float)[idx], y) for f in FACTORS})


def _r(x, y) -> tuple[float, float]:
    """Pearson and Spearman r (scipy) over the points where both are measured; NaN when
    fewer than three remain or one side is constant (a grid where no word was recognised
    has no emission delay)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return math.nan, math.nan
    return M.pearson_spearman(x[ok], y[ok])


def _interval(values, level: float) -> tuple[float, float]:
    v = np.asarray(values, float)
    v = v[~np.isnan(v)]
    if not len(v):
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(v, [tail, 100 - tail])
    return float(lo), float(hi)


def correlations(
    configs: pd.DataFrame, n_boot: int, seed: int, level: float = 0.95
) -> pd.DataFrame:
    """Per factor: Pearson and Spearman r of mean UPL across the configurations (scipy), with
    percentile bootstrap intervals that resample configurations."""
    boots = {k: boot_r(configs, n_boot, seed, k) for k in ("pearson", "spearman")}
    rows = []
    for f, label in FACTORS.items():
        x, y = configs[f].to_numpy(float), configs[UPL].to_numpy(float)
        r, rho = _r(x, y)
        n = int((~(np.isnan(x) | np.isnan(y))).sum())
        row = {"factor": f, "label": label, "n": n, "pearson": r, "spearman": rho}
        for k, b in boots.items():
            row[f"{k}_low"], row[f"{k}_high"] = _interval(b[f], level)
        row["group"] = "latency" if f in LATENCY else "size/compute"
        rows.append(row)
    return pd.DataFrame(rows)


def _gap(r: pd.DataFrame) -> pd.Series:
    # NaN when any factor's r is: a missing factor must not make the comparison easier
    lat = r[list(LATENCY)].abs().min(axis=1, skipna=False)
    return lat - r[list(SIZE_AND_COMPUTE)].abs().max(axis=1, skipna=False)


def latency_vs_compute_gap(configs: pd.DataFrame, n_boot: int, seed: int, level=0.95) -> dict:
    """The weaker |Pearson r| of the two latency factors minus the strongest |r| of the four
    size and compute factors, with a paired percentile bootstrap interval (positive: UPL
    follows emission delay and endpointing more closely than size or compute)."""
    point = _gap(pd.DataFrame({f: [_r(configs[f], configs[UPL])[0]] for f in FACTORS}))[0]
    lo, hi = _interval(_gap(boot_r(configs, n_boot, seed)), level)
    return {"gap": float(point), "low": lo, "high": hi}


def best_tradeoff(configs: pd.DataFrame, wer_margin: float) -> dict:
    """The best latency-WER trade-off: the lowest P90 UPL among configurations whose WER is
    within `wer_margin` (absolute) of the best WER. Whether it is a joint-endpointer Ar-RNNT
    configuration, and by how much its P90 UPL beats the best other eligible one."""
    eligible = configs[configs["wer"] <= configs["wer"].min() + wer_margin]
    best = eligible.loc[eligible["upl_p90"].idxmin()]
    joint_ar = eligible["joint"] & (eligible["loss"] == "ar_rnnt")
    mine, other = eligible[joint_ar]["upl_p90"], eligible[~joint_ar]["upl_p90"]
    advantage = None if mine.empty or other.empty else float(other.min() - mine.min())
    return {
        "run": best["run"],
        "endpointer": best["endpointer"],
        "joint_ar": bool(best["joint"] and best["loss"] == "ar_rnnt"),
        "advantage": advantage,
        "eligible": len(eligible),
    }
