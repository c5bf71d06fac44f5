"""libre's metrics, declared once (torch-free). `tables`: {"detection", "accuracy" (pandas),
"cost" (dict), "evaluation" (the config section)}."""

from __future__ import annotations

import numpy as np

from reprise.metric_table import MetricTable
from reprise.papers.libre.analysis import ITERATIVE, auroc_of

METRICS = MetricTable()
WHITE_BOX = ("fgsm", "cw", "bim", "pgd", "mim", "tim", "di_mim", "fgsm_l2", "bim_l2", "pgd_l2")


def _libre(tables, name):
    return auroc_of(tables["detection"], "libre", "feature_var", name)


def _top1(tables, method):
    acc = tables["accuracy"]
    row = acc[acc["method"] == method]
    return float(row["top1"].iloc[0]) if len(row) else None


for _name in (
    *WHITE_BOX,
    *(f"transfer-{a}" for a in ("cw", "pgd", "mim", "tim", "di_mim")),
    "spsa",
    "adaptive-pgd",
    "adaptive-cw",
):
    METRICS.metric(f"libre_auroc_{_name.replace('-', '_')}", f"LiBRe's AUROC on {_name}")(
        lambda tables, _n=_name: _libre(tables, _n)
    )


@METRICS.metric(
    "libre_fraction_auroc_above_threshold",
    "fraction of the white-box attacks run whose LiBRe AUROC >= evaluation.auroc_threshold",
)
def libre_fraction(tables):
    values = [_libre(tables, a) for a in WHITE_BOX]
    values = [v for v in values if v is not None]
    threshold = tables["evaluation"]["auroc_threshold"]
    return float(np.mean([v >= threshold for v in values])) if values else None


@METRICS.metric("libre_white_box_attacks_run", "how many of the ten white-box attacks ran")
def attacks_run(tables):
    return sum(_libre(tables, a) is not None for a in WHITE_BOX)


@METRICS.metric("top1_dnn", "clean test accuracy (%) of the pre-trained DNN")
def top1_dnn(tables):
    return _top1(tables, "dnn")


@METRICS.metric("top1_libre", "clean test accuracy (%) of LiBRe (members' mean prediction)")
def top1_libre(tables):
    return _top1(tables, "libre")


@METRICS.metric("libre_clean_acc_drop", "DNN accuracy minus LiBRe accuracy (points)")
def clean_drop(tables):
    dnn, libre = _top1(tables, "dnn"), _top1(tables, "libre")
    return None if dnn is None or libre is None else dnn - libre


@METRICS.metric("no_hinge_auroc_pgd", "PGD AUROC of LiBRe without the noise hinge (ablation)")
def no_hinge_pgd(tables):
    return auroc_of(tables["detection"], "no_hinge", "feature_var", "pgd")


@METRICS.metric("libre_minus_no_hinge_auroc_pgd", "LiBRe's PGD AUROC minus the ablation's")
def hinge_gain(tables):
    a, b = _libre(tables, "pgd"), no_hinge_pgd(tables)
    return None if a is None or b is None else a - b


@METRICS.metric(
    "mc_dropout_softmax_var_auroc_iterative",
    "mean AUROC of MC dropout's softmax variance over the iterative attacks run",
)
def mc_softmax_iterative(tables):
    values = [auroc_of(tables["detection"], "mc_dropout", "softmax_var", a) for a in ITERATIVE]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


@METRICS.metric("libre_over_dnn_time", "LiBRe's inference time / the DNN's, same batch", timed=True)
def libre_cost(tables):
    return tables["cost"].get("libre_over_dnn")


@METRICS.metric("mc_dropout_over_dnn_time", "MC dropout's inference time / the DNN's", timed=True)
def mc_cost(tables):
    return tables["cost"].get("mc_dropout_over_dnn")
