"""Scores that separate two groups (correct vs wrong, clean vs adversarial): ROC-AUC, TPR at
a fixed FPR, accuracy on accepted inputs vs rejection rate, and confidence histograms.

Convention: a higher score means "more likely positive" (accept, correct, clean)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _arrays(scores, positives) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    p = np.asarray(positives, dtype=bool).ravel()
    if s.shape != p.shape:
        raise ValueError(f"scores ({s.shape}) and positives ({p.shape}) differ in length")
    return s, p


def roc_auc(scores, positives) -> float:
    """Area under the ROC curve; NaN when one of the groups is empty.

    By the Mann-Whitney statistic (average ranks, so a tie counts one half): the same value
    as sklearn's roc_auc_score, without its per-call validation (~10x faster on small sets,
    which matters when a paper computes thousands)."""
    from scipy.stats import rankdata

    s, p = _arrays(scores, positives)
    n_pos = int(p.sum())
    n_neg = len(p) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = rankdata(s)[p].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tpr_at_fpr(scores, positives, fpr: float) -> float:
    """The highest true-positive rate of any threshold whose false-positive rate is <= fpr."""
    from sklearn.metrics import roc_curve

    s, p = _arrays(scores, positives)
    if p.all() or not p.any():
        return float("nan")
    fprs, tprs, _ = roc_curve(p, s)
    return float(tprs[fprs <= fpr + 1e-12].max())


def threshold_at_tpr(scores, positives, tpr: float) -> float:
    """The largest threshold t such that `score >= t` accepts at least `tpr` of the positives."""
    s, p = _arrays(scores, positives)
    pos = np.sort(s[p])
    if len(pos) == 0:
        return float("nan")
    k = int(np.ceil(tpr * len(pos) - 1e-9))  # how many positives must be accepted
    return float(pos[len(pos) - max(k, 1)])


def accuracy_vs_rejection(scores, correct, rates=None) -> pd.DataFrame:
    """Reject the lowest-scoring fraction of inputs; accuracy on the rest, per rejection rate."""
    s, c = _arrays(scores, correct)
    rates = np.linspace(0.0, 0.9, 10) if rates is None else np.asarray(rates, dtype=np.float64)
    order = np.argsort(s, kind="stable")  # ascending: rejected first
    rows = []
    for r in rates:
        kept = order[int(np.floor(r * len(s) + 1e-9)) :]
        acc = float(c[kept].mean()) if len(kept) else float("nan")
        rows.append({"rejection_rate": float(r), "accepted": len(kept), "accuracy": acc})
    return pd.DataFrame(rows)


def confidence_histogram(confidence, groups, bins: int = 20) -> pd.DataFrame:
    """Counts and densities of confidences in [0, 1], one row per (group, bin).

    `groups`: a label per input (e.g. "correct"/"wrong"); each group's densities sum to 1."""
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    groups = np.asarray(groups).ravel()
    if conf.shape != groups.shape:
        raise ValueError(f"confidence ({conf.shape}) and groups ({groups.shape}) differ in length")
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for g in sorted(set(groups.tolist()), key=str):
        counts, _ = np.histogram(conf[groups == g], bins=edges)
        total = max(counts.sum(), 1)
        for i, n in enumerate(counts):
            rows.append(
                {
                    "group": g,
                    "bin_left": edges[i],
                    "bin_right": edges[i + 1],
                    "count": int(n),
                    "fraction": n / total,
                }
            )
    return pd.DataFrame(rows)
