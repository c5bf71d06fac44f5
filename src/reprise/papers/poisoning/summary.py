"""From per-step tables to the numbers the paper reports (torch-free).

A per-step table has one row per (run, step): run (trigger_alone, full, clean,
clean_trigger), step, phase (start, accumulative, trigger, clean), val_acc, test_acc; the
attack step adds variant and setting columns. Accuracies below are on the test set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SETTINGS = ("online", "federated")


def _acc(table: pd.DataFrame, run: str, step: int | None = None, phase: str | None = None):
    rows = table[table["run"] == run]
    if step is not None:
        rows = rows[rows["step"] == step]
    if phase is not None:
        rows = rows[rows["phase"] == phase]
    return float(rows["test_acc"].iloc[-1]) if len(rows) else float("nan")


def summarize(table: pd.DataFrame) -> dict[str, float]:
    """One setting and variant: accuracy before/after each trigger and the drops.

    steps: length of the accumulative phase; accum_gap: clean stream minus full attack at its
    end (what the phase costs, "secretly" when small); drop: full attack's one-step trigger
    drop; alone_drop / clean_trigger_drop: the trigger alone, and after a clean phase;
    margin: drop minus alone_drop."""
    full = table[table["run"] == "full"]
    steps = int(full.loc[full["phase"] == "accumulative", "step"].max()) if len(full) else 0
    steps = 0 if np.isnan(steps) else steps
    out = {
        "steps": float(steps),
        "start_acc": _acc(table, "full", 0),
        "clean_acc_end": _acc(table, "clean", steps),
        "acc_before": _acc(table, "full", steps),
        "acc_after": _acc(table, "full", phase="trigger"),
        "alone_after": _acc(table, "trigger_alone", phase="trigger"),
        "clean_trigger_after": _acc(table, "clean_trigger", phase="trigger"),
    }
    out["accum_gap"] = out["clean_acc_end"] - out["acc_before"]
    out["drop"] = out["acc_before"] - out["acc_after"]
    out["alone_drop"] = out["start_acc"] - out["alone_after"]
    out["clean_trigger_drop"] = out["clean_acc_end"] - out["clean_trigger_after"]
    out["margin"] = out["drop"] - out["alone_drop"]
    return out


def ablation(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per (setting, variant): summarize() of its table."""
    rows = []
    for t in tables:
        setting, variant = t["setting"].iloc[0], t["variant"].iloc[0]
        rows.append({"setting": setting, "variant": variant, **summarize(t)})
    return pd.DataFrame(rows).sort_values(["setting", "variant"], ignore_index=True)


def detection_aucs(scores: pd.DataFrame) -> dict[str, float]:
    """ROC-AUC of each detector score, clean batches positive (higher = more likely clean):
    0.5 means the poisoned batches cannot be told apart."""
    from reprise.metrics import roc_auc

    detectors = [c for c in scores.columns if c != "clean"]
    return {d: roc_auc(scores[d], scores["clean"]) for d in detectors}
