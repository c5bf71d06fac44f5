"""Figures of rejection, each from saved tables: Con/R-Con histograms, ROC curves, the AUC
table, accuracy vs rejection rate, the corruption table and the training curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from reprise.metrics import accuracy_vs_rejection, confidence_histogram

LABELS = {
    "con": "Con",
    "rcon": "R-Con",
    "tcon": "T-Con (oracle)",
    "energy": "energy",
    "kd": "KD",
    "lid": "LID",
    "gda": "GDA",
}
DETECTORS = ("con", "rcon", "energy", "kd", "lid", "gda")


def _rr_models(scores: pd.DataFrame) -> list[tuple[str, str]]:
    rr = scores[scores["rr"]][["backbone", "run"]].drop_duplicates()
    return list(rr.itertuples(index=False, name=None))


def _inputs(scores, backbone, run, name, adapted_to=""):
    s = scores
    return s[
        (s["backbone"] == backbone)
        & (s["run"] == run)
        & (s["split"] == "test")
        & (s["input"] == name)
        & (s["adapted_to"] == adapted_to)
    ]


def _label(ax, backbone, run, attack, xlabel, ylabel):
    ax.set(title=f"{run} ({backbone}): {attack}", xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize="x-small")


def histograms(scores: pd.DataFrame, attack: str = "pgd"):
    """Con and R-Con of correctly vs wrongly classified attacked inputs, per RR model."""
    models = _rr_models(scores)
    fig, axes = plt.subplots(len(models), 2, figsize=(7, 2.2 * len(models)), squeeze=False)
    for row, (backbone, run) in zip(axes, models, strict=True):
        rows = _inputs(scores, backbone, run, attack)
        groups = np.where(rows["correct"], "correct", "wrong")
        for ax, s in zip(row, ("con", "rcon"), strict=True):
            h = confidence_histogram(rows[s], groups, bins=20)
            for g, part in h.groupby("group"):
                ax.stairs(
                    part["fraction"], np.r_[part["bin_left"], 1.0], label=g, fill=True, alpha=0.5
                )
            ax.set(title=f"{run} ({backbone}): {LABELS[s]}", xlabel=LABELS[s], xlim=(0, 1))
        row[0].set_ylabel(f"fraction ({attack})")
        row[0].legend()
    fig.tight_layout()
    return fig


def roc_curves(scores: pd.DataFrame, attacks=("pgd", "adaptive_pgd")):
    """ROC curves (correct = positive) of every detector, per RR model and attack; under an
    adaptive attack each of Con and R-Con is shown against the attack adapted to it."""
    from sklearn.metrics import roc_curve

    models = _rr_models(scores)
    fig, axes = plt.subplots(
        len(models), len(attacks), figsize=(3.6 * len(attacks), 3.3 * len(models)), squeeze=False
    )
    for row, (backbone, run) in zip(axes, models, strict=True):
        for ax, attack in zip(row, attacks, strict=True):
            for s in DETECTORS:
                adaptive = attack.startswith("adaptive")
                if adaptive and s not in ("con", "rcon"):
                    continue
                rows = _inputs(scores, backbone, run, attack, s if adaptive else "")
                if rows.empty or rows["correct"].all() or not rows["correct"].any():
                    continue
                fpr, tpr, _ = roc_curve(rows["correct"], rows[s])
                ax.plot(fpr, tpr, label=LABELS[s], lw=1.2 if s in ("con", "rcon") else 0.8)
            ax.plot([0, 1], [0, 1], color="grey", lw=0.5, ls=":")
            _label(ax, backbone, run, attack, "FPR (wrong accepted)", "TPR (correct accepted)")
    fig.tight_layout()
    return fig


def auc_heatmap(auc: pd.DataFrame):
    """The AUC table: rows model × input (adaptive inputs marked), columns scores."""
    table = auc[auc["split"] == "test"].copy()
    adapted = table["adapted_to"].map(lambda a: f" vs {LABELS[a]}" if a else "")
    table.index = table["backbone"] + " " + table["run"] + ": " + table["input"] + adapted
    values = table[[c for c in LABELS if c in table.columns]].rename(columns=LABELS)
    fig, ax = plt.subplots(figsize=(1.0 * values.shape[1] + 3, 0.28 * len(values) + 1))
    sns.heatmap(
        values,
        annot=True,
        fmt=".3f",
        cmap="viridis",
        vmin=0.5,
        vmax=1.0,
        cbar_kws={"label": "ROC-AUC (correct vs wrong)"},
        ax=ax,
    )
    ax.set(title="rejection: ROC-AUC per model, input and score", ylabel="")
    return fig


def accuracy_rejection(scores: pd.DataFrame, attack: str = "pgd"):
    """Accuracy on accepted inputs vs the fraction rejected, per RR model."""
    models = _rr_models(scores)
    fig, axes = plt.subplots(1, len(models), figsize=(3.8 * len(models), 3.2), squeeze=False)
    rates = np.linspace(0, 0.8, 17)
    for ax, (backbone, run) in zip(axes[0], models, strict=True):
        rows = _inputs(scores, backbone, run, attack)
        for s in DETECTORS:
            curve = accuracy_vs_rejection(rows[s], rows["correct"], rates)
            ax.plot(
                curve["rejection_rate"],
                curve["accuracy"],
                label=LABELS[s],
                lw=1.5 if s in ("con", "rcon") else 0.8,
            )
        _label(ax, backbone, run, attack, "rejection rate", "accuracy on accepted")
    fig.tight_layout()
    return fig


def corruption_plot(corruptions: pd.DataFrame):
    """AUC of Con and R-Con per corruption vs severity, for the RR models."""
    rr = corruptions[corruptions["run"].str.endswith("_rr")]
    long = rr.melt(
        id_vars=["backbone", "run", "corruption", "severity", "source"],
        value_vars=["auc_con", "auc_rcon"],
        var_name="score",
        value_name="auc",
    )
    long["score"] = long["score"].map({"auc_con": "Con", "auc_rcon": "R-Con"})
    long["model"] = long["backbone"] + " " + long["run"]
    grid = sns.relplot(
        long,
        x="severity",
        y="auc",
        hue="score",
        style="model",
        col="corruption",
        kind="line",
        marker="o",
        height=2.4,
        aspect=0.9,
    )
    source = ", ".join(sorted(rr["source"].unique()))
    grid.figure.suptitle(f"rejection: AUC under corruptions ({source})", y=1.03)
    return grid.figure


def training_curves(histories: dict[str, pd.DataFrame]):
    """Clean and robust test accuracy per epoch, per model."""
    long = pd.concat([h.assign(model=name) for name, h in histories.items()], ignore_index=True)
    columns = [c for c in ("test_clean_acc", "test_robust_acc") if c in long]
    long = long.melt(id_vars=["model", "epoch"], value_vars=columns, var_name="metric")
    grid = sns.relplot(
        long, x="epoch", y="value", hue="model", col="metric", kind="line", height=2.8, aspect=1.2
    )
    grid.set_axis_labels("epoch", "test accuracy")
    return grid.figure
