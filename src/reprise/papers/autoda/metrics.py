"""AutoDA's metrics, declared once (torch-free). The evaluate step passes the search results
({"pruned": state, "random": state}), the attack curves (one table, all models and methods)
and the evaluation section."""

from __future__ import annotations

import math

from reprise.metric_table import MetricTable

METRICS = MetricTable()


PRUNING = {
    "programs_generated": "programs the pruned search generated",
    "frac_fail_inputs": "fraction of generated programs failing the inputs check",
    "frac_fail_distance": "fraction of generated programs failing the distance test",
    "frac_pass_checks": "fraction passing both cheap checks (reaching the model)",
    "frac_rejected_cheap": "fraction rejected before any model query (stages 1 and 2)",
    "frac_fail_short": "fraction failing the short attack on the binary model",
    "frac_pass_short": "fraction passing the short attack (candidates for the re-run)",
}


@METRICS.group(PRUNING)
def pruning(searches, curves, evaluation):
    c = searches["pruned"]["counts"]
    n = c["generated"]
    if not n:
        return dict.fromkeys(PRUNING, None)
    passed = n - c["inputs"] - c["distance"]
    return {
        "programs_generated": n,
        "frac_fail_inputs": c["inputs"] / n,
        "frac_fail_distance": c["distance"] / n,
        "frac_pass_checks": passed / n,
        "frac_rejected_cheap": (c["inputs"] + c["distance"]) / n,
        "frac_fail_short": c["short"] / n,
        "frac_pass_short": c["passed"] / n,
    }


@METRICS.group(
    {
        "search_best_ratio": "pruned search: best final/initial L2 ratio of the long re-run",
        "random_best_ratio": "random search (no pruning): best ratio within the same queries",
        "found_vs_random": "best ratio of the pruned search over that of random search",
    }
)
def search_vs_random(searches, curves, evaluation):
    pruned, random = searches["pruned"], searches["random"]
    # random search's best after its last round within the pruned search's queries
    within = [h["best_ratio"] for h in random["history"] if h["queries"] <= pruned["queries"]]
    a, b = _finite(pruned["best"]["long"]), _finite(within[-1] if within else None)
    if a is None:
        return {"search_best_ratio": None, "random_best_ratio": b, "found_vs_random": None}
    # random search found nothing: every program it ran was worse than no attack (ratio 1)
    ref = b if b is not None else 1.0
    return {"search_best_ratio": a, "random_best_ratio": b, "found_vs_random": a / ref}


def _finite(x):
    """A ratio, or None where none was found (inf, saved as null in JSON)."""
    return x if x is not None and math.isfinite(x) else None


def _median(curves, model, method, queries):
    rows = curves[(curves.model == model) & (curves.method == method) & (curves.queries == queries)]
    return float(rows.median_l2.iloc[0]) if len(rows) else math.nan


def _ratio(curves, model, method, base, queries):
    a, b = _median(curves, model, method, queries), _median(curves, model, base, queries)
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else None


@METRICS.group(
    {
        "found_vs_hsja_normal": "found program / HopSkipJump median L2, normal model, claim budget",
        "found_vs_hsja_robust": "found program / HopSkipJump median L2, PGD-AT model, claim budget",
        "autoda1st_vs_hsja_normal": "AutoDA 1st / HSJA median L2, normal model, claim budget",
        "autoda1st_vs_hsja_robust": "AutoDA 1st / HSJA median L2, PGD-AT model, claim budget",
        "found_median_l2_normal": "found program: median L2 on the normal model, claim budget",
        "hsja_median_l2_normal": "HopSkipJump: median L2 on the normal model, claim budget",
    }
)
def against_hsja(searches, curves, evaluation):
    q = evaluation["claim_queries"]
    out = {}
    for model, tag in (("normal", "normal"), ("pgd_at", "robust")):
        out[f"found_vs_hsja_{tag}"] = _ratio(curves, model, "autoda_found", "hsja", q)
        out[f"autoda1st_vs_hsja_{tag}"] = _ratio(curves, model, "autoda_1st", "hsja", q)
    for method, key in (("autoda_found", "found"), ("hsja", "hsja")):
        v = _median(curves, "normal", method, q)
        out[f"{key}_median_l2_normal"] = v if math.isfinite(v) else None
    return out
