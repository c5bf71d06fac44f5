"""Tiny configurations of a real paper (memorization) for the tests of the machinery: the
CLI, resumable steps, Snakemake re-runs, DVC and SLURM. The foundation has no toy paper."""

import copy
import json
from pathlib import Path

from reprise.yamlconf import deep_merge, load_yaml
from tests.conftest import ROOT

PAPER = "memorization"
TRAIN_RULE = "memorization_train_labels"

# Every memorization job at a few seconds (smoke config merged under it).
TINY = {
    "random_labels": {
        "seeds": [0, 1],  # PGD-AT's complexity models at two seeds
        "train_size": 32,
        "train": {"epochs": 2, "batch_size": 16, "monitor": {"test_size": 16}},
        "attack": {"steps": 1},
        "monitor_attack": {"steps": 1},
    },
    "complexity": {"samples": 16, "draws": 1, "search_steps": 2, "attack": {"steps": 1}},
    "te": {
        "train_size": 32,
        "train": {
            "epochs": 3,
            "batch_size": 16,
            "schedule": {"milestones": [2]},
            "monitor": {"test_size": 16},
        },
        "attack": {"steps": 1},
        "monitor_attack": {"steps": 1},
        "evaluation": {"test_size": 16, "pgd20": {"steps": 2}, "cw20": {"steps": 2}},
    },
}

# TINY with one method of each experiment: the fewest jobs of a whole-paper DAG.
SMALLEST = deep_merge(
    TINY, {"random_labels": {"methods": ["pgd_at"], "seeds": [0]}, "te": {"runs": ["pgd_at"]}}
)


def tiny_config(project: Path, overrides: dict = SMALLEST, **extra) -> None:
    """The project copy's config/config.yaml with only memorization, at `overrides`."""
    path = project / "config/config.yaml"
    cfg = load_yaml(path)
    cfg.update(papers=[PAPER], overrides={PAPER: {"smoke": overrides}}, **extra)
    path.write_text(json.dumps(cfg))  # JSON is YAML, and keeps the numbers' types


def train_params(epochs: int, size: int | None = None, lr: float = 0.1) -> dict:
    """--params of one train_labels job (PGD-AT, true digits labels); `size` upsamples the
    8×8 digits to make epochs slower."""
    section = load_yaml(ROOT / f"config/papers/{PAPER}.yaml")["smoke"]["random_labels"]
    section = deep_merge(
        copy.deepcopy(section),
        {
            **TINY["random_labels"],
            "methods": ["pgd_at"],
            "labels": ["true"],
            "seeds": [0],
            "train": {**TINY["random_labels"]["train"], "epochs": epochs, "lr": lr},
        },
    )
    return {"random_labels": section, "data": {"size": size}}


def train_args(out: Path, split_dir: Path, epochs: int, size: int | None = None) -> list[str]:
    """`reprise memorization train_labels ...` writing model.pt and history.parquet to `out`."""
    return [
        *(PAPER, "train_labels", "--params", json.dumps(train_params(epochs, size))),
        *("--input", f"train={split_dir}/train.pt", "--input", f"test={split_dir}/test.pt"),
        *("--output", f"model={out}/model.pt", "--output", f"history={out}/history.parquet"),
    ]
