"""The metrics the evaluate step writes to metrics.json (claims may name only these).

`results`: {"scores": the per-run, per-domain table (summary.scores), "wer_gain": the paired
bootstrap of baseline minus FlexiT dictation WER, "sweeps": {name: summary.sweep table}}."""

from __future__ import annotations

import pandas as pd

from reprise.metric_table import MetricTable
from reprise.papers.flexit.summary import DOMAINS, SCORES, value

METRICS = MetricTable()

# The paper's table rows: the baseline, one technique at a time, all together.
TABLE_RUNS = {
    "baseline": "baseline (one segment size, RNN-T)",
    "segment": "per-domain segment size",
    "ar_rnnt": "Ar-RNNT",
    "domain_vector": "domain vector",
    "flexit": "FlexiT (all three)",
}
SCORE_TEXT = {
    "wer": "word error rate",
    "rtf": "real-time factor (decoding compute over audio time, one thread)",
    "emission_delay_p50": "median token emission delay (s)",
    "emission_delay_p90": "90th-percentile token emission delay (s)",
}


def _row(run: str) -> None:
    keys = {
        f"{run}_{d}_{s}": f"{TABLE_RUNS[run]}: {d} {SCORE_TEXT[s]}" for d in DOMAINS for s in SCORES
    }

    @METRICS.group(keys, timed=tuple(k for k in keys if k.endswith("_rtf")))
    def row(results):
        t = results["scores"]
        return {f"{run}_{d}_{s}": value(t, run, d, s) for d in DOMAINS for s in SCORES}


for _run in TABLE_RUNS:
    _row(_run)


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def _diff(a, b):
    return None if a is None or b is None else a - b


@METRICS.group(
    {
        "dictation_wer_gain": "baseline minus FlexiT dictation WER (positive: FlexiT better)",
        "dictation_wer_gain_ci_low": "lower end of its 95% paired bootstrap interval "
        "(utterances resampled)",
        "dictation_wer_gain_ci_high": "upper end of that interval",
        "dictation_rtf_ratio": "FlexiT over baseline dictation RTF (below 1: FlexiT faster)",
        "command_delay_p90_increase": "FlexiT minus baseline command P90 emission delay (s)",
    },
    timed=("dictation_rtf_ratio",),
)
def flexit_vs_baseline(results):
    t, g = results["scores"], results["wer_gain"]
    return {
        "dictation_wer_gain": g["gain"],
        "dictation_wer_gain_ci_low": g["low"],
        "dictation_wer_gain_ci_high": g["high"],
        "dictation_rtf_ratio": _ratio(
            value(t, "flexit", "dictation", "rtf"), value(t, "baseline", "dictation", "rtf")
        ),
        "command_delay_p90_increase": _diff(
            value(t, "flexit", "command", "emission_delay_p90"),
            value(t, "baseline", "command", "emission_delay_p90"),
        ),
    }


@METRICS.group(
    {
        "dictation_segment_rtf_ratio": "dictation RTF at the largest over the smallest "
        "dictation segment of the sweep (below 1: a larger segment is cheaper)",
        "dictation_segment_wer_change": "dictation WER at the largest minus the smallest "
        "dictation segment of the sweep",
        "command_br_delay_p90_change": "command P90 emission delay at the loosest minus the "
        "tightest command b_r of the sweep (s)",
    },
    timed=("dictation_segment_rtf_ratio",),
)
def sweeps(results):
    seg, br = results["sweeps"].get("dictation_segment"), results["sweeps"].get("command_br")

    def ends(t, col):
        if t is None or len(t) < 2:
            return None, None
        t = t.sort_values("x")
        first, last = t[col].iloc[0], t[col].iloc[-1]  # None: no word was recognised
        return (None if pd.isna(first) else float(first)), (None if pd.isna(last) else float(last))

    rtf, wer, delay = ends(seg, "rtf"), ends(seg, "wer"), ends(br, "emission_delay_p90")
    return {
        "dictation_segment_rtf_ratio": _ratio(rtf[1], rtf[0]),
        "dictation_segment_wer_change": _diff(wer[1], wer[0]),
        "command_br_delay_p90_change": _diff(delay[1], delay[0]),
    }
