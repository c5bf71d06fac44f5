"""Steps of the poisoning paper.

burn_in (per norm) -> online (per variant) -> detect (the detection variant)
                   -> federated (per variant)
-> evaluate (metrics.json, ablation and detection tables) -> figures.
"""

from __future__ import annotations

import logging

from reprise.io import read_table, write_json, write_table
from reprise.steps import Steps

STEPS = Steps()
HEADLINE = "default"  # the variant (of each setting) metrics.json and the detection report
log = logging.getLogger("reprise")


@STEPS.register(
    inputs=("train", "test"),
    outputs=("model", "history"),
    sections=("burn_in", "norms"),
    torch=True,
    gpu=True,
)
def burn_in(params, inputs, outputs, rt):
    """The victim's starting point: a clean model (GroupNorm or BatchNorm) trained with the
    core loop, crop(+flip) augmentation."""
    from reprise.data.prepared import load_split
    from reprise.models import save_model
    from reprise.papers.poisoning.runs import burn_in_model
    from reprise.steps import one
    from reprise.training import Standard, TrainConfig, fit

    norm = one(params, "norms")
    section = params["burn_in"]
    train, test = load_split(inputs["train"]), load_split(inputs["test"])
    model = burn_in_model(section["model"], norm, train)
    cfg = TrainConfig.from_config(section["train"])
    fitted = fit(
        model,
        Standard(),
        train,
        cfg,
        resume=rt.resume,
        test=test,
        accel=rt.accel(),
        seed=rt.seed,
        run_config={"norm": norm},
    )
    write_table(outputs["history"], fitted.history.assign(norm=norm))
    save_model(outputs["model"], model.cpu(), norm=norm)


def _attack(kind, params, inputs, outputs, rt):
    from reprise.papers.poisoning.runs import attack, variant_config

    defaults = params[kind]
    name, cfg = variant_config(defaults, params[f"{kind}_variants"])
    table, batches = attack(kind, inputs["model"], inputs, params["stream"], cfg, rt, rt.accel())
    write_table(outputs["table"], table.assign(setting=kind, variant=name))
    return batches


@STEPS.register(
    inputs=("model", "train", "test"),
    outputs=("table", "batches"),
    sections=("stream", "online", "online_variants"),
    torch=True,
    gpu=True,
)
def online(params, inputs, outputs, rt):
    """Online learning, one variant: the four runs (trigger alone, clean stream, clean phase +
    trigger, accumulative phase + trigger) with accuracy after every step; the accumulative
    phase's clean and poisoned batches for the detection step."""
    from reprise.io import save_checkpoint

    batches = _attack("online", params, inputs, outputs, rt)
    save_checkpoint(outputs["batches"], batches)


@STEPS.register(
    inputs=("model", "train", "test"),
    outputs=("table",),
    sections=("stream", "federated", "federated_variants"),
    torch=True,
    gpu=True,
)
def federated(params, inputs, outputs, rt):
    """Federated learning, one variant: the four runs with accuracy after every round."""
    _attack("federated", params, inputs, outputs, rt)


@STEPS.register(
    inputs=("model", "batches", "train"),
    outputs=("scores",),
    sections=("detection",),
    torch=True,
)
def detect(params, inputs, outputs, rt):
    """KD, LID and GDA scores of the default online variant's accumulative-phase images,
    clean and poisoned."""
    from reprise.papers.poisoning.runs import detection_scores

    scores = detection_scores(
        inputs["model"], inputs["batches"], inputs["train"], params["detection"], rt.accel()
    )
    write_table(outputs["scores"], scores)


@STEPS.register(inputs=("online*", "federated*", "scores"), outputs=("metrics", "ablation", "aucs"))
def evaluate(params, inputs, outputs, rt):
    """metrics.json (the `default` variants and the detection AUCs), the ablation table."""
    import pandas as pd

    from reprise.papers.poisoning.metrics import METRICS
    from reprise.papers.poisoning.summary import ablation, detection_aucs, summarize

    tables = [read_table(p) for p in [*inputs["online"], *inputs["federated"]]]
    table = ablation(tables)
    aucs = detection_aucs(read_table(inputs["scores"]))
    results = {"detection": aucs}
    for t in tables:
        if t["variant"].iloc[0] == HEADLINE:
            results[t["setting"].iloc[0]] = summarize(t)
    write_table(outputs["ablation"], table)
    write_table(outputs["aucs"], pd.DataFrame([{"detector": k, "auc": v} for k, v in aucs.items()]))
    write_json(outputs["metrics"], METRICS.compute(results))
    log.info("ablation:\n%s", table.to_string())


@STEPS.register(
    inputs=("online", "federated", "ablation", "scores", "aucs"),
    outputs=("online*", "federated*", "ablation*", "detection*"),
    sections=("plot",),
)
def figures(params, inputs, outputs, rt):
    """Accuracy vs step (online) and round (federated) through the accumulative phase and the
    trigger, the four runs; accuracy before/after the trigger per variant; detection ROC."""
    from reprise.papers.poisoning import figures as fig
    from reprise.plots import save_figure, use_style

    opts = use_style(params["plot"])
    aucs = read_table(inputs["aucs"])
    made = {
        "online": fig.accuracy(read_table(inputs["online"]), "step"),
        "federated": fig.accuracy(read_table(inputs["federated"]), "round"),
        "ablation": fig.ablation(read_table(inputs["ablation"])),
        "detection": fig.detection(
            read_table(inputs["scores"]), dict(zip(aucs["detector"], aucs["auc"], strict=True))
        ),
    }
    for name, figure in made.items():
        save_figure(figure, outputs[name], opts)
