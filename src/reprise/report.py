"""What a reader sees: REPORT.md (a summary table first, then one section per paper) and the
claims table in the terminal. The verdicts themselves come from reprise.claims."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from reprise.claims import KINDS, NOT_REPRODUCED, NOT_RUN, REPRODUCED
from reprise.config import Config

VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_RUN)
MARK = {REPRODUCED: "✅", NOT_REPRODUCED: "❌", NOT_RUN: "⏸"}
COLOUR = {REPRODUCED: "32", NOT_REPRODUCED: "31", NOT_RUN: "33"}  # ANSI green, red, yellow
DONE = re.compile(r" done in ([0-9.]+) s( \(cpu [0-9.]+ s\))?$")


def _fmt(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _verdict(r) -> str:
    return r.verdict + (f" ({r.note})" if r.note else "")


def step_seconds(results_root: str | Path, scale: str, paper: str) -> float | None:
    """The compute time of a paper's last run: the sum of its steps' "done in" times (the
    steps of one paper run partly in parallel, so this is at least its wall time's share)."""
    logs = Path(results_root) / scale / paper / "logs"
    total, found = 0.0, False
    for log in sorted(logs.glob("*.log")) if logs.is_dir() else []:
        for line in log.read_text(errors="replace").splitlines()[-5:]:
            if m := DONE.search(line):
                total, found = total + float(m.group(1)), True
    return total if found else None


def counts(df) -> dict[str, int]:
    """Verdicts per kind, sanity checks (true by construction) left out."""
    c = df.loc[df["kind"] != "sanity", "verdict"].value_counts()
    return {v: int(c.get(v, 0)) for v in VERDICTS}


def _anchor(paper: str) -> str:
    return f"#{paper}"


def to_markdown(
    df,
    cfg: Config,
    figures: dict[str, list[str]],
    report_dir: Path,
    seconds: dict[str, float | None] | None = None,
) -> str:
    """REPORT.md: the summary table, then per paper its claims, its figures (embedded) and the
    map from the paper's figures and tables to ours."""
    seconds = seconds or {}
    total = counts(df)
    lines = [
        f"# reprise claims report — scale `{cfg.scale}`",
        "",
        "| paper | " + " | ".join(VERDICTS) + " | compute (s) |",
        "|---|---|---|---|---|",
    ]
    for paper in cfg.enabled:
        c = counts(df[df["paper"] == paper])
        secs = seconds.get(paper)
        lines.append(
            f"| [{paper}]({_anchor(paper)}) | "
            + " | ".join(str(c[v]) for v in VERDICTS)
            + f" | {'—' if secs is None else f'{secs:.0f}'} |"
        )
    lines.append("| **all** | " + " | ".join(f"**{total[v]}**" for v in VERDICTS) + " | |")
    lines += [
        "",
        "A claim is judged by its criterion at this scale (smoke: the direction and rough size "
        "of the paper's effect on stand-in data; paper: the paper's number where one is known). "
        "Compute is the sum of the paper's step times in its last run.",
    ]
    for paper in cfg.enabled:
        lines += _paper_section(
            paper, cfg, df[df["paper"] == paper], figures.get(paper, []), report_dir
        )
    return "\n".join(lines) + "\n"


def _paper_section(paper: str, cfg: Config, df, paths: list[str], report_dir: Path) -> list[str]:
    pcfg = cfg.paper(paper)
    lines = ["", f"## {paper}", "", f"*{pcfg['title']}*", ""]
    if setting := pcfg.get(cfg.scale, {}).get("setting"):
        lines += [f"Setting ({cfg.scale}): {setting}", ""]
    for kind, title in KINDS.items():
        rows = df[df["kind"] == kind]
        if not len(rows):
            continue
        if kind != "paper":
            lines += ["", f"### {title}", ""]
        lines += ["| claim | paper | ours | criterion | verdict |", "|---|---|---|---|---|"]
        for r in rows.itertuples():
            lines.append(
                f"| `{r.claim_id}` | {_fmt(r.paper_value)} | {_fmt(r.reproduced_value)} "
                f"| {r.criterion or '—'} | {MARK[r.verdict]} {_verdict(r)} |"
            )
    lines += ["", "<details><summary>The claims in full</summary>", ""]
    for r in df.itertuples():
        lines.append(f"- **{r.claim_id}**: {r.claim} (`{r.metric}`; {r.source})")
    lines += ["", "</details>"]
    captions = pcfg.get("figures", {})
    pngs = [Path(p) for p in paths if str(p).endswith(".png")]
    if pngs:
        lines += ["", "### Figures", ""]
    for p in pngs:
        rel = Path(os.path.relpath(p.resolve(), report_dir.resolve())).as_posix()
        info = captions.get(p.stem, {})
        regenerates = f" (regenerates the paper's {info['paper']})" if info.get("paper") else ""
        lines += [
            f"**{p.stem}**{regenerates}: {info.get('caption', '')}",
            "",
            f"![{p.stem}]({rel})",
            "",
        ]
    mapped = paper_map(pcfg)
    if mapped:
        lines += ["### The paper's figures and tables", "", "| paper | ours |", "|---|---|"]
        lines += [f"| {item} | {ours} |" for item, ours in mapped]
    return lines


def paper_map(pcfg: dict) -> list[tuple[str, str]]:
    """(the paper's Fig./Table, our figures that regenerate it, or why none does)."""
    out: dict[str, list[str]] = {}
    for name, info in pcfg.get("figures", {}).items():
        if info.get("paper"):
            out.setdefault(info["paper"], []).append(f"`{name}`")
    rows = [(item, ", ".join(names)) for item, names in out.items()]
    rows += [(item, f"none: {why}") for item, why in pcfg.get("not_regenerated", {}).items()]
    return sorted(rows, key=lambda r: _numbering(r[0]))


def _numbering(item: str) -> tuple:
    kind, _, num = item.partition(" ")
    digits = re.match(r"\d+", num)
    return (kind, int(digits.group()) if digits else 0, num)


def to_terminal(df, colour: bool = False) -> str:
    """The claims table with columns as wide as their widest cell; verdicts coloured on a
    terminal."""
    head = ["paper", "claim", "paper value", "ours", "verdict"]
    rows = [
        [
            r.paper,
            r.claim_id + {"ground_truth": " [sim]", "sanity": " [sanity]"}.get(r.kind, ""),
            _fmt(r.paper_value),
            _fmt(r.reproduced_value),
            _verdict(r),
        ]
        for r in df.itertuples()
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows, strict=False)]

    def line(cells, verdict=None):
        text = "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        if colour and verdict is not None:
            last = len(text) - len(cells[-1])
            return f"{text[:last]}\033[{COLOUR[verdict]}m{cells[-1]}\033[0m"
        return text

    out = [line(head), "  ".join("-" * w for w in widths)]
    out += [line(cells, r.verdict) for cells, r in zip(rows, df.itertuples(), strict=True)]
    c = counts(df)
    counted = int((df["kind"] != "sanity").sum())
    out.append(f"\n{counted} claims: " + ", ".join(f"{c[v]} {v}" for v in VERDICTS))
    if counted < len(df):
        out.append(f"(and {len(df) - counted} sanity checks, true by construction, not counted)")
    return "\n".join(out)


HTML_COLOUR = {REPRODUCED: "#c8e6c9", NOT_REPRODUCED: "#ffcdd2", NOT_RUN: "#ffe0b2"}


def to_html(df, scale: str) -> str:
    """The claims table as one HTML page, verdicts coloured (the Snakemake report embeds it)."""
    from html import escape

    head = ["paper", "claim", "kind", "sentence", "paper value", "ours", "criterion", "verdict"]
    rows = []
    for r in df.itertuples():
        cells = [r.paper, r.claim_id, r.kind, f"{r.claim} ({r.source})"]
        cells += [_fmt(r.paper_value), _fmt(r.reproduced_value), r.criterion or "—", _verdict(r)]
        tds = "".join(
            f'<td style="background:{HTML_COLOUR[r.verdict]}">{escape(str(c))}</td>'
            if i == 7
            else f"<td>{escape(str(c))}</td>"
            for i, c in enumerate(cells)
        )
        rows.append(f"<tr>{tds}</tr>")
    c = counts(df)
    summary = ", ".join(f"{c[v]} {v}" for v in VERDICTS)
    counted = int((df["kind"] != "sanity").sum())
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>reprise claims</title>"
        "<style>table{border-collapse:collapse;font:13px sans-serif}"
        "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}</style></head><body>"
        f"<h1>reprise claims — scale {escape(scale)}</h1><p>{counted} claims: {summary} "
        "(sanity checks, true by construction, are listed but not counted)</p>"
        "<table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )
