"""One seaborn style for every figure; figures are saved in every configured format.

The figure contract: a paper's draw functions return a matplotlib Figure and never save;
the figure step calls `use_style(params["plot"])` before drawing and `save_figure(fig,
outputs[name], opts)` after.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: cluster nodes and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from reprise.io import atomic_path  # noqa: E402

DEFAULTS = {"formats": ["png", "pdf"], "dpi": 150, "context": "paper"}
# No time stamps (nor a version string that a routine upgrade would change): a re-run writes
# byte-identical files, so DVC and Snakemake see no change.
METADATA = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None, "Creator": None},
}


def use_style(options: dict | None = None) -> dict:
    opts = {**DEFAULTS, **(options or {})}
    sns.set_theme(context=opts["context"], style="whitegrid", palette="colorblind")
    plt.rcParams.update(
        {
            "figure.dpi": opts["dpi"],
            "savefig.bbox": "tight",
            "axes.titleweight": "bold",
            "svg.hashsalt": "reprise",  # stable element ids in SVG files
        }
    )
    return opts


def save_figure(fig, paths: list[Path] | str | Path, options: dict | None = None) -> list[Path]:
    """Save `fig` in every configured format, atomically, and close it. `paths` is the rule's
    output list (one path per format, as rules/common.smk's `figure()` makes it) or a stem."""
    opts = {**DEFAULTS, **(options or {})}
    if isinstance(paths, list | tuple):
        stem = Path(paths[0]).with_suffix("")
        wanted = {Path(p) for p in paths}
    else:
        stem, wanted = Path(paths), None
    out = [Path(f"{stem}.{fmt}") for fmt in opts["formats"]]
    if wanted is not None and set(out) != wanted:
        raise ValueError(
            f"figure paths {sorted(map(str, wanted))} do not match formats {opts['formats']}"
        )
    for path, fmt in zip(out, opts["formats"], strict=True):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=opts["dpi"], metadata=METADATA.get(fmt))
    plt.close(fig)
    return out
