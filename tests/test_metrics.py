"""Score metrics against hand-computed values, and accuracy over a dataset."""

import math

import numpy as np
import pytest
import torch

from reprise.data.prepared import ImageData
from reprise.metrics import (
    accuracy,
    accuracy_vs_rejection,
    confidence_histogram,
    predict,
    roc_auc,
    threshold_at_tpr,
    tpr_at_fpr,
)
from reprise.models import build_model

SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
POS = [1, 1, 0, 1, 0, 1, 0, 0]


def test_roc_auc():
    # positives outrank negatives in 13 of the 16 pairs
    assert roc_auc(SCORES, POS) == pytest.approx(13 / 16)
    assert roc_auc([1, 2], [1, 0]) == 0.0
    assert math.isnan(roc_auc([1, 2], [1, 1]))
    assert roc_auc([0.5, 0.5, 0.1], [1, 0, 0]) == pytest.approx(0.75)  # a tie counts one half


def test_roc_auc_agrees_with_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    s = rng.integers(0, 20, 500).astype(float)  # many ties
    p = rng.random(500) < 0.3 + 0.02 * s
    assert roc_auc(s, p) == pytest.approx(roc_auc_score(p, s), abs=1e-12)


def test_tpr_at_fpr():
    assert tpr_at_fpr(SCORES, POS, 0.0) == pytest.approx(0.5)  # above 0.7: two of four
    assert tpr_at_fpr(SCORES, POS, 0.25) == pytest.approx(0.75)
    assert tpr_at_fpr(SCORES, POS, 0.5) == pytest.approx(1.0)


def test_threshold_at_tpr():
    assert threshold_at_tpr(SCORES, POS, 0.75) == 0.6  # accepts 0.9, 0.8, 0.6
    assert threshold_at_tpr(SCORES, POS, 1.0) == 0.4
    s, p = np.random.default_rng(0).random(1000), np.ones(1000, bool)
    t = threshold_at_tpr(s, p, 0.95)
    assert (s >= t).mean() >= 0.95 and (s > t).mean() < 0.95


def test_accuracy_vs_rejection():
    table = accuracy_vs_rejection(SCORES, POS, rates=[0.0, 0.25, 0.5, 1.0])
    assert table["accepted"].tolist() == [8, 6, 4, 0]
    assert table["accuracy"].tolist()[:3] == pytest.approx([0.5, 4 / 6, 0.75])
    assert math.isnan(table["accuracy"].iloc[3])


def test_confidence_histogram():
    conf = [0.05, 0.15, 0.95, 1.0, 0.5]
    groups = ["wrong", "wrong", "correct", "correct", "correct"]
    h = confidence_histogram(conf, groups, bins=10)
    assert len(h) == 20 and h["count"].sum() == 5
    correct = h[h.group == "correct"].set_index("bin_left")
    assert correct.loc[0.9, "count"] == 2 and correct["fraction"].sum() == pytest.approx(1)


def test_accuracy_and_predict_are_batched_consistently():
    torch.manual_seed(0)
    model = build_model("small_cnn", 3, width=0.25, in_channels=1)
    x = torch.rand(50, 1, 8, 8)
    logits = predict(model, x, batch_size=7)
    assert torch.allclose(logits, predict(model, x, batch_size=50), atol=1e-6)
    data = ImageData(x, logits.argmax(1), ["a", "b", "c"])
    assert accuracy(model, data, batch_size=9) == 1.0
    assert math.isnan(accuracy(model, data.subset(0)))
