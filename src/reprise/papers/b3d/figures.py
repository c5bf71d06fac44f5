"""The b3d figures: each draw function takes the joined table (evaluate.joined) and returns a
matplotlib Figure; the figures step saves them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from reprise.papers.b3d.evaluate import METHOD_NAMES, summary

ORDER = [m for m in METHOD_NAMES]


def _named(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["method"] = out["method"].map(METHOD_NAMES)
    out["kind"] = np.where(out["backdoored"], out["attack"], "clean")
    return out


def detection(df: pd.DataFrame):
    """Accuracy, TPR, FPR and AUROC per attack type, NC vs B3D vs B3D-SS."""
    table = summary(df)
    table["method"] = table["method"].map(METHOD_NAMES)
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), sharey=True)
    for ax, key in zip(axes, ["accuracy", "tpr", "fpr", "auroc"], strict=True):
        sns.barplot(
            table,
            x="attack",
            y=key,
            hue="method",
            ax=ax,
            hue_order=[METHOD_NAMES[m] for m in ORDER],
        )
        ax.set(title=key.upper() if key != "accuracy" else "accuracy", ylim=(0, 1.05), ylabel="")
        ax.get_legend().remove()
    axes[-1].legend(
        *axes[-1].get_legend_handles_labels(),
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        title="method",
    )
    fig.suptitle("Detection over the population (flag: anomaly index > 2)")
    return fig


def roc(df: pd.DataFrame):
    """ROC over the population, anomaly index as the score."""
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(4.2, 4))
    for method in ORDER:
        part = df[df["method"] == method]
        if part["backdoored"].nunique() < 2:
            continue
        score = np.nan_to_num(part["anomaly_index"], posinf=1e9)
        fpr, tpr, _ = roc_curve(part["backdoored"], score)
        ax.plot(fpr, tpr, label=METHOD_NAMES[method], drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    return fig


def _image(mask, pattern, channels, size):
    """The trigger as it appears on a black image: m·p, H×W(×C) in [0, 1]."""
    m = np.asarray(mask, float).reshape(size, size)
    p = np.asarray(pattern, float).reshape(channels, size, size)
    img = (m[None] * p).transpose(1, 2, 0)
    return img[..., 0] if channels == 1 else img


def triggers(df: pd.DataFrame, population: pd.DataFrame, n: int = 4):
    """True trigger vs the trigger each method reversed for the flagged class, for the first
    n backdoored models of each attack."""
    bad = population[population["attack"] != "clean"]
    each = max(1, n // bad["attack"].nunique())
    picks = pd.concat([g.head(each) for _, g in bad.groupby("attack")])
    cols = 1 + len(ORDER)
    fig, axes = plt.subplots(
        len(picks), cols, figsize=(1.9 * cols, 1.9 * len(picks)), squeeze=False
    )
    for row, (_, model) in zip(axes, picks.iterrows(), strict=True):
        c, s = int(model["channels"]), int(model["size"])
        cells = [("true", model["true_mask"], model["true_pattern"], model["target"])]
        for method in ORDER:
            hit = df[
                (df["method"] == method)
                & (df["dataset"] == model["dataset"])
                & (df["model"] == model["model"])
            ]
            if len(hit):
                h = hit.iloc[0]
                cells.append(
                    (
                        METHOD_NAMES[method],
                        h["reversed_mask"],
                        h["reversed_pattern"],
                        f"{h['flagged_class']}, AI {h['anomaly_index']:.1f}",
                    )
                )
        for ax, (title, m, p, label) in zip(row, cells, strict=False):
            ax.imshow(_image(m, p, c, s), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{title}: {label}", fontsize=7)
            ax.set_xticks([]), ax.set_yticks([])
        row[0].set_ylabel(f"{model['dataset']} #{model['model']}\n{model['attack']}", fontsize=7)
    fig.suptitle("True vs reversed triggers (m·p; class, anomaly index)")
    return fig


def norms(df: pd.DataFrame):
    """Distribution of the per-class reversed-mask L1 norms: every class of clean models,
    non-target classes of backdoored ones, and backdoored models' target class."""
    rows = []
    for _, r in df.iterrows():
        for c, v in enumerate(r["norms"]):
            kind = (
                "clean model"
                if not r["backdoored"]
                else (f"target ({r['attack']})" if c == r["target"] else "other class")
            )
            rows.append({"method": METHOD_NAMES[r["method"]], "kind": kind, "L1 norm": v})
    fig, ax = plt.subplots(figsize=(7, 3.5))
    order = [METHOD_NAMES[m] for m in ORDER]
    sns.boxplot(
        pd.DataFrame(rows), x="method", y="L1 norm", hue="kind", ax=ax, fliersize=2, order=order
    )
    ax.set(title="Reversed mask L1 norm per class", xlabel="")
    return fig


def anomaly(df: pd.DataFrame):
    """Anomaly index of each model's smallest-norm class; flagged above 2."""
    d = _named(df)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.stripplot(
        d,
        x="method",
        y="anomaly_index",
        hue="kind",
        dodge=True,
        ax=ax,
        size=4,
        order=[METHOD_NAMES[m] for m in ORDER],
    )
    ax.axhline(2.0, color="k", ls="--", lw=1, label="threshold 2")
    ax.set(title="Anomaly index per model", xlabel="", ylabel="anomaly index")
    ax.legend(fontsize=7)
    return fig


def queries(df: pd.DataFrame):
    """Model queries per model (B3D-SS includes the synthesis; NC queries no probabilities:
    it uses gradients, shown as 0)."""
    d = _named(df)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    sns.barplot(d, x="method", y="queries", hue="dataset", ax=ax, errorbar=None)
    ax.set(title="Queries per model", xlabel="", ylabel="forward queries")
    return fig
