"""Detection tables from the per-sample score tables (numpy/pandas only).

Every detector (method, score) is judged clean-vs-adversarial on each input set with the
uncertainty as the score (adversarial = positive), as the authors' plot_mi does: AUROC and
the TPR at FPR 1/5/10%. All test inputs count, whether or not the attack fooled the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprise.metrics import roc_auc, tpr_at_fpr

FPRS = (0.01, 0.05, 0.10)
# The authors' table (numbers.md: their experiment log, ImageNet ResNet-50), by row.
AUTHORS = {
    ("libre", "feature_var"): {
        "fgsm": 0.9999, "cw": 0.9847, "bim": 0.9837, "pgd": 0.9936, "mim": 0.9958,
        "tim": 0.9937, "di_mim": 0.9998, "fgsm_l2": 0.9945, "bim_l2": 0.9829, "pgd_l2": 0.9934,
        "transfer-cw": 0.9996, "transfer-pgd": 0.9996, "transfer-mim": 0.9995,
        "transfer-tim": 0.9824, "transfer-di_mim": 0.9998, "spsa": 0.9688,
        "adaptive-pgd": 0.2211, "adaptive-cw": 0.0363,
    },
    ("mc_dropout", "softmax_var"): {
        "fgsm": 0.7589, "cw": 0.0137, "bim": 0.0460, "pgd": 0.0499, "mim": 0.0591,
        "tim": 0.0809, "di_mim": 0.7522, "fgsm_l2": 0.7565, "bim_l2": 0.0481, "pgd_l2": 0.0459,
    },
    ("mc_dropout", "feature_var"): {
        "fgsm": 0.6071, "cw": 0.9797, "bim": 1.000, "pgd": 1.000, "mim": 0.9999,
        "tim": 0.9994, "di_mim": 0.6285, "fgsm_l2": 0.5774, "bim_l2": 0.9993, "pgd_l2": 0.9994,
    },
    ("mfvi_last", "feature_var"): {
        "fgsm": 0.9896, "cw": 0.9212, "bim": 0.9837, "pgd": 0.9798, "mim": 0.9924,
        "tim": 0.9895, "di_mim": 0.9891, "fgsm_l2": 0.8363, "bim_l2": 0.9833, "pgd_l2": 0.9833,
    },
    ("mfvi_full", "feature_var"): {
        "fgsm": 0.9864, "cw": 0.9427, "bim": 0.9999, "pgd": 0.9994, "mim": 0.9999,
        "tim": 0.9993, "di_mim": 0.9922, "fgsm_l2": 0.8604, "bim_l2": 0.9938, "pgd_l2": 0.9910,
    },
    ("no_hinge", "feature_var"): {
        "fgsm": 0.1217, "cw": 0.7445, "bim": 0.9873, "pgd": 0.9555, "mim": 0.9930,
        "tim": 0.9944, "di_mim": 0.1744, "fgsm_l2": 0.2891, "spsa": 0.2274,
    },
}  # fmt: skip
AUTHORS_TOP1 = {"dnn": 76.13, "libre": 76.19, "mc_dropout": 74.86, "mfvi_last": 76.17,
                "mfvi_full": 76.08, "no_hinge": 76.108}  # fmt: skip
ITERATIVE = ("cw", "bim", "pgd", "mim", "tim", "bim_l2", "pgd_l2")


def detection_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, score, input): AUROC, TPR at each FPR, accuracy, count."""
    rows = []
    for (method, score), group in scores.groupby(["method", "score"], sort=False):
        clean = group[group["input"] == "clean"]
        for name, adv in group[group["input"] != "clean"].groupby("input", sort=False):
            ref = clean[clean["idx"].isin(adv["idx"])]  # the same test images
            u = np.concatenate([ref["uncertainty"], adv["uncertainty"]])
            positive = np.r_[np.zeros(len(ref), bool), np.ones(len(adv), bool)]
            row = {"method": method, "score": score, "input": name, "n": len(adv)}
            row["auroc"] = roc_auc(u, positive)
            for f in FPRS:
                row[f"tpr_at_fpr_{round(f * 100)}"] = tpr_at_fpr(u, positive, f)
            row["adv_accuracy"] = float(adv["correct"].mean())
            row["paper_auroc"] = AUTHORS.get((method, score), {}).get(name, np.nan)
            rows.append(row)
    return pd.DataFrame(rows)


def clean_accuracy(scores: pd.DataFrame) -> pd.DataFrame:
    clean = scores[scores["input"] == "clean"].drop_duplicates(["method", "idx"])
    acc = clean.groupby("method", sort=False)["correct"].mean().mul(100).rename("top1")
    out = acc.reset_index()
    out["paper_top1"] = out["method"].map(AUTHORS_TOP1)
    return out


def auroc_of(detection: pd.DataFrame, method: str, score: str, name: str) -> float | None:
    row = detection[
        (detection["method"] == method)
        & (detection["score"] == score)
        & (detection["input"] == name)
    ]
    return float(row["auroc"].iloc[0]) if len(row) else None
