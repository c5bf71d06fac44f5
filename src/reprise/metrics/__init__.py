"""Evaluation: clean/robust accuracy of a model, and the score metrics papers report."""

from reprise.metrics.accuracy import accuracy, predict
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
