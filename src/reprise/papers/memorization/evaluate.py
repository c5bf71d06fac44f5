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


SEPARATION_COLUMNS = [
    "dataset",
    "method",
    "measure",
    "true",
    "true_sd",
    "random",
    "random_sd",
    "seeds",
    "random_minus_true",
    "random_minus_true_se",
    "p_value",
    "separates",
    "explains",
]


def separation(measures: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, method and measure, over the training seeds: the mean and sd on true and
    on random labels; random − true on a log10 scale with its standard error; the one-sided
    Welch p-value of "random above true"; whether the means rank the random-label model
    (which cannot generalise) as the more complex one (`separates`) and whether that holds
    at EXPLAINS_ALPHA (`explains`: a measure that explains robust generalisation)."""
    measures = measures if "seed" in measures else measures.assign(seed=0)
    rows = []
    for (dataset, method), g in measures.groupby(["dataset", "method"], sort=True):
        if not {"true", "random"} <= set(g["labels"]):
            continue
        for m in COMPLEXITY:
            true = log10_values(m, g.loc[g["labels"] == "true", m])
            rand = log10_values(m, g.loc[g["labels"] == "random", m])
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "measure": m,
                    **compare(true, rand),
                    "true": float(g.loc[g["labels"] == "true", m].mean()),
                    "true_sd": float(g.loc[g["labels"] == "true", m].std()),
                    "random": float(g.loc[g["labels"] == "random", m].mean()),
                    "random_sd": float(g.loc[g["labels"] == "random", m].std()),
                    "seeds": min(len(true), len(rand)),
                }
            )
    return pd.DataFrame(rows, columns=SEPARATION_COLUMNS)


def log10_values(measure: str, values: pd.Series) -> np.ndarray:
    """A measure's values on a log10 scale (log_spectral_product is a log10 already)."""
    v = values.to_numpy(dtype=float)
    if measure == "log_spectral_product":
        return v
    return np.log10(np.where(v > 0, v, np.nan))


def compare(true: np.ndarray, rand: np.ndarray) -> dict:
    """random − true (log10 means), its standard error, the one-sided Welch p-value of
    random > true (NaN with fewer than two seeds a side or no spread), and the verdicts."""
    from scipy import stats

    from reprise.papers.memorization import EXPLAINS_ALPHA

    diff = float(np.mean(rand) - np.mean(true))
    p, se = math.nan, math.nan
    if min(len(true), len(rand)) >= 2:
        se = float(math.sqrt(np.var(true, ddof=1) / len(true) + np.var(rand, ddof=1) / len(rand)))
        if se > 0:
            p = float(stats.ttest_ind(rand, true, equal_var=False, alternative="greater").pvalue)
    return {
        "random_minus_true": diff,
        "random_minus_true_se": se,
        "p_value": p,
        "separates": bool(diff > 0),
        "explains": bool(p < EXPLAINS_ALPHA),  # NaN compares False
    }


def relabelled_pass_rate(measures: pd.DataFrame, dataset: str, method: str, bound: float):
    """How often "the fraction of explaining measures is at most `bound`" holds when the
    models' true/random labels are reassigned: over every split of the 2n models into two
    groups of their sizes (the claim's own test applied to orderings carrying no signal)."""
    from itertools import combinations

    g = measures[(measures["dataset"] == dataset) & (measures["method"] == method)]
    g = g.reset_index(drop=True)
    n_true = int((g["labels"] == "true").sum())
    if n_true < 2 or len(g) - n_true < 2:
        return math.nan
    logs = {m: log10_values(m, g[m]) for m in COMPLEXITY}
    passes = []
    for chosen in combinations(range(len(g)), n_true):
        mask = np.zeros(len(g), bool)
        mask[list(chosen)] = True
        explains = [compare(v[mask], v[~mask])["explains"] for v in logs.values()]
        passes.append(np.mean(explains) <= bound)
    return float(np.mean(passes))


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
