"""Evaluation: clean/robust accuracy of a model, and the score metrics papers report.

The score metrics are numpy-only; `accuracy` and `predict` load torch when first used, so a
step that only scores tables (evaluate, figures) starts without torch."""

from reprise.metrics.scores import (
    accuracy_vs_rejection,
    confidence_histogram,
    roc_auc,
    threshold_at_tpr,
    tpr_at_fpr,
)

__all__ = [
    "accuracy",
    "accuracy_vs_rejection",
    "confidence_histogram",
    "predict",
    "roc_auc",
    "threshold_at_tpr",
    "tpr_at_fpr",
]


def __getattr__(name):
    if name in ("accuracy", "predict"):
        from reprise.metrics import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
