"""One seaborn style for every figure; figures are saved in every configured format."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: cluster nodes and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from reprise.io import atomic_path  # noqa: E402

DEFAULTS = {"formats": ["png", "pdf"], "dpi": 150, "context": "paper"}


def use_style(options: dict | None = None) -> dict:
    opts = {**DEFAULTS, **(options or {})}
    sns.set_theme(context=opts["context"], style="whitegrid", palette="colorblind")
    plt.rcParams.update(
        {"figure.dpi": opts["dpi"], "savefig.bbox": "tight", "axes.titleweight": "bold"}
    )
    return opts


def save_figure(fig, stem: str | Path, options: dict | None = None) -> list[Path]:
    """Save `fig` as <stem>.<fmt> for each configured format, atomically; close it."""
    opts = {**DEFAULTS, **(options or {})}
    paths = []
    for fmt in opts["formats"]:
        path = Path(f"{stem}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=opts["dpi"])
        paths.append(path)
    plt.close(fig)
    return paths
