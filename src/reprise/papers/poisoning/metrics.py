"""The metrics the evaluate step writes to metrics.json (claims may name only these).

Each group reads `results`: {"online": summarize(the default online table), "federated": the
same, "detection": {detector: AUC}} (reprise.papers.poisoning.summary); a setting that was
not run gives None."""

from __future__ import annotations

from reprise.metric_table import MetricTable

METRICS = MetricTable()

SUMMARY = {
    "steps": "length of the accumulative phase (steps or rounds)",
    "start_acc": "test accuracy of the burn-in model",
    "acc_before": "test accuracy at the end of the accumulative phase, before the trigger",
    "acc_after": "test accuracy one trigger update after the accumulative phase",
    "clean_acc_end": "test accuracy of the clean stream after as many steps as the phase",
    "accum_gap": "clean stream minus accumulative phase test accuracy at the phase's end",
    "drop": "the trigger's one-step test accuracy drop after the accumulative phase",
    "alone_drop": "the poisoned trigger's one-step drop on the burn-in model (no phase)",
    "clean_trigger_drop": "the trigger's one-step drop after a clean phase of the same length",
    "margin": "drop after the accumulative phase minus the trigger-alone drop",
}
DETECTORS = ("kd", "lid", "gda", "gmm")


def _setting(setting: str) -> None:
    @METRICS.group({f"{setting}_{k}": f"{setting}: {text}" for k, text in SUMMARY.items()})
    def summary(results):
        values = results.get(setting) or {}
        return {f"{setting}_{k}": values.get(k) for k in SUMMARY}


for _s in ("online", "federated"):
    _setting(_s)


@METRICS.group(
    {
        f"detection_auc_{d}": f"ROC-AUC of {d.upper()} telling clean from accumulative-phase "
        "images (0.5: indistinguishable)"
        for d in DETECTORS
    }
)
def detection(results):
    return {f"detection_auc_{d}": results["detection"].get(d) for d in DETECTORS}
