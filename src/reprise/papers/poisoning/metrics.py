"""The metrics the evaluate step writes to metrics.json (claims may name only these).

Each reads `results`: {"online": summarize(default online table), "federated": the same,
"detection": {detector: AUC}} (reprise.papers.poisoning.summary)."""

from __future__ import annotations

from reprise.claims import MetricTable

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


def _register(setting: str, key: str, text: str) -> None:
    def metric(results):
        return results[setting][key]

    METRICS.metric(f"{setting}_{key}", f"{setting}: {text}")(metric)


for _setting in ("online", "federated"):
    for _key, _text in SUMMARY.items():
        _register(_setting, _key, _text)

for _detector in ("kd", "lid", "gda", "gmm"):

    def _auc(results, name=_detector):
        return results["detection"][name]

    METRICS.metric(
        f"detection_auc_{_detector}",
        f"ROC-AUC of {_detector.upper()} telling clean from accumulative-phase images "
        "(0.5: indistinguishable)",
    )(_auc)
