"""The claims report: each paper's number beside ours, with a verdict.

A claim reads one metric from results/<scale>/<paper>/metrics.json and judges it with the
criterion for the current scale. A claim that does not hold is a verdict, never an error.
"""

from __future__ import annotations

import json
import math
import os
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


def validated_config(raw: dict, project_dir: str | Path = ".") -> Config:
    """The workflow config, every implemented paper's config, and their claims, validated."""
    cfg = config.resolve(raw, papers.available(), project_dir)
    check_claims(cfg)
    return cfg


def check_claims(cfg: Config) -> None:
    """Every claim of every implemented paper reads a metric that the paper declares."""
    for slug, paper_cfg in cfg.papers.items():
        metrics = papers.declared_metrics(slug)
        for claim in paper_cfg["claims"]:
            if claim["metric"] not in metrics:
                raise ConfigError(
                    f"config/papers/{slug}.yaml: claim {claim['id']!r} reads metric "
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


def _fmt(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def summary(df) -> str:
    """Verdict counts, sanity checks left out."""
    counts = df.loc[df["kind"] != "sanity", "verdict"].value_counts()
    return ", ".join(f"{counts.get(v, 0)} {v}" for v in (REPRODUCED, NOT_REPRODUCED, NOT_RUN))


def to_markdown(df, scale: str, figures: dict[str, list[str]], report_dir: Path) -> str:
    """REPORT.md: one row a claim, then each paper's figures (links relative to the report)."""
    counted = int((df["kind"] != "sanity").sum())
    lines = [f"# reprise claims report — scale `{scale}`", "", f"{counted} claims: {summary(df)}."]
    for kind, title in KINDS.items():
        rows = df[df["kind"] == kind]
        if kind != "paper" and not len(rows):
            continue
        lines += [
            *([] if kind == "paper" else ["", f"## {title}"]),
            "",
            "| paper | claim | metric | paper value | source | criterion | reproduced | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rows.itertuples():
            verdict = r.verdict + (f" ({r.note})" if r.note else "")
            lines.append(
                f"| {r.paper} | **{r.claim_id}**: {r.claim} | `{r.metric}` "
                f"| {_fmt(r.paper_value)} | {r.source} | {r.criterion} "
                f"| {_fmt(r.reproduced_value)} | {verdict} |"
            )
    for paper, paths in figures.items():
        pngs = [Path(p) for p in paths if str(p).endswith(".png")]
        if not pngs:
            continue
        lines += ["", f"## {paper} figures", ""]
        for p in pngs:
            rel = os.path.relpath(p.resolve(), report_dir.resolve())
            lines.append(f"- [{p.stem}]({Path(rel).as_posix()})")
    return "\n".join(lines) + "\n"


def to_terminal(df) -> str:
    width = {"paper": 12, "claim_id": 28, "paper_value": 10, "reproduced_value": 11, "verdict": 15}
    head = "  ".join(
        h.ljust(w)
        for h, w in zip(
            ["paper", "claim", "paper", "reproduced", "verdict"], width.values(), strict=True
        )
    )
    lines = [head, "-" * len(head)]
    for r in df.itertuples():
        cells = [
            r.paper,
            r.claim_id + {"ground_truth": " [sim]", "sanity": " [sanity]"}.get(r.kind, ""),
            _fmt(r.paper_value),
            _fmt(r.reproduced_value),
            r.verdict + (f" ({r.note})" if r.note else ""),
        ]
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(cells, width.values(), strict=True)))
    lines.append(f"\n{int((df['kind'] != 'sanity').sum())} claims: {summary(df)}")
    return "\n".join(lines)
