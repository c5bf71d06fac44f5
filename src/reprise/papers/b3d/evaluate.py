"""Detection quality over the population, from the saved tables (torch-free).

A model is flagged when its anomaly index exceeds 2; accuracy counts a backdoored model as
detected whichever class was flagged (as the poster's accuracy does: Cases I + II), and
`target_found` says how often the flagged class was the true target. AUROC ranks models by
the anomaly index itself, so it does not depend on the threshold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METHOD_NAMES = {"nc": "Neural Cleanse", "b3d": "B3D", "b3d_ss": "B3D-SS"}


def joined(population: pd.DataFrame, detections: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, model, method): the recipe and the method's verdict."""
    keep = [
        "dataset",
        "model",
        "attack",
        "target",
        "trigger_size",
        "alpha",
        "poison_rate",
        "clean_acc",
        "asr",
    ]
    df = detections.merge(population[keep], on=["dataset", "model"], how="left")
    df["backdoored"] = df["attack"] != "clean"
    return df


def auroc(labels, scores) -> float | None:
    from sklearn.metrics import roc_auc_score

    labels, scores = np.asarray(labels, bool), np.nan_to_num(np.asarray(scores, float), posinf=1e9)
    if labels.all() or not labels.any():
        return None  # one class only: undefined
    return float(roc_auc_score(labels, scores))


def scores(df: pd.DataFrame) -> dict:
    """accuracy, TPR, FPR, AUROC and how often the target was found, for one set of rows."""
    bad, flagged = df["backdoored"].to_numpy(), df["flagged"].to_numpy()
    return {
        "models": len(df),
        "accuracy": float((bad == flagged).mean()) if len(df) else None,
        "tpr": float(flagged[bad].mean()) if bad.any() else None,
        "fpr": float(flagged[~bad].mean()) if (~bad).any() else None,
        "auroc": auroc(bad, df["anomaly_index"]),
        "target_found": float(df.loc[df["backdoored"] & df["flagged"], "found_target"].mean())
        if (bad & flagged).any()
        else None,
    }


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """The detection table: per dataset × method × attack (each attack against the clean
    models of its dataset) and over all attacks."""
    rows = []
    for (dataset, method), part in df.groupby(["dataset", "method"], sort=True):
        clean = part[~part["backdoored"]]
        attacks = sorted(part.loc[part["backdoored"], "attack"].unique())
        for attack in [*attacks, "all"]:
            rows_ = part if attack == "all" else pd.concat([clean, part[part["attack"] == attack]])
            rows.append({"dataset": dataset, "method": method, "attack": attack, **scores(rows_)})
    return pd.DataFrame(rows)


def mitigation(df: pd.DataFrame, method: str) -> dict:
    """Mean over the models `method` flags: clean accuracy before/after repair, and over the
    flagged backdoored ones the attack success rate before/after."""
    part = df[(df["method"] == method) & df["flagged"]]
    bad = part[part["backdoored"]]
    mean = lambda s: float(s.mean()) if len(s.dropna()) else None  # noqa: E731
    return {
        "clean_before": mean(part["mit_clean_before"]),
        "clean_after": mean(part["mit_clean_after"]),
        "asr_before": mean(bad["mit_asr_before"]),
        "asr_after": mean(bad["mit_asr_after"]),
    }
