"""From the saved tables to the summary tables and metrics.json (pandas only, torch-free)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reprise.papers.memorization import COMPLEXITY, TE_ATTACKS

LABEL_KEYS = ["dataset", "method", "labels"]
ACCURACIES = ["train_clean_acc", "train_robust_acc", "test_clean_acc", "test_robust_acc"]
FULL_TEST = "test_clean_acc_full"


def final_rows(histories: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of each random-label-experiment run, with the clean accuracy on the
    whole test split (`test_clean_acc_full`, measured after training; NaN if absent)."""
    last = histories.sort_values("epoch").groupby(LABEL_KEYS, sort=True).tail(1)
    last = last.reindex(columns=[*last.columns.drop(FULL_TEST, errors="ignore"), FULL_TEST])
    cols = LABEL_KEYS + ["epoch", *ACCURACIES, FULL_TEST, "grad_norm_sq"]
    return last[cols].reset_index(drop=True)


def grad_statistics(histories: pd.DataFrame) -> pd.DataFrame:
    """Per run: the mean squared gradient norm over epochs and its variability, the std of
    the epoch-to-epoch change of its log10 (erratic curves have a large one)."""

    def stats(h):
        g = h.sort_values("epoch")["grad_norm_sq"].to_numpy()
        steps = np.diff(np.log10(np.maximum(g, 1e-30)))
        return pd.Series(
            {"grad_mean": g.mean(), "grad_variability": steps.std() if len(steps) else np.nan}
        )

    return histories.groupby(LABEL_KEYS).apply(stats, include_groups=False).reset_index()


def separation(measures: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, method and measure: the value on true and on random labels, their
    difference on a log10 scale, and whether the measure ranks the random-label model
    (which cannot generalise) as the more complex one."""
    rows = []
    for (dataset, method), g in measures.groupby(["dataset", "method"], sort=True):
        by_kind = g.set_index("labels")
        if not {"true", "random"} <= set(by_kind.index):
            continue
        for m in COMPLEXITY:
            true, rand = float(by_kind.at["true", m]), float(by_kind.at["random", m])
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "measure": m,
                    "true": true,
                    "random": rand,
                    "random_minus_true": log_difference(m, true, rand),
                    "separates": bool(rand > true),
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "dataset",
            "method",
            "measure",
            "true",
            "random",
            "random_minus_true",
            "separates",
        ],
    )


def log_difference(measure: str, true: float, rand: float) -> float:
    """random − true on a log10 scale (log_spectral_product is a log10 already)."""
    if measure == "log_spectral_product":
        return rand - true
    if true <= 0 or rand <= 0:
        return math.nan
    return math.log10(rand / true)


def ratio(a: float, b: float) -> float:
    """a / b, NaN where b is 0 or NaN (a run too short to vary)."""
    return float(a) / float(b) if b and not math.isnan(b) else math.nan


def best_final(te_eval: pd.DataFrame, te_histories: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset, run and checkpoint: natural, PGD-20, CW-20, AutoAttack accuracy and the
    per-epoch PGD-10 test accuracy of that epoch; the best checkpoint's epoch comes from
    the checkpoint itself."""
    monitor = te_histories.set_index(["dataset", "run", "epoch"])["test_robust_acc"]
    out = te_eval.copy()
    out["pgd10"] = [monitor.get((r.dataset, r.run, int(r.epoch)), np.nan) for r in out.itertuples()]
    cols = ["dataset", "run", "checkpoint", "epoch", *TE_ATTACKS]
    return out[cols].sort_values(["dataset", "run", "checkpoint"]).reset_index(drop=True)
