"""Steps of the memorization paper.

train-labels (one method × label kind × dataset) -> complexity (per dataset)
train-te (one run × dataset) -> attack-te (per dataset: best and final checkpoints)
-> evaluate (metrics.json and the summary tables) -> one figure step per figure.
"""

from __future__ import annotations

import logging

import pandas as pd

from reprise.io import read_table, write_json, write_table
from reprise.papers.memorization import evaluate as summary
from reprise.papers.memorization import figures
from reprise.steps import Steps

STEPS = Steps()
log = logging.getLogger("reprise")


def _fit(section, method_name, train, test, outputs, rt, run: dict, accel):
    """Train one run through the core loop, resumable from the CLI's resume directory;
    writes the per-epoch table (with the run's identity columns) and returns the model and
    the checkpoint directory."""
    from reprise.attacks import PGD
    from reprise.papers.memorization.runs import method_for, model_for, train_config
    from reprise.resume import resume_dir
    from reprise.training import fit

    cfg = train_config(section)
    model = model_for(section["model"], train)
    method = method_for(method_name, section, len(train), train.num_classes, cfg.epochs)
    ckpt_dir = rt.resume.directory or resume_dir(outputs["model"])
    history = fit(
        model,
        method,
        train,
        cfg,
        ckpt_dir=ckpt_dir,
        test=test,
        attack=PGD.from_config(section["monitor_attack"]),
        accel=accel,
        seed=rt.seed,
        run_config=run,
    )
    write_table(outputs["history"], history.assign(**run))
    return model.cpu(), ckpt_dir


@STEPS.register(inputs=("train", "test"), outputs=("model", "history"), torch=True)
def train_labels(params, inputs, outputs, rt):
    """PGD-AT or TRADES on true or random labels (noise rate, fixed by seed, saved with the
    model); the table logs clean/robust train (as trained) and test accuracy and the squared
    gradient norm per epoch."""
    from reprise.models import save_model
    from reprise.papers.memorization.runs import for_dataset, load, only, training_labels

    section = params["random_labels"]
    dataset, method, kind = (only(section, k) for k in ("datasets", "methods", "labels"))
    section = for_dataset(section, dataset)
    train = training_labels(
        load(inputs["train"], params.get("data"), section.get("train_size")),
        kind,
        section["noise_rate"],
        section["noise_seed"],
    )
    test = load(inputs["test"], params.get("data"))
    run = {"dataset": dataset, "method": method, "labels": kind}
    accel = rt.accel(**params.get("accel", {}))
    model, _ = _fit(section, method, train, test, outputs, rt, run, accel)
    save_model(outputs["model"], model, **run, train_labels=train.y.clone())


@STEPS.register(inputs=("train", "test"), outputs=("model", "best", "history"), torch=True)
def train_te(params, inputs, outputs, rt):
    """PGD-AT, PGD-AT+TE, TRADES or TRADES+TE; keeps the final model and the checkpoint of
    the best PGD test accuracy (the per-epoch monitor)."""
    from reprise.io import load_checkpoint, save_checkpoint
    from reprise.models import save_model
    from reprise.papers.memorization.runs import for_dataset, load, only
    from reprise.training import BEST

    section = params["te"]
    dataset, name = only(section, "datasets"), only(section, "runs")
    section = for_dataset(section, dataset)
    train = load(inputs["train"], params.get("data"), section.get("train_size"))
    test = load(inputs["test"], params.get("data"))
    run = {"dataset": dataset, "run": name}
    accel = rt.accel(**params.get("accel", {}))
    model, ckpt_dir = _fit(section, name, train, test, outputs, rt, run, accel)
    epochs = section["train"]["epochs"]
    save_model(outputs["model"], model, **run, checkpoint="final", epoch=epochs)
    best = load_checkpoint(ckpt_dir / BEST)
    save_checkpoint(outputs["best"], {**best, **run, "checkpoint": "best"})


@STEPS.register(inputs=("models*", "test"), outputs=("table",), torch=True)
def attack_te(params, inputs, outputs, rt):
    """Natural, PGD-20 and CW-20 test accuracy of each best and final TE checkpoint."""
    from reprise.attacks import PGD
    from reprise.metrics import accuracy
    from reprise.models import load_model
    from reprise.papers.memorization.runs import load

    evaluation = dict(params["te"]["evaluation"])
    test = load(inputs["test"], params.get("data"), evaluation.pop("test_size", None))
    accel = rt.accel(**params.get("accel", {}))
    attacks = {k: PGD.from_config(v) for k, v in evaluation.items()}
    rows = []
    for path in inputs["models"]:
        model, ckpt = load_model(path)
        model = accel.model(model)
        row = {k: ckpt[k] for k in ("dataset", "run", "checkpoint", "epoch")}
        row["natural"] = accuracy(model, test, accel=accel)
        for name, attack in attacks.items():
            row[name] = accuracy(model, test, attack=attack, accel=accel)
        log.info("%s", row)
        rows.append(row)
    write_table(outputs["table"], pd.DataFrame(rows))


@STEPS.register(inputs=("models*", "train"), outputs=("table",), torch=True)
def complexity_(params, inputs, outputs, rt):
    """The complexity measures of each random-label-experiment model, on its training
    samples with the labels it was trained on."""
    from reprise.attacks import PGD
    from reprise.data.prepared import ImageData
    from reprise.models import load_model
    from reprise.papers.memorization import complexity
    from reprise.papers.memorization.runs import load

    section = params["complexity"]
    accel = rt.accel(**params.get("accel", {}))
    attack = PGD.from_config(section["attack"])
    rows = []
    for path in inputs["models"]:
        model, ckpt = load_model(path)
        model = accel.model(model)
        labels = ckpt["train_labels"]
        train = load(inputs["train"], params.get("data"), len(labels))
        data = ImageData(train.x, labels, train.classes).subset(section["samples"])
        row = {k: ckpt[k] for k in ("dataset", "method", "labels")}
        row |= complexity.measures(model, data, attack, section, rt.seed, accel)
        log.info("%s", row)
        rows.append(row)
    write_table(outputs["table"], pd.DataFrame(rows))


@STEPS.register(
    inputs=("label_histories*", "complexity*", "te_histories*", "te_tables*"),
    outputs=("metrics", "random_labels", "complexity", "best_final"),
)
def evaluate(params, inputs, outputs, rt):
    """metrics.json (every declared metric; null where a dataset was not run) and the
    summary tables the figures and the report read."""
    labels = pd.concat([read_table(p) for p in inputs["label_histories"]], ignore_index=True)
    measures = pd.concat([read_table(p) for p in inputs["complexity"]], ignore_index=True)
    te_hist = pd.concat([read_table(p) for p in inputs["te_histories"]], ignore_index=True)
    te_eval = pd.concat([read_table(p) for p in inputs["te_tables"]], ignore_index=True)
    finals = summary.final_rows(labels)
    separation = summary.separation(measures)
    best_final = summary.best_final(te_eval, te_hist)
    write_table(outputs["random_labels"], finals)
    write_table(outputs["complexity"], separation)
    write_table(outputs["best_final"], best_final)
    write_json(outputs["metrics"], summary.metrics(labels, finals, separation, best_final))


def _figure_step(name: str, draw) -> None:
    """Register `figure-<name>`: the concatenated input tables -> one figure (every format)."""

    def step(params, inputs, outputs, rt):
        table = pd.concat([read_table(p) for p in inputs["tables"]], ignore_index=True)
        figures.render(draw, table, outputs["figure"][0].with_suffix(""), params.get("plot"))

    step.__name__ = "figure_" + name
    step.__doc__ = draw.__doc__
    STEPS.register(inputs=("tables*",), outputs=("figure*",))(step)


for _name, _draw in figures.FIGURES.items():
    _figure_step(_name, _draw)
