"""The b3d metrics, declared once (torch-free). Each takes the joined table (evaluate.joined):
one row per (dataset, model, method)."""

from __future__ import annotations

from reprise.metric_table import MetricTable
from reprise.papers.b3d import evaluate as ev

METRICS = MetricTable()
METHODS = ("nc", "b3d", "b3d_ss")
PAPER_DATASETS = ("cifar10", "gtsrb")


def _score(df, method, key, dataset=None):
    part = df[df["method"] == method]
    if dataset is not None:
        part = part[part["dataset"] == dataset]
    return ev.scores(part)[key] if len(part) else None


def _declare(key, what, fn):
    METRICS.metric(key, what)(fn)


for _m in METHODS:
    _name = ev.METHOD_NAMES[_m]
    _declare(
        f"auroc_{_m}",
        f"{_name}: detection AUROC over the whole population (anomaly index as score)",
        lambda df, m=_m: _score(df, m, "auroc"),
    )
    _declare(
        f"accuracy_{_m}",
        f"{_name}: detection accuracy over the population (flag at anomaly index > 2)",
        lambda df, m=_m: _score(df, m, "accuracy"),
    )
    _declare(
        f"tpr_{_m}",
        f"{_name}: fraction of backdoored models flagged",
        lambda df, m=_m: _score(df, m, "tpr"),
    )
    _declare(
        f"fpr_{_m}",
        f"{_name}: fraction of clean models flagged",
        lambda df, m=_m: _score(df, m, "fpr"),
    )
    for _d in PAPER_DATASETS:
        _declare(
            f"accuracy_{_m}_{_d}",
            f"{_name}: detection accuracy on the {_d} population",
            lambda df, m=_m, d=_d: _score(df, m, "accuracy", d),
        )


@METRICS.metric("auroc_gap_nc_b3d", "AUROC of Neural Cleanse minus AUROC of B3D (same models)")
def auroc_gap_nc_b3d(df):
    nc, b3d = _score(df, "nc", "auroc"), _score(df, "b3d", "auroc")
    return None if nc is None or b3d is None else nc - b3d


@METRICS.metric(
    "mitigation_asr_drop",
    "B3D-flagged backdoored models: attack success rate "
    "before minus after repairing inputs with the reversed trigger",
)
def mitigation_asr_drop(df):
    m = ev.mitigation(df, "b3d")
    return None if m["asr_before"] is None else m["asr_before"] - m["asr_after"]


@METRICS.metric(
    "mitigation_clean_drop", "B3D-flagged models: clean accuracy before minus after the repair"
)
def mitigation_clean_drop(df):
    m = ev.mitigation(df, "b3d")
    return None if m["clean_before"] is None else m["clean_before"] - m["clean_after"]


def _population(df, dataset, attack, column, size=None):
    """Mean of a population column over one dataset's models of one kind (one row per model:
    the b3d rows of the joined table carry each model once)."""
    part = df[(df["method"] == "b3d") & (df["dataset"] == dataset) & (df["attack"] == attack)]
    if size is not None:
        part = part[part["trigger_size"] == size]
    return float(part[column].mean()) if len(part) else None


for _d in PAPER_DATASETS:
    _declare(
        f"clean_acc_clean_models_{_d}",
        f"mean clean test accuracy of the clean {_d} models",
        lambda df, d=_d: _population(df, d, "clean", "clean_acc"),
    )
    _declare(
        f"asr_patch_models_{_d}",
        f"mean attack success rate of the patch-backdoored {_d} models",
        lambda df, d=_d: _population(df, d, "patch", "asr"),
    )
for _s in (1, 2, 3):
    for _m in ("nc", "b3d"):
        _declare(
            f"norm_target_{_m}_patch{_s}_cifar10",
            f"{ev.METHOD_NAMES[_m]}: mean L1 norm of the reversed mask of the target class, "
            f"CIFAR-10 models with a {_s}x{_s} patch",
            lambda df, m=_m, s=_s: _norm_target(df, m, s),
        )


def _norm_target(df, method, size):
    part = df[(df["method"] == method) & (df["dataset"] == "cifar10")]
    part = part[(part["attack"] == "patch") & (part["trigger_size"] == size)]
    return float(part["norm_target"].mean()) if len(part) else None
