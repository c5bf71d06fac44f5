"""LiBRe's figures: each function returns a matplotlib Figure (the figures step saves it)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import roc_curve

from reprise.papers.libre.analysis import AUTHORS

ROWS = {  # the authors' row order and names
    ("libre", "feature_var"): "LiBRe",
    ("no_hinge", "feature_var"): "LiBRe w/o regulariser",
    ("mc_dropout", "softmax_var"): "MC dropout (softmax var.)",
    ("mc_dropout", "feature_var"): "MC dropout (feature var.)",
    ("mfvi_last", "feature_var"): "last-layer MFVI",
    ("mfvi_full", "feature_var"): "full MFVI",
    ("dnn", "kd"): "KD",
    ("dnn", "lid"): "LID",
}
COLUMNS = ["fgsm", "cw", "bim", "pgd", "mim", "tim", "di_mim", "fgsm_l2", "bim_l2", "pgd_l2"]


def _order(detection: pd.DataFrame) -> tuple[list, list[str]]:
    rows = [r for r in ROWS if ((detection["method"] == r[0]) & (detection["score"] == r[1])).any()]
    present = set(detection["input"])
    cols = [c for c in COLUMNS if c in present]
    cols += sorted(present - set(cols))
    return rows, cols


def auroc_table(detection: pd.DataFrame):
    """AUROC per detector (rows, the authors' layout) and attack (columns); beside it the
    authors' ImageNet values where their log has them."""
    rows, cols = _order(detection)
    ours = pd.DataFrame(np.nan, index=[ROWS[r] for r in rows], columns=cols)
    theirs = ours.copy()
    for r in rows:
        sel = detection[(detection["method"] == r[0]) & (detection["score"] == r[1])]
        for _, row in sel.iterrows():
            ours.loc[ROWS[r], row["input"]] = row["auroc"]
        for name, value in AUTHORS.get(r, {}).items():
            if name in theirs.columns:
                theirs.loc[ROWS[r], name] = value
    fig, axes = plt.subplots(2, 1, figsize=(0.75 * len(cols) + 3, 0.9 * len(rows) + 2.5))
    for ax, table, title in zip(
        axes, (ours, theirs), ("reproduced", "authors (ImageNet ResNet-50 log)"), strict=True
    ):
        sns.heatmap(table, annot=True, fmt=".2f", cmap="viridis", vmin=0, vmax=1, ax=ax,
                    annot_kws={"fontsize": 6}, cbar_kws={"label": "AUROC"})  # fmt: skip
        ax.set(title=f"detection AUROC, {title}", ylabel="")
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    fig.tight_layout()
    return fig


def tpr_table(detection: pd.DataFrame):
    """TPR at FPR 1/5/10% of each detector, per input set."""
    rows, cols = _order(detection)
    fig, axes = plt.subplots(1, 3, figsize=(3 * (0.45 * len(cols) + 2.5), 0.45 * len(rows) + 2))
    for ax, f in zip(axes, (1, 5, 10), strict=True):
        table = pd.DataFrame(np.nan, index=[ROWS[r] for r in rows], columns=cols)
        for r in rows:
            sel = detection[(detection["method"] == r[0]) & (detection["score"] == r[1])]
            for _, row in sel.iterrows():
                table.loc[ROWS[r], row["input"]] = row[f"tpr_at_fpr_{f}"]
        sns.heatmap(table, annot=True, fmt=".2f", cmap="magma", vmin=0, vmax=1, ax=ax,
                    annot_kws={"fontsize": 5}, cbar=False)  # fmt: skip
        ax.set(title=f"TPR at FPR {f}%", ylabel="")
        ax.tick_params(axis="x", rotation=70, labelsize=6)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def densities(scores: pd.DataFrame, method: str = "libre", score: str = "feature_var"):
    """Densities of log uncertainty, clean vs each input set, for one detector."""
    rows = scores[(scores["method"] == method) & (scores["score"] == score)]
    names = [n for n in rows["input"].unique() if n != "clean"]
    n = len(names)
    cols = min(n, 5)
    fig, axes = plt.subplots(
        -(-n // cols), cols, figsize=(2.6 * cols, 2.1 * -(-n // cols)), squeeze=False
    )
    log_u = np.log10(rows["uncertainty"].clip(lower=1e-12))
    clean = log_u[rows["input"] == "clean"]
    for ax, name in zip(axes.flat, names, strict=False):
        sns.kdeplot(clean, ax=ax, fill=True, label="clean", warn_singular=False)
        sns.kdeplot(log_u[rows["input"] == name], ax=ax, fill=True, label=name, warn_singular=False)
        ax.set(title=name, xlabel="log10 uncertainty", ylabel="")
        ax.title.set_fontsize(8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"{ROWS.get((method, score), method)}: uncertainty, clean vs adversarial")
    fig.tight_layout()
    return fig


def roc_curves(scores: pd.DataFrame, inputs=("fgsm", "pgd", "cw", "mim")):
    """ROC curves of every detector on a few attacks."""
    present = [i for i in inputs if i in set(scores["input"])]
    fig, axes = plt.subplots(1, len(present), figsize=(3.2 * len(present), 3.0), squeeze=False)
    for ax, name in zip(axes[0], present, strict=True):
        for (method, score), label in ROWS.items():
            rows = scores[(scores["method"] == method) & (scores["score"] == score)]
            adv = rows[rows["input"] == name]
            clean = rows[(rows["input"] == "clean") & rows["idx"].isin(adv["idx"])]
            if adv.empty:
                continue
            u = np.r_[clean["uncertainty"], adv["uncertainty"]]
            fpr, tpr, _ = roc_curve(np.r_[np.zeros(len(clean)), np.ones(len(adv))], u)
            ax.plot(fpr, tpr, label=label, lw=1.5 if method == "libre" else 0.8)
        ax.plot([0, 1], [0, 1], "k:", lw=0.5)
        ax.set(title=name, xlabel="FPR", ylabel="TPR")
    axes[0][0].legend(fontsize=5)
    fig.tight_layout()
    return fig


def cost_table(cost: dict):
    """Seconds per batch and the ratio to the DNN."""
    names = [k.removesuffix("_seconds") for k in cost if k.endswith("_seconds")]
    seconds = [cost[f"{n}_seconds"] for n in names]
    fig, ax = plt.subplots(figsize=(4, 2.6))
    bars = ax.bar(names, seconds, color=sns.color_palette()[: len(names)])
    for bar, n in zip(bars, names, strict=True):
        ratio = cost.get(f"{n}_over_dnn", 1.0)
        ax.annotate(f"×{ratio:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)  # fmt: skip
    ax.set(ylabel="seconds per batch", title="inference cost (same batch)")
    fig.tight_layout()
    return fig
