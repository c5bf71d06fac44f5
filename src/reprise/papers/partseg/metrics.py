"""The metrics of partseg, declared once (torch-free): per run, its landmark error, foreground
IoU and NMI/ARI; then the margins the smoke claims compare.

A run's name says its data, K and variant: <data>_k<K>[_<variant>], e.g. faces_k4_scops.
The config may run any subset of RUNS; a metric of a run that did not run is None.
"""

from __future__ import annotations

from reprise.metric_table import MetricTable

# data sets: smoke (procedural) and paper scale
DATA = ("faces", "birds", "celeba", "celeba_wild", "aflw_wild", "cub", "voc_sheep")
VARIANTS = {
    "": "the full model",
    "no_bottleneck": "without the squeeze-expand bottleneck",
    "no_arcface": "without the part classification loss",
    "plain_concentration": "with SCOPS's plain concentration instead of the improved one",
    "scops": "the SCOPS-like baseline",
}
RUNS = tuple(
    "_".join(filter(None, (d, f"k{k}", v))) for d in DATA for k in (4, 8) for v in VARIANTS
)
SCORES = {
    "landmark_error": "landmark regression error on the test split (% of the normaliser)",
    "foreground_iou": "mean foreground IoU of the non-background parts on the test split",
    "nmi": "NMI of the predicted part at each keypoint vs the keypoint's identity",
    "ari": "ARI of the predicted part at each keypoint vs the keypoint's identity",
    "nmi_chance": "the same NMI with the predicted labels shuffled across keypoints",
    "part_nmi": "NMI of the predicted part vs the true part over the object's pixels",
    "part_nmi_chance": "the same part NMI with the predicted labels shuffled",
}
# the smoke claims: the full model (K=4) against each ablation / the baseline
MARGINS = {
    f"{d}_k4_margin_vs_{v}": (f"{d}_k4", f"{d}_k4_{v}")
    for d in ("faces", "birds")
    for v in ("no_bottleneck", "no_arcface", "plain_concentration", "scops")
}


def _describe(run: str) -> str:
    for v, text in VARIANTS.items():
        if v and run.endswith("_" + v):
            return f"{run[: -len(v) - 1]}, {text}"
    return f"{run}, {VARIANTS['']}"


METRICS = MetricTable()


@METRICS.group({f"{r}_{s}": f"{_describe(r)}: {t}" for r in RUNS for s, t in SCORES.items()})
def run_scores(rows: list[dict]) -> dict:
    """Each run's scores from its row ({"run": name, <score>: value}); None where the run
    did not run (or the score does not apply, e.g. IoU without masks)."""
    by_run = {row["run"]: row for row in rows}
    return {f"{r}_{s}": by_run.get(r, {}).get(s) for r in RUNS for s in SCORES}


@METRICS.group(
    {
        k: f"landmark error of {b} minus that of {a} (percentage points; > 0: the full model wins)"
        for k, (a, b) in MARGINS.items()
    }
)
def margins(rows: list[dict]) -> dict:
    errors = {row["run"]: row.get("landmark_error") for row in rows}
    out = {}
    for key, (full, other) in MARGINS.items():
        a, b = errors.get(full), errors.get(other)
        out[key] = None if a is None or b is None else b - a
    return out
