"""The paper's figures, drawn from saved tables; each function returns a Figure (the figures
step sets the style and saves them)."""

from __future__ import annotations

import pandas as pd

from reprise.plots import plt

LABELS = {
    "clean": "clean stream",
    "trigger_alone": "trigger alone",
    "clean_trigger": "clean phase + trigger",
    "full": "accumulative phase + trigger",
}


def accuracy(table: pd.DataFrame, unit: str):
    """Test accuracy after every step (online) or round (federated), the four runs; the
    trigger steps are marked."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for run, label in LABELS.items():
        rows = table[table["run"] == run].sort_values("step")
        if rows.empty:
            continue
        (line,) = ax.plot(rows["step"], rows["test_acc"], marker=".", label=label)
        hit = rows[rows["phase"] == "trigger"]
        ax.scatter(hit["step"], hit["test_acc"], marker="v", s=60, color=line.get_color(), zorder=3)
    ax.set_xlabel(unit)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{table['setting'].iloc[0]}: accuracy through the phase and the trigger (▼)")
    ax.legend(fontsize="small")
    return fig


def ablation(table: pd.DataFrame):
    """Test accuracy before and after the trigger, per setting and variant, for the trigger
    alone and after the accumulative phase."""
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(table)), 3.6))
    names = [f"{s}\n{v}" for s, v in zip(table["setting"], table["variant"], strict=True)]
    x = range(len(table))
    bars = [
        ("start_acc", "start"),
        ("alone_after", "after trigger alone"),
        ("acc_before", "after accumulative phase"),
        ("acc_after", "after phase + trigger"),
    ]
    width = 0.8 / len(bars)
    for i, (col, label) in enumerate(bars):
        ax.bar([k + (i - 1.5) * width for k in x], table[col], width, label=label)
    ax.set_xticks(list(x), names, fontsize="small")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="x-small", ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return fig


def detection(scores: pd.DataFrame, aucs: dict[str, float]):
    """ROC curves of the feature-space detectors, clean vs accumulative-phase images."""
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(4, 4))
    for name, auc in aucs.items():
        fpr, tpr, _ = roc_curve(scores["clean"], scores[name])
        ax.plot(fpr, tpr, label=f"{name.upper()} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate (poisoned accepted)")
    ax.set_ylabel("true positive rate (clean accepted)")
    ax.set_title("detecting the accumulative phase")
    ax.legend(fontsize="small")
    return fig
