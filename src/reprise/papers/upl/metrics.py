"""The metrics the evaluate step writes to metrics.json (claims may name only these).

`results`: {"configs": summary.configurations, "correlations": summary.correlations,
"gap": summary.latency_vs_compute_gap, "tradeoff": summary.best_tradeoff}.

UPL is simulated from each chunk's measured compute, so every metric that reads it (all but
the counts and the cut-off rates) is declared timed: two identical runs differ in them by
the compute's jitter."""

from __future__ import annotations

from reprise.metric_table import MetricTable
from reprise.papers.upl.summary import FACTORS, JOINT

METRICS = MetricTable()


def _factor(f: str, label: str) -> None:
    keys = {
        f"upl_pearson_{f}": f"Pearson r of mean UPL with {label} across the configurations",
        f"upl_pearson_{f}_ci_low": "lower end of its 95% bootstrap interval",
        f"upl_pearson_{f}_ci_high": "upper end of its 95% bootstrap interval",
        f"upl_spearman_{f}": f"Spearman r of mean UPL with {label}",
    }

    @METRICS.group(keys, timed=tuple(keys))
    def row(results):
        c = results["correlations"].set_index("factor").loc[f]
        values = (c["pearson"], c["pearson_low"], c["pearson_high"], c["spearman"])
        return dict(zip(keys, values, strict=True))


for _f, _label in FACTORS.items():
    _factor(_f, _label)


@METRICS.group(
    {
        "latency_minus_compute_abs_r": "the weaker |Pearson r| of UPL with emission delay and "
        "with endpoint latency minus the strongest |r| with parameters, chunk size, FLOPs or RTF",
        "latency_minus_compute_abs_r_ci_low": "lower end of its 95% paired bootstrap interval "
        "(configurations resampled)",
        "latency_minus_compute_abs_r_ci_high": "upper end of that interval",
    },
    timed=(
        "latency_minus_compute_abs_r",
        "latency_minus_compute_abs_r_ci_low",
        "latency_minus_compute_abs_r_ci_high",
    ),
)
def gap(results):
    g = results["gap"]
    return {
        "latency_minus_compute_abs_r": g["gap"],
        "latency_minus_compute_abs_r_ci_low": g["low"],
        "latency_minus_compute_abs_r_ci_high": g["high"],
    }


@METRICS.group(
    {
        "best_tradeoff_is_joint_ar": "1 if the lowest P90 UPL among configurations within the "
        "WER margin of the best WER is a joint-endpointer Ar-RNNT one, else 0",
        "joint_ar_upl_p90_advantage": "best other eligible P90 UPL minus best eligible "
        "joint-endpointer Ar-RNNT P90 UPL (s; null: none of them within the WER margin)",
        "tradeoff_eligible_configs": "configurations within the WER margin",
    },
    timed=("best_tradeoff_is_joint_ar", "joint_ar_upl_p90_advantage"),
)
def tradeoff(results):
    t = results["tradeoff"]
    return {
        "best_tradeoff_is_joint_ar": float(t["joint_ar"]),
        "joint_ar_upl_p90_advantage": t["advantage"],
        "tradeoff_eligible_configs": t["eligible"],
    }


@METRICS.group(
    {
        "joint_upl_p90_min": "lowest P90 UPL of a joint-endpointer configuration (s)",
        "vad_upl_p90_min": "lowest P90 UPL of a trailing-silence configuration (s)",
        "joint_early_cutoff_rate_max": "highest early cut-off rate of a joint configuration",
        "vad_early_cutoff_rate_max": "highest early cut-off rate of a trailing-silence one",
        "configurations": "configurations in the grid (runs x endpointers)",
    },
    timed=("joint_upl_p90_min", "vad_upl_p90_min"),
)
def endpointers(results):
    c = results["configs"]
    joint, vad = c[c["endpointer"] == JOINT], c[c["endpointer"] != JOINT]
    return {
        "joint_upl_p90_min": joint["upl_p90"].min(),
        "vad_upl_p90_min": vad["upl_p90"].min(),
        "joint_early_cutoff_rate_max": joint["early_cutoff_rate"].max(),
        "vad_early_cutoff_rate_max": vad["early_cutoff_rate"].max(),
        "configurations": len(c),
    }
