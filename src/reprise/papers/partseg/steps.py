"""Steps of partseg.

generate (per data set: train and test splits with exact masks and landmarks)
-> train (per run: train, then score on the test split and keep the figures' predictions)
-> evaluate (metrics.json and the score table) -> figures (overlays, tables, t-SNE).
"""

from __future__ import annotations

import logging

from reprise.io import read_json, read_table, write_json, write_table
from reprise.steps import Steps, one

STEPS = Steps()
log = logging.getLogger("reprise")


@STEPS.register(outputs=("train", "test"), sections=("data",))
def generate(params, inputs, outputs, rt):
    """Procedural objects of one category with exact part masks and landmarks."""
    from reprise.papers.partseg import generate as gen

    name, cfg = one(params, "data")
    for split, offset in (("train", 0), ("test", 1)):
        data = gen.generate(cfg["category"], cfg[split], cfg["size"], cfg["seed"] + offset, cfg)
        gen.save(outputs[split], cfg["category"], data)
        log.info("%s %s: %d images of %d px", name, split, cfg[split], cfg["size"])


@STEPS.register(
    inputs=("train", "test"),
    outputs=("model", "history", "scores", "predictions"),
    sections=("runs", "model", "train", "evaluation"),
    torch=True,
    gpu=True,
)
def train(params, inputs, outputs, rt):
    """Train one run (the model, an ablation or the SCOPS-like baseline), then score it."""
    import pandas as pd

    from reprise.io import save_checkpoint
    from reprise.papers.partseg import runs

    name, run_cfg = one(params, "runs")
    net, history, row, keep = runs.run(
        name, run_cfg, params["model"], params["train"], params["evaluation"], inputs, rt
    )
    save_checkpoint(outputs["model"], {"run": name, "state_dict": net.state_dict()})
    write_table(outputs["history"], pd.DataFrame(history).assign(run=name))
    write_json(outputs["scores"], row)
    runs.save_predictions(outputs["predictions"], keep)


@STEPS.register(inputs=("scores*",), outputs=("metrics", "table"))
def evaluate(params, inputs, outputs, rt):
    """metrics.json (every declared metric; null where a run did not run) and the score table."""
    import pandas as pd

    from reprise.papers.partseg.metrics import METRICS

    rows = [read_json(p) for p in inputs["scores"]]
    write_table(outputs["table"], pd.DataFrame(rows))
    write_json(outputs["metrics"], METRICS.compute(rows))


@STEPS.register(inputs=("predictions*",), outputs=("figure*",), sections=("plot",))
def figure_overlays(params, inputs, outputs, rt):
    """Part maps over the same test images, one row per run."""
    import numpy as np

    from reprise.papers.partseg.figures import part_overlays
    from reprise.plots import save_figure

    preds = {}
    for path in inputs["predictions"]:
        with np.load(path, allow_pickle=False) as z:
            preds[path.name.removesuffix(".npz")] = {k: z[k] for k in ("images", "labels")}
    save_figure(part_overlays(preds, params["plot"]), outputs["figure"], params["plot"])


def _table_figure(score: str, label: str):
    def step(params, inputs, outputs, rt):
        from reprise.papers.partseg.figures import score_table
        from reprise.plots import save_figure

        fig = score_table(read_table(inputs["table"]), score, label, params["plot"])
        save_figure(fig, outputs["figure"], params["plot"])

    step.__name__ = f"figure_{score}"
    step.__doc__ = f"Bar chart of {label} per run."
    STEPS.register(inputs=("table",), outputs=("figure*",), sections=("plot",))(step)


_table_figure("landmark_error", "landmark error (% of normaliser)")
_table_figure("foreground_iou", "foreground IoU")


@STEPS.register(inputs=("predictions",), outputs=("figure*",), sections=("plot",))
def figure_tsne(params, inputs, outputs, rt):
    """t-SNE of the part appearance vectors of one run."""
    import numpy as np

    from reprise.papers.partseg.figures import tsne
    from reprise.plots import save_figure

    with np.load(inputs["predictions"], allow_pickle=False) as z:
        vectors = z["vectors"]
    title = f"t-SNE of part vectors, {inputs['predictions'].name.removesuffix('.npz')}"
    save_figure(tsne(vectors, rt.seed, params["plot"], title), outputs["figure"], params["plot"])
