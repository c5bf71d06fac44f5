"""From per-sample score tables to the paper's tables and metrics (no torch).

- detection: per model, input set and score, the ROC-AUC for correct vs wrong predictions
  and the accuracy without rejection.
- acceptance: per model, input set, score and TPR, the accuracy on accepted inputs when the
  threshold keeps that fraction of correctly classified *calibration* (training) inputs,
  plus the same with a threshold fitted on the test inputs themselves (as the paper's
  evaluation code reports it).
- rules: the rejection rules: a training-data threshold on Con, on R-Con (at the first
  configured TPR), and the coupled rule (accept when both Con and R-Con exceed 1/2).
- corruptions: per model and corrupted split, accuracy and the AUC/acceptance of Con, R-Con.
- gains: per RR model and test input set, AUC(R-Con) − AUC(Con) with a paired bootstrap
  95% interval over the test inputs (under an adaptive attack: each score on the inputs
  adapted to it).

An AUC needs at least MIN_GROUP correct and MIN_GROUP wrong inputs; else it is NaN (e.g.
a model almost nothing of which survives the attack).

Thresholds for clean and corrupted inputs come from clean calibration inputs, those for
attacked inputs from calibration inputs under the `pgd` attack.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprise.metrics import roc_auc, threshold_at_tpr
from reprise.papers.rejection import COUPLED_THRESHOLD, SCORES

MIN_GROUP = 10  # an AUC over fewer correct (or wrong) inputs is not reported
KEYS = ["backbone", "run", "method", "rr", "split", "input", "source", "adapted_to"]


def groups(scores: pd.DataFrame):
    """(key values, rows) per model and input set, test and corruption splits only."""
    evaluated = scores[scores["split"] != "calibration"]
    yield from evaluated.groupby(KEYS, sort=False, dropna=False)


def calibration_thresholds(scores: pd.DataFrame, tprs) -> dict:
    """{(backbone, run, calibration input, score, tpr): threshold} on correct inputs."""
    out = {}
    cal = scores[scores["split"] == "calibration"]
    for (backbone, run, name), rows in cal.groupby(["backbone", "run", "input"], sort=False):
        for s in SCORES:
            for tpr in tprs:
                out[backbone, run, name, s, tpr] = threshold_at_tpr(rows[s], rows["correct"], tpr)
    return out


def _calibrated_by(source: str) -> str:
    return "pgd" if source == "attack" else "clean"


def auc(values, correct) -> float:
    correct = np.asarray(correct, dtype=bool)
    if min(correct.sum(), (~correct).sum()) < MIN_GROUP:
        return np.nan
    return roc_auc(values, correct)


def detection_table(scores: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for key, g in groups(scores):
        for s in SCORES:
            if g[s].isna().all():
                continue  # R-Con of a model without an RR head
            rows.append(
                {
                    **dict(zip(KEYS, key, strict=True)),
                    "score": s,
                    "auc": auc(g[s], g["correct"]),
                    "accuracy": g["correct"].mean(),
                    "n": len(g),
                }
            )
    return pd.DataFrame(rows)


def acceptance_table(scores: pd.DataFrame, tprs) -> pd.DataFrame:
    thresholds = calibration_thresholds(scores, tprs)
    rows = []
    for key, g in groups(scores):
        k = dict(zip(KEYS, key, strict=True))
        correct = g["correct"].to_numpy()
        for s in SCORES:
            if g[s].isna().all():
                continue
            values = g[s].to_numpy()
            for tpr in tprs:
                t = thresholds[k["backbone"], k["run"], _calibrated_by(k["source"]), s, tpr]
                accepted = values >= t
                t_test = threshold_at_tpr(values, correct, tpr)
                rows.append(
                    {
                        **k,
                        "score": s,
                        "tpr": tpr,
                        "threshold": t,
                        "accept_rate": accepted.mean(),
                        "tpr_achieved": _mean(accepted[correct]),
                        "accuracy": correct.mean(),
                        "acc_accepted": _mean(correct[accepted]),
                        "acc_accepted_test_threshold": _mean(correct[values >= t_test]),
                    }
                )
    return pd.DataFrame(rows)


def rules_table(acceptance: pd.DataFrame, scores: pd.DataFrame, tpr: float) -> pd.DataFrame:
    """Training-data thresholds on Con and R-Con, and the coupled rule."""
    chosen = acceptance[(acceptance["tpr"] == tpr) & acceptance["score"].isin(["con", "rcon"])]
    rows = [
        {
            **{k: r[k] for k in KEYS},
            "rule": f"{r['score']} >= t (train TPR {tpr:g})",
            "accept_rate": r["accept_rate"],
            "acc_accepted": r["acc_accepted"],
            "accuracy": r["accuracy"],
        }
        for _, r in chosen.iterrows()
    ]
    for key, g in groups(scores):
        if g["rcon"].isna().all():
            continue
        accepted = ((g["con"] > COUPLED_THRESHOLD) & (g["rcon"] > COUPLED_THRESHOLD)).to_numpy()
        correct = g["correct"].to_numpy()
        rows.append(
            {
                **dict(zip(KEYS, key, strict=True)),
                "rule": "coupled: con, rcon > 1/2",
                "accept_rate": accepted.mean(),
                "acc_accepted": _mean(correct[accepted]),
                "accuracy": correct.mean(),
            }
        )
    return pd.DataFrame(rows)


def auc_table(detection: pd.DataFrame) -> pd.DataFrame:
    """The AUC table: one row per model and input set, one column per score."""
    index = ["backbone", "run", "split", "input", "adapted_to"]
    wide = detection.pivot_table(index=index, columns="score", values="auc", sort=False)
    return wide.reindex(columns=[s for s in SCORES if s in wide.columns]).reset_index()


def corruption_table(detection: pd.DataFrame, acceptance: pd.DataFrame, tpr) -> pd.DataFrame:
    auc = detection[detection["split"] == "corruption"]
    acc = acceptance[(acceptance["split"] == "corruption") & (acceptance["tpr"] == tpr)]
    index = ["backbone", "run", "input", "source"]
    table = auc.pivot_table(index=[*index, "accuracy"], columns="score", values="auc")
    table = table.add_prefix("auc_").reset_index()
    accepted = acc.pivot_table(index=index, columns="score", values="acc_accepted")
    table = table.merge(accepted.add_prefix("acc_accepted_").reset_index(), on=index)
    if table.empty:  # no corrupted split had enough correct and wrong inputs for an AUC
        return table.assign(corruption=pd.Series(dtype=str), severity=pd.Series(dtype=int))
    parts = table["input"].str.rsplit("-", n=1, expand=True)
    table.insert(3, "corruption", parts[0])
    table.insert(4, "severity", parts[1].astype(int))
    return table.drop(columns="input")


def gain_table(scores: pd.DataFrame, resamples: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    test = scores[(scores["split"] == "test") & scores["rr"]]
    rows = []
    for (backbone, run, name), g in test.groupby(["backbone", "run", "input"], sort=False):
        g = g.sort_values("idx", kind="stable")
        con, rcon = g, g
        if g["adapted_to"].ne("").any():
            con, rcon = g[g["adapted_to"] == "con"], g[g["adapted_to"] == "rcon"]
        a = con["con"].to_numpy(), con["correct"].to_numpy()
        b = rcon["rcon"].to_numpy(), rcon["correct"].to_numpy()

        def gain(i=slice(None), a=a, b=b):
            return auc(b[0][i], b[1][i]) - auc(a[0][i], a[1][i])

        point = gain()
        draws = np.array([gain(rng.integers(0, len(con), len(con))) for _ in range(resamples)])
        draws = draws[~np.isnan(draws)]
        # no interval where the sample itself has too few correct (or wrong) inputs for an
        # AUC: the resamples that happen to have enough would be a biased selection
        valid = len(draws) and not np.isnan(point)
        low, high = np.percentile(draws, [2.5, 97.5]) if valid else (np.nan, np.nan)
        rows.append(
            {
                "backbone": backbone,
                "run": run,
                "input": name,
                "auc_gain": point,
                "ci_low": low,
                "ci_high": high,
                "resamples": len(draws),
            }
        )
    return pd.DataFrame(rows)


def _mean(a: np.ndarray) -> float:
    return float(a.mean()) if len(a) else np.nan
