"""The paper's figures, drawn from saved tables; each function returns a Figure (the figures
step sets the style and saves them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprise.papers.upl.summary import FACTORS, JOINT, UPL
from reprise.plots import plt

LOSS_MARKERS = {"rnnt": "o", "ar_rnnt": "^"}
LOSS_TEXT = {"rnnt": "RNN-T", "ar_rnnt": "Ar-RNNT"}


def _endpointer_colors(configs: pd.DataFrame) -> dict:
    names = list(dict.fromkeys(configs["endpointer"]))
    palette = plt.get_cmap("tab10")
    return {ep: palette(k) for k, ep in enumerate(names)}


def _label(ep: str) -> str:
    return "joint (</s>)" if ep == JOINT else f"silence {ep}"


def scatter(configs: pd.DataFrame, corr: pd.DataFrame):
    """Mean UPL against each factor, one point per configuration (colour: endpointer,
    marker: loss), with Pearson and Spearman r and the Pearson interval in the title."""
    colors = _endpointer_colors(configs)
    fig, axes = plt.subplots(2, 3, figsize=(12, 7), sharey=True)
    c = corr.set_index("factor")
    for ax, (f, label) in zip(axes.flat, FACTORS.items(), strict=True):
        for (ep, loss), g in configs.groupby(["endpointer", "loss"], sort=False):
            ax.scatter(
                g[f], g[UPL], color=colors[ep], marker=LOSS_MARKERS.get(loss, "s"), alpha=0.8
            )
        r = c.loc[f]
        ax.set_title(
            f"r = {r['pearson']:+.2f} [{r['pearson_low']:+.2f}, {r['pearson_high']:+.2f}]"
            f", rho = {r['spearman']:+.2f}",
            fontsize="small",
        )
        ax.set_xlabel(label)
    for ax in axes[:, 0]:
        ax.set_ylabel("mean UPL (s)")
    handles = [
        plt.Line2D([], [], color=col, marker="o", ls="", label=_label(ep))
        for ep, col in colors.items()
    ] + [
        plt.Line2D([], [], color="grey", marker=m, ls="", label=LOSS_TEXT[k])
        for k, m in LOSS_MARKERS.items()
    ]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize="small")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def cdf(upl: pd.DataFrame, configs: pd.DataFrame):
    """Per endpointer, the CDF of per-utterance UPL of every run."""
    eps = list(dict.fromkeys(configs["endpointer"]))
    runs = list(dict.fromkeys(configs["run"]))
    palette = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(eps), figsize=(4.2 * len(eps), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, ep in zip(axes, eps, strict=True):
        for k, run in enumerate(runs):
            x = np.sort(upl[(upl["run"] == run) & (upl["endpointer"] == ep)]["upl"].to_numpy())
            if len(x):
                ax.step(
                    x,
                    np.arange(1, len(x) + 1) / len(x),
                    where="post",
                    color=palette(k % 10),
                    label=run,
                )
        ax.axhline(0.9, color="grey", lw=0.6, ls=":")
        ax.set_title(_label(ep))
        ax.set_xlabel("UPL (s)")
    axes[0].set_ylabel("fraction of utterances")
    axes[-1].legend(fontsize="x-small", loc="lower right")
    fig.tight_layout()
    return fig


def tradeoff(configs: pd.DataFrame, wer_margin: float):
    """WER at the endpoint against P90 UPL, one point per configuration (colour: endpointer,
    filled: Ar-RNNT, open: RNN-T). The shaded band is the WER margin within which the best
    trade-off (lowest P90 UPL) is chosen."""
    colors = _endpointer_colors(configs)
    fig, ax = plt.subplots(figsize=(6.5, 4.6))
    for (ep, loss), g in configs.groupby(["endpointer", "loss"], sort=False):
        ax.scatter(
            g["upl_p90"],
            100 * g["wer"],
            edgecolors=colors[ep],
            facecolors=colors[ep] if loss == "ar_rnnt" else "none",
            marker=LOSS_MARKERS.get(loss, "s"),
            label=f"{_label(ep)}, {LOSS_TEXT.get(loss, loss)}",
        )
        for x, y, run in zip(g["upl_p90"], g["wer"], g["run"], strict=True):
            ax.annotate(run, (x, 100 * y), fontsize=6, xytext=(3, 2), textcoords="offset points")
    best = 100 * configs["wer"].min()
    ax.axhspan(best, best + 100 * wer_margin, color="grey", alpha=0.15, lw=0)
    ax.set_xlabel("P90 UPL (s)")
    ax.set_ylabel("WER at the endpoint (%)")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


def correlation_table(corr: pd.DataFrame):
    """The correlation table: Pearson r (95% interval) and Spearman r per factor."""
    cells = [
        [
            r.label,
            f"{r.pearson:+.2f}",
            f"[{r.pearson_low:+.2f}, {r.pearson_high:+.2f}]",
            f"{r.spearman:+.2f}",
            f"[{r.spearman_low:+.2f}, {r.spearman_high:+.2f}]",
        ]
        for r in corr.itertuples()
    ]
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.42 * (len(cells) + 1)))
    ax.axis("off")
    tab = ax.table(
        cellText=cells,
        colLabels=["UPL against", "Pearson r", "95% interval", "Spearman r", "95% interval"],
        loc="center",
    )
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.scale(1, 1.5)
    ax.set_title(
        f"Correlation of mean UPL with each factor ({int(corr['n'].iloc[0])} configurations)"
    )
    return fig
