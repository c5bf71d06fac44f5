"""AutoDA's figures (returned, never saved) and the discovered programs as text."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import NullFormatter

from reprise.papers.autoda.program import AUTODA_1ST, Program

# The official search logs (out-14.log, out-27.log): shares of all generated programs.
PAPER_PRUNING = {"inputs check": 0.455, "distance test": 0.545, "pass both": 0.000276}
METHOD_NAMES = {
    "autoda_found": "found program",
    "autoda_1st": "AutoDA 1st",
    "hsja": "HopSkipJump",
    "boundary": "Boundary",
    "sign_opt": "Sign-OPT",
    "evolutionary": "Evolutionary",
}


def search_progress(searches: dict):
    """Best final/initial L2 ratio (long re-run) against programs generated and queries."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for variant, s in searches.items():
        h = pd.DataFrame(s["history"])
        if h.empty:
            continue
        h["best_ratio"] = h.best_ratio.astype(float)  # null (nothing found yet) -> NaN
        label = "pruned search" if variant == "pruned" else "random search (no pruning)"
        axes[0].step(h.generated, h.best_ratio, where="post", label=label)
        axes[1].step(h.queries, h.best_ratio, where="post", label=label)
    axes[0].set(xlabel="programs generated", ylabel="best L2 ratio (final / initial)")
    axes[1].set(xlabel="model queries", ylabel="best L2 ratio (final / initial)")
    for ax in axes:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0].legend()
    fig.suptitle("Search progress on the binary model")
    return fig


def pruning(counts: dict):
    """Share of generated programs rejected at each stage, beside the official search's."""
    n = max(counts["generated"], 1)
    ours = {
        "inputs check": counts["inputs"] / n,
        "distance test": counts["distance"] / n,
        "pass both": (n - counts["inputs"] - counts["distance"]) / n,
        "fail short attack": counts["short"] / n,
        "pass short attack": counts["passed"] / n,
    }
    rows = [{"stage": k, "share": v, "search": "ours"} for k, v in ours.items()]
    rows += [{"stage": k, "share": v, "search": "official"} for k, v in PAPER_PRUNING.items()]
    table = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(7, 3.4))
    stages = list(ours)
    width = 0.4
    for i, (who, part) in enumerate(table.groupby("search", sort=False)):
        pos = [stages.index(s) + (i - 0.5) * width for s in part.stage]
        ax.bar(pos, part.share.clip(lower=1e-7), width, label=who)
    ax.set_xticks(range(len(stages)), stages, rotation=15)
    ax.set_yscale("log")
    title = f"Pruning ({counts['generated']:,} programs)"
    ax.set(ylabel="share of generated programs", title=title)
    ax.legend()
    return fig


def curves(table: pd.DataFrame, eps: float):
    """Median L2 and success rate (L2 ≤ eps) against queries, per held-out model."""
    models = list(dict.fromkeys(table.model))
    fig, axes = plt.subplots(2, len(models), figsize=(4.2 * len(models), 6.4), squeeze=False)
    for j, model in enumerate(models):
        part = table[table.model == model]
        for method, rows in part.groupby("method", sort=False):
            label = METHOD_NAMES.get(method, method)
            style = "-" if method.startswith("autoda") else "--"
            axes[0, j].plot(rows.queries, rows.median_l2, style, label=label)
            axes[1, j].plot(rows.queries, rows.success_rate, style, label=label)
        axes[0, j].set(title=f"{model} model", ylabel="median L2", xscale="log", yscale="log")
        axes[1, j].set(xlabel="queries", ylabel=f"success rate (L2 ≤ {eps:g})", xscale="log")
    for ax in axes.flat:
        ax.xaxis.set_minor_formatter(NullFormatter())  # the minor labels overlap
        ax.yaxis.set_minor_formatter(NullFormatter())
    axes[0, -1].legend(fontsize="small")
    return fig


def programs_text(searches: dict, top: int = 5) -> str:
    """Markdown: the official AutoDA 1st, and the best programs each search found."""
    parts = ["# Discovered programs\n", "## AutoDA 1st (official)\n", _code(AUTODA_1ST)]
    for variant, s in searches.items():
        c = s["counts"]
        parts.append(
            f"## {variant} search: {c['generated']:,} programs, {s['queries']:,} queries\n"
        )
        ranked = sorted(s["programs"], key=lambda p: p["long"])[:top]
        if not ranked:
            parts.append("No program passed all stages.\n")
        for i, p in enumerate(ranked, 1):
            parts.append(f"### {i}. ratio {p['long']:.4f} (short attack {p['short']:.4f})\n")
            parts.append(_code(Program.from_list(p["nodes"])))
    return "\n".join(parts)


def _code(program: Program) -> str:
    return f"```\n{program.text()}\n```\n"
