"""The claims report: each paper's number beside ours, with a verdict.

A claim reads one metric from results/<scale>/<paper>/metrics.json and judges it with the
criterion for the current scale. A claim that does not hold is a verdict, never an error.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from reprise import config, papers
from reprise.config import Config
from reprise.errors import ConfigError

REPRODUCED, NOT_REPRODUCED, NOT_RUN = "reproduced", "not reproduced", "not run"
# A claim's `kind` (config, default "paper"): what its verdict speaks for. "ground_truth": the
# analysis recovers what a simulator built in (a test of the analysis, not of the paper's
# physics); "sanity": holds by construction, shown but not counted among the verdicts.
KINDS = {
    "paper": "The papers' claims",
    "ground_truth": "Analysis recovers the simulated ground truth",
    "sanity": "Sanity checks (hold by construction; not counted among the verdicts)",
}
COLUMNS = [
    "paper",
    "kind",
    "claim_id",
    "claim",
    "metric",
    "paper_value",
    "source",
    "criterion",
    "reproduced_value",
    "verdict",
    "note",
]


def validated_config(
    raw: dict, project_dir: str | Path = ".", origins: dict[str, str] | None = None
) -> Config:
    """The workflow config, every implemented paper's config, and their claims, validated
    (`origins`: where each paper's overrides came from, see `config.override_origins`)."""
    cfg = config.resolve(raw, papers.available(), project_dir, origins)
    check_claims(cfg)
    return cfg


def check_claims(cfg: Config) -> None:
    """Every claim of every implemented paper reads a metric that the paper declares."""
    for slug, paper_cfg in cfg.papers.items():
        metrics = papers.declared_metrics(slug)
        for claim in paper_cfg["claims"]:
            if claim["metric"] not in metrics:
                where = f"{cfg.main['paper_config_dir']}/{slug}.yaml"
                raise ConfigError(
                    f"{where}: claim {claim['id']!r} reads metric "
                    f"{claim['metric']!r}, which no step of {slug} writes; metrics written: "
                    + ", ".join(sorted(metrics))
                )


def metrics_path(results_root: str | Path, scale: str, paper: str) -> Path:
    return Path(results_root) / scale / paper / "metrics.json"


def describe(criterion: dict, paper_value: float | None) -> str:
    parts = []
    if "min" in criterion:
        parts.append(f">= {criterion['min']:g}")
    if "max" in criterion:
        parts.append(f"<= {criterion['max']:g}")
    if "tolerance" in criterion:
        target = criterion.get("target", paper_value)
        parts.append(f"{target:g} ± {criterion['tolerance']:g}" if target is not None else "?")
    return " and ".join(parts)


def judge(
    value: float | None, criterion: dict | None, paper_value: float | None
) -> tuple[str, str]:
    """(verdict, note) for one reproduced value."""
    if criterion is None:
        return NOT_RUN, "no criterion at this scale"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_RUN, "metric not produced"
    ok = True
    if "min" in criterion:
        ok &= value >= criterion["min"]
    if "max" in criterion:
        ok &= value <= criterion["max"]
    if "tolerance" in criterion:
        target = criterion.get("target", paper_value)
        if target is None:
            return NOT_RUN, "tolerance criterion needs a target or the paper's value"
        ok &= abs(value - target) <= criterion["tolerance"]
    return (REPRODUCED if ok else NOT_REPRODUCED), ""


def read_metrics(path: Path) -> dict | None:
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def claims_table(cfg: Config, results_root: str | Path = "results", scale: str | None = None):
    import pandas as pd

    scale = scale or cfg.scale
    rows = []
    for paper in cfg.enabled:
        metrics = read_metrics(metrics_path(results_root, scale, paper))
        for c in cfg.paper(paper)["claims"]:
            criterion = c["criteria"].get(scale)
            value = None if metrics is None else metrics.get(c["metric"])
            verdict, note = judge(value, criterion, c["paper_value"])
            if metrics is None:
                note = "paper not run at this scale"
            rows.append(
                {
                    "paper": paper,
                    "kind": c.get("kind", "paper"),
                    "claim_id": c["id"],
                    "claim": c["claim"],
                    "metric": c["metric"],
                    "paper_value": c["paper_value"],
                    "source": c["source"],
                    "criterion": describe(criterion, c["paper_value"]) if criterion else "",
                    "reproduced_value": None if value is None else float(value),
                    "verdict": verdict,
                    "note": note,
                }
            )
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.astype({"paper_value": "float64", "reproduced_value": "float64"})
