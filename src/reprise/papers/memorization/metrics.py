"""metrics.json of the memorization paper: every metric declared once, beside the function
that computes it from the evaluate step's tables. A dataset that did not run gives None."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

from reprise.metric_table import MetricTable
from reprise.papers.memorization import (
    CHECKPOINTS,
    COMPLEXITY,
    DATASETS,
    EXPLAINING_BOUND,
    LABEL_KINDS,
    LABEL_METHODS,
    TE_ATTACKS,
    TE_PAIRS,
    TE_RUNS,
)

ACCURACIES = {
    "train_robust_acc": "final PGD robust accuracy on the training set as trained (its labels)",
    "train_clean_acc": "final clean train accuracy",
    "test_clean_acc": "final clean test accuracy (the monitor's test subset)",
    "test_clean_acc_full": "final clean test accuracy on the whole test split",
    "test_robust_acc": "final PGD test accuracy",
}


@dataclass
class Tables:
    """What the evaluate step computes metrics from (pandas DataFrames)."""

    histories: Any  # per-epoch rows of the random-label runs
    finals: Any  # their last epochs (evaluate.final_rows)
    separation: Any  # complexity measures, true vs random (evaluate.separation)
    measures: Any  # the complexity measures of every model (each seed)
    best_final: Any  # TE runs' best and final checkpoints (evaluate.best_final)


METRICS = MetricTable()


def final_accuracies(ds: str, t: Tables) -> dict:
    out = {
        f"{ds}_{method}_{kind}_{acc}": None
        for method in LABEL_METHODS
        for kind in LABEL_KINDS
        for acc in ACCURACIES
    }
    for r in t.finals[t.finals["dataset"] == ds].itertuples():
        for acc in ACCURACIES:
            value = float(getattr(r, acc))
            out[f"{ds}_{r.method}_{r.labels}_{acc}"] = None if math.isnan(value) else value
    return out


def gradient_ratios(ds: str, t: Tables) -> dict:
    from reprise.papers.memorization.evaluate import LABEL_KEYS, grad_statistics, ratio

    out = dict.fromkeys([f"{ds}_grad_norm_ratio_random", f"{ds}_grad_variability_ratio_random"])
    histories = t.histories[t.histories["dataset"] == ds]
    if histories.empty:
        return out
    grads = grad_statistics(histories).set_index(LABEL_KEYS)
    trades, pgd_at = (ds, "trades", "random"), (ds, "pgd_at", "random")
    if trades in grads.index and pgd_at in grads.index:
        t_, p = grads.loc[trades], grads.loc[pgd_at]
        out[f"{ds}_grad_norm_ratio_random"] = ratio(t_["grad_mean"], p["grad_mean"])
        out[f"{ds}_grad_variability_ratio_random"] = ratio(
            t_["grad_variability"], p["grad_variability"]
        )
    return out


COMPLEXITY_STATS = {
    "random_minus_true": "on random labels minus on true labels, mean over seeds (log10 "
    "scale: a log10 ratio for all but log_spectral_product, already a log10)",
    "random_minus_true_se": "standard error of that difference over the seeds",
    "p_value": "one-sided Welch p-value of random above true over the seeds",
}


def complexity_separation(ds: str, t: Tables) -> dict:
    from reprise.papers.memorization.evaluate import relabelled_pass_rate

    fractions = ("separating", "explaining")
    out = dict.fromkeys(
        [f"{ds}_complexity_{f}_fraction" for f in fractions]
        + [f"{ds}_complexity_pass_rate_relabelled"]
        + [f"{ds}_{m}_{stat}" for m in COMPLEXITY for stat in COMPLEXITY_STATS]
    )
    sep = t.separation
    g = sep[(sep["method"] == "pgd_at") & (sep["dataset"] == ds)]
    if not g.empty:
        out[f"{ds}_complexity_separating_fraction"] = float(g["separates"].mean())
        out[f"{ds}_complexity_explaining_fraction"] = float(g["explains"].mean())
        rate = relabelled_pass_rate(t.measures, ds, "pgd_at", EXPLAINING_BOUND)
        out[f"{ds}_complexity_pass_rate_relabelled"] = None if math.isnan(rate) else rate
        for r in g.itertuples():
            for stat in COMPLEXITY_STATS:
                value = float(getattr(r, stat))
                out[f"{ds}_{r.measure}_{stat}"] = None if math.isnan(value) else value
    return out


def te_accuracies(ds: str, t: Tables) -> dict:
    out = {
        f"{ds}_{run}_{ckpt}_{attack}": None
        for run in TE_RUNS
        for ckpt in CHECKPOINTS
        for attack in TE_ATTACKS
    }
    for r in t.best_final[t.best_final["dataset"] == ds].itertuples():
        for attack in TE_ATTACKS:
            out[f"{ds}_{r.run}_{r.checkpoint}_{attack}"] = float(getattr(r, attack))
    return out


def te_gaps(ds: str, t: Tables) -> dict:
    """Best-minus-final PGD-20 accuracy per run, and how much TE shrinks it."""
    out = dict.fromkeys(
        [f"{ds}_{run}_gap_pgd20" for run in TE_RUNS]
        + [f"{ds}_{base}_te_gap_reduction" for base in TE_PAIRS]
        + [f"{ds}_{base}_te_final_autoattack_gain" for base in TE_PAIRS]
    )
    bf = t.best_final[t.best_final["dataset"] == ds].set_index(["run", "checkpoint"])
    gap = {}
    for run in bf.index.get_level_values("run").unique():
        best, final = float(bf.at[(run, "best"), "pgd20"]), float(bf.at[(run, "final"), "pgd20"])
        gap[run] = out[f"{ds}_{run}_gap_pgd20"] = best - final
    for base, te in TE_PAIRS.items():
        if base in gap and te in gap:
            out[f"{ds}_{base}_te_gap_reduction"] = gap[base] - gap[te]
            aa = [float(bf.at[(r, "final"), "autoattack"]) for r in (te, base)]
            out[f"{ds}_{base}_te_final_autoattack_gain"] = aa[0] - aa[1]
    return out


for _ds in DATASETS:
    METRICS.group(
        {
            f"{_ds}_{method}_{kind}_{acc}": f"{_ds}, {method} on {kind} labels: {text}"
            for method in LABEL_METHODS
            for kind in LABEL_KINDS
            for acc, text in ACCURACIES.items()
        }
    )(partial(final_accuracies, _ds))
    METRICS.group(
        {
            f"{_ds}_grad_norm_ratio_random": f"{_ds}, random labels: mean over epochs of the "
            "squared gradient norm, TRADES / PGD-AT",
            f"{_ds}_grad_variability_ratio_random": f"{_ds}, random labels: std of the "
            "epoch-to-epoch change of log10 squared gradient norm, TRADES / PGD-AT",
        }
    )(partial(gradient_ratios, _ds))
    METRICS.group(
        {
            f"{_ds}_complexity_separating_fraction": f"{_ds}: fraction of the complexity "
            "measures whose mean over seeds ranks PGD-AT on random labels (cannot generalise) "
            "above PGD-AT on true labels",
            f"{_ds}_complexity_explaining_fraction": f"{_ds}: fraction of the complexity "
            "measures that rank the random-label PGD-AT models above the true-label ones with "
            "a one-sided Welch test over seeds at p < 0.05 (they would explain robust "
            "generalisation)",
            f"{_ds}_complexity_pass_rate_relabelled": f"{_ds}: share of the reassignments of "
            "the models' true/random labels under which the explaining fraction is at most "
            "1/2 (how often the claim passes on orderings without signal)",
            **{
                f"{_ds}_{m}_{stat}": f"{_ds}, PGD-AT: {m} {text}"
                for m in COMPLEXITY
                for stat, text in COMPLEXITY_STATS.items()
            },
        }
    )(partial(complexity_separation, _ds))
    METRICS.group(
        {
            f"{_ds}_{run}_{ckpt}_{attack}": f"{_ds}, {run}: {attack} test accuracy of the "
            f"{ckpt} checkpoint"
            for run in TE_RUNS
            for ckpt in CHECKPOINTS
            for attack in TE_ATTACKS
        }
    )(partial(te_accuracies, _ds))
    METRICS.group(
        {
            **{
                f"{_ds}_{run}_gap_pgd20": f"{_ds}, {run}: PGD-20 accuracy, best minus final "
                "checkpoint"
                for run in TE_RUNS
            },
            **{
                f"{_ds}_{base}_te_gap_reduction": f"{_ds}: best-minus-final PGD-20 gap of {base} "
                f"minus that of {te}"
                for base, te in TE_PAIRS.items()
            },
            **{
                f"{_ds}_{base}_te_final_autoattack_gain": f"{_ds}: AutoAttack accuracy of the "
                f"final {te} checkpoint minus that of the final {base} checkpoint"
                for base, te in TE_PAIRS.items()
            },
        }
    )(partial(te_gaps, _ds))
