"""metrics.json of the rejection paper, of its first (primary) backbone: every metric declared
once, beside the function that computes it from the evaluate step's tables. A run or an
attack that is not configured gives NaN (written as null). The paper's second dataset
(CIFAR-100, paper scale) adds a few metrics prefixed by its name, of the first backbone
trained on it (`data.extra`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from reprise.metric_table import MetricTable
from reprise.papers.rejection import AT_METHODS

BASELINES = ("energy", "kd", "lid", "gda")
TPR95 = 0.95  # the paper's true-positive rate for the rejection threshold
OTHER_DATASETS = ("cifar100",)  # datasets besides the primary one that have metrics


@dataclass
class Tables:
    """The evaluate step's tables (pandas DataFrames), narrowed to the primary backbone;
    `others` holds those of each other dataset's first backbone, by dataset."""

    detection: Any
    acceptance: Any
    rules: Any
    gains: Any
    scores: Any
    others: dict[str, Tables] = field(default_factory=dict)

    @classmethod
    def of_backbone(cls, backbone: str, **tables) -> Tables:
        return cls(**{k: t[t["backbone"] == backbone] for k, t in tables.items()})

    def auc(self, run: str, name: str, score: str, adapted: str = "") -> float:
        d = self.detection
        rows = d[
            (d["run"] == run)
            & (d["input"] == name)
            & (d["score"] == score)
            & (d["adapted_to"] == adapted)
        ]
        return _first(rows, "auc")

    def accuracy(self, run: str, name: str) -> float:
        d = self.detection
        return _first(
            d[(d["run"] == run) & (d["input"] == name) & (d["score"] == "con")], "accuracy"
        )

    def accepted_accuracy(
        self, run: str, name: str, score: str, tpr: float, column: str = "acc_accepted"
    ) -> float:
        """Accuracy on accepted inputs: threshold from the training data (`acc_accepted`), or
        from the test inputs themselves (`acc_accepted_test_threshold`: the paper's code)."""
        a = self.acceptance
        rows = a[
            (a["run"] == run)
            & (a["input"] == name)
            & (a["score"] == score)
            & np.isclose(a["tpr"], tpr)
            & (a["adapted_to"] == "")
        ]
        return _first(rows, column)

    def gain_ci_low(self, run: str, name: str) -> float:
        g = self.gains
        return _first(g[(g["run"] == run) & (g["input"] == name)], "ci_low")


def _first(rows, column: str) -> float:
    return float(rows[column].iloc[0]) if len(rows) else np.nan


METRICS = MetricTable()


def per_method(method: str, t: Tables) -> dict:
    """Clean accuracy with and without RR, and RR's AUCs and their gains under PGD."""
    rr = f"{method}_rr"
    m = {
        f"{method}_clean_acc": t.accuracy(method, "clean"),
        f"{rr}_clean_acc": t.accuracy(rr, "clean"),
        f"{rr}_pgd_acc": t.accuracy(rr, "pgd"),
        f"{method}_autoattack_acc": t.accuracy(method, "autoattack"),
        f"{rr}_autoattack_acc": t.accuracy(rr, "autoattack"),
    }
    m[f"{rr}_clean_acc_drop"] = m[f"{method}_clean_acc"] - m[f"{rr}_clean_acc"]
    for s in ("con", "rcon"):
        m[f"{rr}_auc_{s}_pgd"] = t.auc(rr, "pgd", s)
        m[f"{rr}_auc_{s}_adaptive_pgd"] = t.auc(rr, "adaptive_pgd", s, s)
    m[f"{rr}_auc_gain_pgd"] = m[f"{rr}_auc_rcon_pgd"] - m[f"{rr}_auc_con_pgd"]
    m[f"{rr}_auc_gain_adaptive_pgd"] = (
        m[f"{rr}_auc_rcon_adaptive_pgd"] - m[f"{rr}_auc_con_adaptive_pgd"]
    )
    for name in ("pgd", "adaptive_pgd"):
        m[f"{rr}_auc_gain_{name}_ci_low"] = t.gain_ci_low(rr, name)
    m[f"{rr}_pgd_acc_tpr95_rcon"] = t.accepted_accuracy(rr, "pgd", "rcon", TPR95)
    m[f"{rr}_pgd_rejection_gain"] = m[f"{rr}_pgd_acc_tpr95_rcon"] - m[f"{rr}_pgd_acc"]
    # R-Con against Con on the same model at the same TPR: the thresholds keep 95% of the
    # correctly classified PGD test inputs for both scores (the paper's TPR-95 accuracy)
    same_tpr = {
        s: t.accepted_accuracy(rr, "pgd", s, TPR95, "acc_accepted_test_threshold")
        for s in ("con", "rcon")
    }
    m[f"{rr}_pgd_tpr95_acc_con"], m[f"{rr}_pgd_tpr95_acc_rcon"] = same_tpr["con"], same_tpr["rcon"]
    m[f"{rr}_pgd_tpr95_acc_gain"] = same_tpr["rcon"] - same_tpr["con"]
    return m


for _f in AT_METHODS:
    _rr = f"{_f}_rr"
    METRICS.group(
        {
            f"{_f}_clean_acc": f"{_f}: clean test accuracy",
            f"{_rr}_clean_acc": f"{_f}+RR: clean test accuracy",
            f"{_rr}_clean_acc_drop": f"{_f} minus {_f}+RR clean test accuracy",
            f"{_rr}_pgd_acc": f"{_f}+RR: accuracy under PGD, without rejection",
            f"{_f}_autoattack_acc": f"{_f}: accuracy under AutoAttack (undefended: no "
            "rejection; null where the attack table has no autoattack entry)",
            f"{_rr}_autoattack_acc": f"{_f}+RR: accuracy under AutoAttack, without rejection",
            f"{_rr}_auc_con_pgd": f"{_f}+RR: ROC-AUC of Con (correct vs wrong) under PGD",
            f"{_rr}_auc_rcon_pgd": f"{_f}+RR: ROC-AUC of R-Con under PGD",
            f"{_rr}_auc_gain_pgd": f"{_f}+RR: AUC of R-Con minus AUC of Con under PGD",
            f"{_rr}_auc_con_adaptive_pgd": f"{_f}+RR: AUC of Con under PGD adaptive to Con",
            f"{_rr}_auc_rcon_adaptive_pgd": f"{_f}+RR: AUC of R-Con under PGD adaptive to R-Con",
            f"{_rr}_auc_gain_adaptive_pgd": f"{_f}+RR: the two adaptive AUCs, R-Con minus Con",
            f"{_rr}_auc_gain_pgd_ci_low": f"{_f}+RR: lower end of that PGD gain's 95% bootstrap CI",
            f"{_rr}_auc_gain_adaptive_pgd_ci_low": (
                f"{_f}+RR: lower end of the adaptive gain's 95% bootstrap interval"
            ),
            f"{_rr}_pgd_acc_tpr95_rcon": (
                f"{_f}+RR: accuracy on PGD inputs accepted by R-Con at the training TPR-95 "
                "threshold"
            ),
            f"{_rr}_pgd_rejection_gain": f"{_f}+RR: that accuracy minus PGD accuracy unrejected",
            f"{_rr}_pgd_tpr95_acc_con": (
                f"{_f}+RR: accuracy on PGD test inputs Con accepts at TPR 95% (test threshold)"
            ),
            f"{_rr}_pgd_tpr95_acc_rcon": (
                f"{_f}+RR: accuracy on PGD test inputs R-Con accepts at TPR 95% (test threshold)"
            ),
            f"{_rr}_pgd_tpr95_acc_gain": f"{_f}+RR: TPR-95 accuracy of R-Con minus that of Con",
        }
    )(partial(per_method, _f))


@METRICS.group(
    {
        "pgd_at_pgd_acc": "PGD-AT: accuracy under PGD, without rejection",
        "pgd_at_auc_con_pgd": "PGD-AT: AUC of Con under PGD",
        "pgd_at_auc_tcon_gain_pgd": "PGD-AT: AUC of T-Con minus AUC of Con under PGD",
        "pgd_at_auc_best_baseline_pgd": "PGD-AT: best AUC of energy, KD, LID, GDA under PGD",
        "pgd_at_rr_auc_gain_over_baselines_pgd": (
            "AUC of R-Con (PGD-AT+RR) minus the best baseline AUC (PGD-AT) under PGD"
        ),
    }
)
def against_baselines(t: Tables) -> dict:
    con = t.auc("pgd_at", "pgd", "con")
    baselines = [t.auc("pgd_at", "pgd", b) for b in BASELINES]
    best = max(baselines, key=lambda v: -np.inf if np.isnan(v) else v)
    return {
        "pgd_at_pgd_acc": t.accuracy("pgd_at", "pgd"),
        "pgd_at_auc_con_pgd": con,
        "pgd_at_auc_tcon_gain_pgd": t.auc("pgd_at", "pgd", "tcon") - con,
        "pgd_at_auc_best_baseline_pgd": best,
        "pgd_at_rr_auc_gain_over_baselines_pgd": t.auc("pgd_at_rr", "pgd", "rcon") - best,
    }


@METRICS.group(
    {
        "pgd_at_rr_auc_gain_pgd_cw": "PGD-AT+RR: AUC R-Con minus Con under PGD with CW loss",
        "pgd_at_rr_auc_gain_multitarget": "PGD-AT+RR: AUC R-Con minus Con, multi-target PGD",
        "pgd_at_rr_auc_gain_adaptive_cw": (
            "PGD-AT+RR: AUC of R-Con minus Con, each under adaptive CW against itself"
        ),
    }
)
def other_attacks(t: Tables) -> dict:
    def gain(name, adapted=False):
        rcon = t.auc("pgd_at_rr", name, "rcon", "rcon" if adapted else "")
        return rcon - t.auc("pgd_at_rr", name, "con", "con" if adapted else "")

    return {
        "pgd_at_rr_auc_gain_pgd_cw": gain("pgd_cw"),
        "pgd_at_rr_auc_gain_multitarget": gain("multitarget"),
        "pgd_at_rr_auc_gain_adaptive_cw": gain("adaptive_cw", adapted=True),
    }


@METRICS.group(
    {
        f"pgd_at_rr_adaptive_cw_success_{s}": (
            f"PGD-AT+RR: share of test inputs adaptive CW makes wrong and accepted by {name}"
        )
        for s, name in (("con", "Con"), ("rcon", "R-Con"))
    }
)
def adaptive_cw_success(t: Tables) -> dict:
    """Share of test inputs adaptive CW turns into misclassified AND accepted inputs, with the
    attack's own threshold (median score of correct clean calibration inputs)."""
    mine = t.scores[t.scores["run"] == "pgd_at_rr"]
    cal = mine[(mine["split"] == "calibration") & (mine["input"] == "clean") & mine["correct"]]
    out = {}
    for s in ("con", "rcon"):
        rows = mine[(mine["input"] == "adaptive_cw") & (mine["adapted_to"] == s)]
        if len(rows) == 0 or len(cal) == 0:
            out[f"pgd_at_rr_adaptive_cw_success_{s}"] = np.nan
            continue
        threshold = cal[s].median()
        out[f"pgd_at_rr_adaptive_cw_success_{s}"] = float(
            (~rows["correct"] & (rows[s] > threshold)).mean()
        )
    return out


@METRICS.group(
    {
        "pgd_at_rr_coupled_accept_pgd": "PGD-AT+RR: share of PGD inputs the coupled rule accepts",
        "pgd_at_rr_coupled_acc_pgd": "PGD-AT+RR: accuracy on PGD inputs the coupled rule accepts",
    }
)
def coupled_rule(t: Tables) -> dict:
    r = t.rules
    coupled = r[
        (r["run"] == "pgd_at_rr") & (r["input"] == "pgd") & r["rule"].str.startswith("coupled")
    ]
    return {
        "pgd_at_rr_coupled_accept_pgd": _first(coupled, "accept_rate"),
        "pgd_at_rr_coupled_acc_pgd": _first(coupled, "acc_accepted"),
    }


@METRICS.group(
    {
        "pgd_at_rr_corruption_auc_con": "PGD-AT+RR: mean AUC of Con over the corrupted splits",
        "pgd_at_rr_corruption_auc_rcon": "PGD-AT+RR: mean AUC of R-Con over the corrupted splits",
        "pgd_at_rr_corruption_auc_gain": "PGD-AT+RR: mean corruption AUC, R-Con minus Con",
    }
)
def corruptions(t: Tables) -> dict:
    d = t.detection
    corr = d[(d["run"] == "pgd_at_rr") & (d["split"] == "corruption")]
    out = {}
    for s in ("con", "rcon"):
        values = corr.loc[corr["score"] == s, "auc"]
        out[f"pgd_at_rr_corruption_auc_{s}"] = float(values.mean()) if len(values) else np.nan
    out["pgd_at_rr_corruption_auc_gain"] = (
        out["pgd_at_rr_corruption_auc_rcon"] - out["pgd_at_rr_corruption_auc_con"]
    )
    return out


# On another dataset (CIFAR-100): the headline numbers of PGD-AT(+RR), and RR's PGD AUC gain
# with TRADES and CCAT.
ON_DATASET = {
    "pgd_at_clean_acc": "PGD-AT: clean test accuracy",
    "pgd_at_pgd_acc": "PGD-AT: accuracy under PGD, without rejection",
    "pgd_at_rr_clean_acc_drop": "PGD-AT minus PGD-AT+RR clean test accuracy",
    "pgd_at_rr_auc_gain_pgd": "PGD-AT+RR: AUC of R-Con minus AUC of Con under PGD",
    "pgd_at_rr_auc_gain_pgd_ci_low": "PGD-AT+RR: lower end of that gain's 95% bootstrap CI",
    "pgd_at_rr_auc_gain_adaptive_pgd_ci_low": (
        "PGD-AT+RR: lower end of the adaptive AUC gain's 95% bootstrap interval"
    ),
    "pgd_at_rr_pgd_tpr95_acc_gain": "PGD-AT+RR: TPR-95 accuracy of R-Con minus that of Con",
    "trades_rr_auc_gain_pgd_ci_low": "TRADES+RR: lower end of the PGD AUC gain's 95% CI",
    "ccat_rr_auc_gain_pgd_ci_low": "CCAT+RR: lower end of the PGD AUC gain's 95% CI",
}


def on_dataset(dataset: str, t: Tables) -> dict:
    """ON_DATASET's metrics of `dataset`'s tables, prefixed by its name (NaN when not run)."""
    other = t.others.get(dataset)
    if other is None:
        return {f"{dataset}_{k}": np.nan for k in ON_DATASET}
    m = {**per_method("pgd_at", other), **per_method("trades", other)}
    m.update(per_method("ccat", other), pgd_at_pgd_acc=other.accuracy("pgd_at", "pgd"))
    return {f"{dataset}_{k}": m[k] for k in ON_DATASET}


for _d in OTHER_DATASETS:
    METRICS.group({f"{_d}_{k}": f"{_d}: {v}" for k, v in ON_DATASET.items()})(
        partial(on_dataset, _d)
    )
