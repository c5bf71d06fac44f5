"""Shared by the core tests: the prepared digits splits (made once per session) and a
small model trained on them."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch

from reprise import data
from reprise.resume import Resume


@functools.cache
def digits_root() -> str:
    root = tempfile.mkdtemp(prefix="reprise-test-digits-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    for split in data.splits("digits"):
        data.prepare("digits", root, split)
    return root


def digits(split: str):
    return data.load("digits", split, digits_root())


@functools.cache
def _trained_state():
    from reprise.models import build_model
    from reprise.training import Standard, TrainConfig, fit

    torch.manual_seed(0)
    model = build_model("small_cnn", 10, width=0.5, in_channels=1)
    cfg = TrainConfig.from_config(
        {
            "epochs": 4,
            "batch_size": 32,
            "lr": 0.05,
            "schedule": {"kind": "cosine"},
            "monitor": {"train_size": 0},
        }
    )
    with tempfile.TemporaryDirectory() as d:
        fit(model, Standard(), digits("train"), cfg, resume=Resume(Path(d)))
    return {k: v.clone() for k, v in model.state_dict().items()}


def trained_small_cnn():
    """A small CNN trained for a few epochs on digits (~95% test accuracy); a fresh copy."""
    from reprise.models import build_model

    model = build_model("small_cnn", 10, width=0.5, in_channels=1)
    model.load_state_dict(_trained_state())
    return model.eval()
