"""The paper's figures, each drawn from saved tables (per-epoch histories or summaries).

Every function takes one table (its input files concatenated) and returns a matplotlib
figure; the `figure` step styles, draws and saves it (reprise.plots).
FIGURES names them as the workflow does (results/<scale>/memorization/figures/<name>.*).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reprise.papers.memorization import TE_PAIRS

METHOD_NAMES = {"pgd_at": "PGD-AT", "trades": "TRADES"}
RUN_NAMES = {
    "pgd_at": "PGD-AT",
    "pgd_at_te": "PGD-AT+TE",
    "trades": "TRADES",
    "trades_te": "TRADES+TE",
    "pgd_at_noisy": "PGD-AT, noisy labels",
    "pgd_at_te_noisy": "PGD-AT+TE, noisy labels",
    "trades_noisy": "TRADES, noisy labels",
    "trades_te_noisy": "TRADES+TE, noisy labels",
}
ACCURACY_PANELS = {
    "train_clean_acc": "train clean",  # on the labels as trained
    "train_robust_acc": "train robust",
    "test_clean_acc": "test clean",
    "test_robust_acc": "test robust",
}


# the same colour per method and line style per label kind in every panel
LABEL_STYLE = {
    "hue": "method",
    "hue_order": list(METHOD_NAMES.values()),
    "style": "labels",
    "style_order": ["true labels", "random labels"],
}


def _label_runs(histories: pd.DataFrame) -> pd.DataFrame:
    return histories.assign(
        method=histories["method"].map(METHOD_NAMES), labels=histories["labels"] + " labels"
    )


def _grid(rows: int, cols: int, w: float = 3.0, h: float = 2.6):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False)
    return fig, axes


def accuracy_curves(histories: pd.DataFrame):
    """Train (labels as trained) and test, clean and robust accuracy per epoch: true vs
    random labels, PGD-AT vs TRADES, one row of panels per dataset."""
    import seaborn as sns

    h = _label_runs(histories)
    datasets = sorted(h["dataset"].unique())
    fig, axes = _grid(len(datasets), len(ACCURACY_PANELS))
    for row, dataset in zip(axes, datasets, strict=True):
        d = h[h["dataset"] == dataset]
        for i, (ax, (col, title)) in enumerate(zip(row, ACCURACY_PANELS.items(), strict=True)):
            sns.lineplot(d, x="epoch", y=col, ax=ax, legend=i == 0, **LABEL_STYLE)
            ax.set(title=f"{dataset}: {title}", ylabel="accuracy", ylim=(-0.02, 1.02))
    return fig


def grad_norm_curves(histories: pd.DataFrame):
    """Mean squared gradient norm of the training loss per epoch (log scale): the
    instability signal, PGD-AT vs TRADES on true and random labels."""
    import seaborn as sns

    h = _label_runs(histories)
    datasets = sorted(h["dataset"].unique())
    fig, axes = _grid(1, len(datasets), w=4.2, h=3.2)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        d = h[h["dataset"] == dataset]
        sns.lineplot(d, x="epoch", y="grad_norm_sq", ax=ax, **LABEL_STYLE)
        ax.set(title=f"{dataset}: gradient norm", ylabel="‖∇θ L‖² (mean over batches)")
        ax.set_yscale("log")
    return fig


def complexity_table(table: pd.DataFrame):
    """Each complexity measure on true vs random labels (mean ± sd over the training seeds,
    log10 ratio random/true ± its standard error, one-sided Welch p): green where the measure
    ranks the model that cannot generalise (random labels) as more complex at p < 0.05 (it
    would explain robust generalisation), yellow where only the means do, red otherwise."""
    import matplotlib.pyplot as plt

    t = table.assign(row=table["dataset"] + " " + table["method"].map(METHOD_NAMES))
    rows, cols = sorted(t["row"].unique()), list(dict.fromkeys(t["measure"]))
    cell = t.set_index(["row", "measure"])
    colours = np.array(
        [[_verdict_colour(cell.loc[(r, c)]) for c in cols] for r in rows], dtype=float
    )
    fig, ax = plt.subplots(figsize=(2.6 * len(cols) + 1.5, 0.9 * len(rows) + 1.4))
    ax.imshow(colours, cmap="RdYlGn", vmin=-0.6, vmax=1.6, aspect="auto")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            v = cell.loc[(r, c)]
            ax.text(
                j,
                i,
                f"true {v['true']:.3g} ± {v['true_sd']:.2g}\n"
                f"random {v['random']:.3g} ± {v['random_sd']:.2g}\n"
                f"Δlog10 {v['random_minus_true']:+.2f} ± {v['random_minus_true_se']:.2f}, "
                f"p {v['p_value']:.2g} (n={v['seeds']})",
                ha="center",
                va="center",
                fontsize=7,
            )
    ax.set_xticks(range(len(cols)), [c.replace("_", " ") for c in cols], fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.grid(False)
    ax.set_title("complexity: does it rank random labels (no generalisation) higher?")
    return fig


def _verdict_colour(v) -> float:
    """1 (green): explains at p < 0.05; 0.5: random above true on the means only; 0: not."""
    return 1.0 if v["explains"] else 0.5 if v["separates"] else 0.0


def te_curves(histories: pd.DataFrame):
    """PGD test accuracy per epoch with and without temporal ensembling: each run beside its
    TE partner (PGD-AT, TRADES, and those on noisy labels where run), one row per dataset;
    dotted: the TE weight's ramp."""
    import seaborn as sns

    h = histories.assign(name=histories["run"].map(RUN_NAMES))
    datasets = sorted(h["dataset"].unique())
    bases = [b for b in TE_PAIRS if b in set(h["run"])]
    fig, axes = _grid(len(datasets), len(bases), w=5.0, h=3.0)
    for row, dataset in zip(axes, datasets, strict=True):
        d = h[h["dataset"] == dataset]
        for ax, base in zip(row, bases, strict=True):
            pair = d[d["run"].isin([base, TE_PAIRS[base]])]
            sns.lineplot(pair, x="epoch", y="test_robust_acc", hue="name", ax=ax)
            ax.set(title=f"{dataset}: {RUN_NAMES[base]} ± TE", ylabel="PGD test accuracy")
            te = pair[pair["run"] == TE_PAIRS[base]]
            if "te_weight" in te and te["te_weight"].max() > 0:
                twin = ax.twinx()
                twin.plot(te["epoch"], te["te_weight"], ":", color="grey", lw=1)
                twin.set(ylabel="TE weight")
                twin.grid(False)
    return fig


def best_final_table(table: pd.DataFrame):
    """Natural, PGD-20, CW-20 and AutoAttack test accuracy of the best and the final
    checkpoint of each run, with the best-minus-final PGD-20 gap."""
    import matplotlib.pyplot as plt

    attacks = {"natural": "natural", "pgd20": "PGD-20", "cw20": "CW-20", "autoattack": "AA"}
    attacks = {k: v for k, v in attacks.items() if k in table.columns}
    t = table.assign(name=table["run"].map(RUN_NAMES))
    wide = t.pivot_table(index=["dataset", "name"], columns="checkpoint", values=list(attacks))
    lines = []
    for (dataset, name), r in wide.iterrows():
        cells = [f"{r[(a, c)]:.3f}" for a in attacks for c in ("best", "final")]
        gap = r[("pgd20", "best")] - r[("pgd20", "final")]
        lines.append([dataset, name, *cells, f"{gap:+.3f}"])
    head = ["dataset", "run"] + [f"{a} {c}" for a in attacks.values() for c in ("best", "final")]
    fig, ax = plt.subplots(figsize=(13, 0.35 * len(lines) + 1.0))
    ax.axis("off")
    tab = ax.table(cellText=lines, colLabels=head + ["PGD-20 gap"], loc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.scale(1, 1.3)
    ax.set_title("best vs final checkpoint (test accuracy)")
    return fig


FIGURES = {
    "accuracy_curves": accuracy_curves,
    "grad_norm": grad_norm_curves,
    "complexity": complexity_table,
    "te_curves": te_curves,
    "best_final": best_final_table,
}
