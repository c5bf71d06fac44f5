"""Steps of the b3d paper.

population (one job per dataset × chunk of models, trained together) -> detect (per dataset ×
chunk × method: NC, B3D, B3D-SS; with mitigation) -> evaluate (metrics.json, detection
table) -> figures.
"""

from __future__ import annotations

import logging

from reprise.io import read_table, write_json, write_table
from reprise.steps import Steps, one

STEPS = Steps()
log = logging.getLogger("reprise")


@STEPS.register(
    inputs=("train", "test"),
    outputs=("models", "table"),
    sections=("datasets", "chunks", "population", "train"),
    torch=True,
    gpu=True,
)
def population(params, inputs, outputs, rt):
    """Train one chunk of the clean/backdoored population together (vmapped group).

    Each model's recipe is drawn from its seed and saved with it; the table holds the
    recipes, clean accuracy and attack success rate."""
    import pandas as pd

    from reprise.data.prepared import load_split
    from reprise.io import save_checkpoint
    from reprise.papers.b3d.model import Group
    from reprise.papers.b3d.population import draw_recipe
    from reprise.papers.b3d.train import clean_and_attack, train_group

    dataset, chunk = one(params, "datasets"), int(one(params, "chunks"))
    pop = params["population"]
    train, test = load_split(inputs["train"]), load_split(inputs["test"])
    c, h = train.x.shape[1], train.x.shape[2]
    first = chunk * pop["per_chunk"]
    recipes = [
        draw_recipe(i, pop["seed"], (c, h, h), train.num_classes, pop["attacks"])
        for i in range(first, first + pop["per_chunk"])
    ]
    spec = {
        "arch": pop["arch"],
        "in_channels": c,
        "size": h,
        "num_classes": train.num_classes,
        "width": pop["width"],
    }
    group = Group(spec, [r["seed"] for r in recipes]).to(rt.device)
    log.info(
        "%s chunk %d: training models %d..%d together",
        dataset,
        chunk,
        first,
        first + len(recipes) - 1,
    )
    x, y = train.x.to(rt.device), train.y.to(rt.device)
    history = train_group(group, x, y, recipes, params["train"], rt.seed + chunk, rt.resume)
    acc, asr = clean_and_attack(group, test.x.to(rt.device), test.y.to(rt.device), recipes)
    state = {k: v.detach().cpu() for k, v in group.state_dict().items()}
    save_checkpoint(
        outputs["models"],
        {"spec": spec, "state": state, "recipes": recipes, "dataset": dataset, "chunk": chunk},
    )
    rows = []
    for r, a, s in zip(recipes, acc.tolist(), asr.tolist(), strict=True):
        plain = {k: v for k, v in r.items() if k not in ("true_mask", "true_pattern")}
        rows.append(
            {
                "dataset": dataset,
                "chunk": chunk,
                **plain,
                "clean_acc": a,
                "asr": s,
                "channels": c,
                "size": h,
                "final_loss": history[-1]["loss"],
                "true_mask": r["true_mask"].flatten().tolist(),
                "true_pattern": r["true_pattern"].flatten().tolist(),
            }
        )
        log.info("model %d (%s): clean acc %.3f, ASR %.3f", r["model"], r["attack"], a, s)
    write_table(outputs["table"], pd.DataFrame(rows))


@STEPS.register(
    inputs=("models", "test"),
    outputs=("table",),
    sections=("methods", "detect"),
    torch=True,
    gpu=True,
)
def detect(params, inputs, outputs, rt):
    """Reverse-engineer triggers with one method (nc, b3d, b3d_ss), flag, mitigate.

    nc: gradients; b3d: NES on probabilities; b3d_ss: NES on synthesised inputs. One trigger
    per model and class; flag by the MAD anomaly index; repair flagged models' inputs."""
    import pandas as pd

    from reprise.data.prepared import load_split
    from reprise.io import load_checkpoint
    from reprise.papers.b3d.detect import detect as run
    from reprise.papers.b3d.model import Group

    method, _ = one(params, "methods")
    ckpt = load_checkpoint(inputs["models"])
    try:
        recipes, spec = ckpt["recipes"], ckpt["spec"]
        group = Group(spec, [r["seed"] for r in recipes])
        group.load_state_dict(ckpt["state"])
    except (KeyError, RuntimeError, TypeError) as e:
        from reprise.errors import CheckpointError

        raise CheckpointError(f"{inputs['models']} is not a b3d population chunk: {e}") from None
    group = group.to(rt.device).requires_grad_(False)
    test = load_split(inputs["test"])
    n_pool, n_eval = params["detect"]["pool"], params["detect"]["mitigation_samples"]
    pool = test.x[:n_pool].to(rt.device)
    held = (
        test.x[n_pool : n_pool + n_eval].to(rt.device),
        test.y[n_pool : n_pool + n_eval].to(rt.device),
    )
    rows = run(group, recipes, pool, held, method, params["methods"], rt.seed, rt.resume)
    for r in rows:
        verdict = "flagged" if r["flagged"] else "not flagged"
        log.info(
            "%s model %d: anomaly index %.2f (class %d), %s",
            method,
            r["model"],
            r["anomaly_index"],
            r["flagged_class"],
            verdict,
        )
    write_table(outputs["table"], pd.DataFrame(rows).assign(dataset=ckpt["dataset"]))


def _joined(inputs):
    import pandas as pd

    from reprise.papers.b3d.evaluate import joined

    population = pd.concat([read_table(p) for p in inputs["population"]], ignore_index=True)
    detections = pd.concat([read_table(p) for p in inputs["detections"]], ignore_index=True)
    return population, joined(population, detections)


@STEPS.register(
    inputs=("population*", "detections*"),
    outputs=("metrics", "summary"),
    sections=(),
)
def evaluate(params, inputs, outputs, rt):
    """metrics.json and the detection table (dataset × method × attack).

    The table: accuracy, TPR, FPR, AUROC and how often the flagged class is the target."""
    from reprise.papers.b3d.evaluate import summary
    from reprise.papers.b3d.metrics import METRICS

    _, df = _joined(inputs)
    table = summary(df)
    log.info("detection table:\n%s", table.to_string(index=False))
    write_table(outputs["summary"], table)
    write_json(outputs["metrics"], METRICS.compute(df))


@STEPS.register(
    inputs=("population*", "detections*"),
    outputs=("detection*", "roc*", "triggers*", "norms*", "anomaly*", "queries*"),
    sections=("plot",),
)
def figures(params, inputs, outputs, rt):
    """Detection bars, ROC, true vs reversed triggers, L1 norms, anomaly index, queries."""
    from reprise.papers.b3d import figures as draw
    from reprise.plots import save_figure, use_style

    opts = use_style(params["plot"])
    population, df = _joined(inputs)
    save_figure(draw.detection(df), outputs["detection"], opts)
    save_figure(draw.roc(df), outputs["roc"], opts)
    save_figure(draw.triggers(df, population), outputs["triggers"], opts)
    save_figure(draw.norms(df), outputs["norms"], opts)
    save_figure(draw.anomaly(df), outputs["anomaly"], opts)
    save_figure(draw.queries(df), outputs["queries"], opts)
