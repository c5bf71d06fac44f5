"""The paper's figures, drawn from saved tables; each function returns a Figure (the figures
step sets the style and saves them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprise.papers.flexit.metrics import TABLE_RUNS
from reprise.plots import plt

DOMAIN_COLORS = {"command": "tab:blue", "dictation": "tab:orange"}


def per_domain_table(scores: pd.DataFrame):
    """The paper's layout: one row per configuration, WER / RTF / P50 / P90 emission delay
    for commands and for dictation side by side, changes against the baseline in brackets."""
    cols = [("wer", "WER %", 100), ("rtf", "RTF", 1), ("emission_delay_p50", "P50 ms", 1000)]
    cols.append(("emission_delay_p90", "P90 ms", 1000))
    runs = [r for r in TABLE_RUNS if r in set(scores["run"])]
    header = [f"{d}\n{label}" for d in ("command", "dictation") for _, label, _ in cols]
    cells = []
    for run in runs:
        row = []
        for dom in ("command", "dictation"):
            for col, _, scale in cols:
                v = _get(scores, run, dom, col)
                base = _get(scores, "baseline", dom, col)
                if v is None:
                    row.append("-")
                elif run == "baseline" or base is None:
                    row.append(_fmt(v * scale, col))
                else:
                    row.append(f"{_fmt(v * scale, col)} ({(v - base) * scale:+.{_dp(col)}f})")
        cells.append(row)
    fig, ax = plt.subplots(figsize=(13, 0.5 + 0.45 * (len(runs) + 2)))
    ax.axis("off")
    tab = ax.table(
        cellText=cells, colLabels=header, rowLabels=[TABLE_RUNS[r] for r in runs], loc="center"
    )
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.scale(1, 1.6)
    ax.set_title("Per-domain WER, RTF and token emission delay (change vs baseline)")
    return fig


def _get(scores, run, dom, col):
    hit = scores[(scores["run"] == run) & (scores["domain"] == dom)]
    if hit.empty or pd.isna(hit[col].iloc[0]):
        return None
    return float(hit[col].iloc[0])


def _dp(col: str) -> int:
    return 4 if col == "rtf" else 0 if col.startswith("emission") else 1


def _fmt(v: float, col: str) -> str:
    return f"{v:.{_dp(col)}f}"


SWEEP_TEXT = {
    "dictation_segment": ("dictation segment size (ms)", "dictation"),
    "command_br": ("command Ar-RNNT b_r (ms)", "command"),
}


def tradeoff(sweeps: pd.DataFrame):
    """Per sweep: WER against the P90 emission delay (points labelled by the swept value),
    and RTF against the swept value."""
    names = list(dict.fromkeys(sweeps["sweep"]))
    fig, axes = plt.subplots(2, len(names), figsize=(4.5 * len(names), 6.5), squeeze=False)
    for k, name in enumerate(names):
        t = sweeps[sweeps["sweep"] == name].sort_values("x")
        t = t.assign(**{c: pd.to_numeric(t[c]) for c in ("wer", "rtf", "emission_delay_p90")})
        xlabel, dom = SWEEP_TEXT.get(name, (name, t["domain"].iloc[0]))
        ax = axes[0, k]
        ax.plot(
            1000 * t["emission_delay_p90"], 100 * t["wer"], marker="o", color=DOMAIN_COLORS[dom]
        )
        for x, d, w in zip(t["x"], t["emission_delay_p90"], t["wer"], strict=True):
            if np.isnan(d):  # no word recognised: no delay to place it at
                continue
            ax.annotate(f"{x:g}", (1000 * d, 100 * w), textcoords="offset points", xytext=(4, 4))
        ax.set_xlabel(f"{dom} P90 emission delay (ms)")
        ax.set_ylabel(f"{dom} WER (%)")
        ax.set_title(f"latency-WER over the {xlabel}", fontsize="medium")
        ax = axes[1, k]
        ax.plot(t["x"], t["rtf"], marker="o", color=DOMAIN_COLORS[dom])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{dom} RTF")
    fig.tight_layout()
    return fig


def emission(delays: pd.DataFrame):
    """Histograms of per-word emission delay, baseline vs FlexiT, one panel per domain."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=False)
    lo = min(-0.1, float(delays["delay"].min())) if len(delays) else -0.1
    hi = max(1.0, float(delays["delay"].quantile(0.99))) if len(delays) else 1.0
    bins = np.linspace(lo, hi, 30)
    for ax, dom in zip(axes, ("command", "dictation"), strict=True):
        for run, style in (("baseline", "step"), ("flexit", "stepfilled")):
            d = delays[(delays["run"] == run) & (delays["domain"] == dom)]["delay"]
            if len(d):
                ax.hist(d, bins=bins, histtype=style, alpha=0.6, label=f"{run} (n={len(d)})")
        ax.set_xlabel("emission delay (s): word available - word end")
        ax.set_title(dom)
        ax.legend(fontsize="small")
    axes[0].set_ylabel("words")
    fig.tight_layout()
    return fig
