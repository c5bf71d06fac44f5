"""Figures of partseg: draw functions return a matplotlib Figure; the figure steps save it."""

from __future__ import annotations

import numpy as np

from reprise.plots import use_style


def part_overlays(predictions: dict[str, dict], options: dict | None = None):
    """Rows: runs; columns: the same test images with the argmax part map laid over them
    (background left clear), so consistent parts show as consistent colours."""
    import matplotlib.pyplot as plt

    use_style(options)
    runs = list(predictions)
    n = min(len(p["labels"]) for p in predictions.values())
    fig, axes = plt.subplots(len(runs), n, figsize=(1.1 * n, 1.2 * len(runs)), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for i, run in enumerate(runs):
        p = predictions[run]
        for j in range(n):
            ax = axes[i, j]
            img = p["images"][j].transpose(1, 2, 0) / 255.0
            lab = p["labels"][j]
            colour = cmap((lab - 1) % 10)[..., :3]
            alpha = np.where(lab > 0, 0.55, 0.0)[..., None]
            ax.imshow(img * (1 - alpha) + colour * alpha, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(run, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle("Part maps (argmax, background clear) on test images")
    return fig


def score_table(table, score: str, label: str, options: dict | None = None):
    """One bar per run, grouped by data set, with the value written on the bar."""
    import matplotlib.pyplot as plt

    use_style(options)
    t = table.dropna(subset=[score])
    groups = list(dict.fromkeys(t["data"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.2), squeeze=False)
    for ax, g in zip(axes[0], groups, strict=True):
        rows = t[t["data"] == g]
        names = [r.removeprefix(g + "_") for r in rows["run"]]
        bars = ax.barh(names, rows[score], color=["C0" if "_" not in n else "C1" for n in names])
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
        ax.invert_yaxis()
        ax.set_title(g)
        ax.set_xlabel(label)
    fig.tight_layout()
    return fig


def tsne(vectors: np.ndarray, seed: int, options: dict | None = None, title: str = ""):
    """t-SNE of per-part appearance vectors (N images × K parts × C), coloured by part: one
    tight cluster per part means the parts carry consistent appearance across images."""
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    use_style(options)
    n, k, c = vectors.shape
    flat = vectors.reshape(-1, c)
    flat = (flat - flat.mean(0)) / (flat.std(0) + 1e-8)
    emb = TSNE(2, perplexity=min(30, len(flat) // 4), init="pca", random_state=seed).fit_transform(
        flat
    )
    part = np.tile(np.arange(k), n)
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    for j in range(k):
        sel = part == j
        ax.scatter(emb[sel, 0], emb[sel, 1], s=5, label="background" if j == 0 else f"part {j}")
    ax.legend(fontsize=7, markerscale=2)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or "t-SNE of part appearance vectors")
    return fig
