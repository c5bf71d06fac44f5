"""Steps of the memorization paper.

train_labels (one method × label kind × dataset) -> complexity (per dataset)
train_te (one run × dataset) -> attack_te (per dataset: best and final checkpoints)
-> evaluate (metrics.json and the summary tables) -> figure (one job per figure).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pandas as pd

from reprise.errors import ConfigError
from reprise.io import read_table, write_json, write_table
from reprise.papers.memorization import evaluate as summary
from reprise.runtime import progress
from reprise.steps import Steps, one

STEPS = Steps()
log = logging.getLogger("reprise")


def reseeded(rt, seed: int):
    """The runtime with another seed, every generator reseeded (the same one: unchanged)."""
    if seed == rt.seed:
        return rt
    from reprise.runtime import seed_everything

    seed_everything(seed, deterministic=rt.device.type == "cpu")
    return replace(rt, seed=seed)


def _fit(section, method_name, train, test, outputs, rt, run: dict, accel):
    """Train one run through the core loop, resumable from the CLI's resume directory;
    returns the model, the monitored best epoch (or None) and the per-epoch table (with the
    run's identity columns)."""
    from reprise.attacks import PGD
    from reprise.papers.memorization.runs import method_for, model_for, train_config
    from reprise.training import fit

    cfg = train_config(section)
    model = model_for(section["model"], train)
    method = method_for(method_name, section, len(train), train.num_classes, cfg.epochs)
    fitted = fit(
        model,
        method,
        train,
        cfg,
        resume=rt.resume,
        test=test,
        attack=PGD.from_config(section["monitor_attack"]),
        accel=accel,
        seed=rt.seed,
        run_config=run,
    )
    return model.cpu(), fitted.best, fitted.history.assign(**run)


@STEPS.register(
    inputs=("train", "test"),
    outputs=("model", "history"),
    sections=("random_labels", "data", "accel"),
    torch=True,
    gpu=True,
)
def train_labels(params, inputs, outputs, rt):
    """PGD-AT or TRADES on true or random labels (noise rate, fixed by seed, saved with the
    model), at one training seed; the table logs clean/robust train (as trained) and test
    accuracy and the squared gradient norm per epoch."""
    from reprise.metrics import accuracy
    from reprise.models import save_model
    from reprise.papers.memorization.runs import for_dataset, training_labels
    from reprise.training.recipe import load_data

    section = params["random_labels"]
    dataset, method, kind = (one(section, k) for k in ("datasets", "methods", "labels"))
    section = for_dataset(section, dataset)
    # the training seed (random_labels.seeds, narrowed to the job's): the runtime's seed plus it
    rt = reseeded(rt, rt.seed + one(section, "seeds"))
    train = training_labels(
        load_data(inputs["train"], params.get("data"), section.get("train_size")),
        kind,
        section["noise_rate"],
        section["noise_seed"],
    )
    test = load_data(inputs["test"], params.get("data"))
    run = {"dataset": dataset, "method": method, "labels": kind, "seed": rt.seed}
    accel = rt.accel(**params.get("accel", {}))
    model, _, history = _fit(section, method, train, test, outputs, rt, run, accel)
    # The per-epoch monitor sees a test subset; the final clean accuracy (is it at chance?)
    # is measured on the whole test split, in fp32 (a 64-sample estimate misses a ±0.05
    # band ~18% of the time from sampling alone).
    fp32 = replace(accel, bf16=False)
    full = accuracy(fp32.model(model), test, accel=fp32)
    history.loc[history.index[-1], "test_clean_acc_full"] = full
    model = model.cpu()
    write_table(outputs["history"], history)
    save_model(outputs["model"], model, **run, train_labels=train.y.clone())


@STEPS.register(
    inputs=("train", "test"),
    outputs=("model", "best", "history"),
    sections=("te", "data", "accel"),
    torch=True,
    gpu=True,
)
def train_te(params, inputs, outputs, rt):
    """PGD-AT, PGD-AT+TE, TRADES or TRADES+TE, on noisy training labels for a `_noisy` run;
    keeps the final model and the checkpoint of the best PGD test accuracy (the monitor)."""
    from reprise.models import save_model
    from reprise.papers.memorization.runs import RUN_ADDONS, for_dataset, training_labels
    from reprise.training.recipe import load_data, parse_run

    section = params["te"]
    dataset, name = one(section, "datasets"), one(section, "runs")
    section = for_dataset(section, dataset)
    train = load_data(inputs["train"], params.get("data"), section.get("train_size"))
    if "noisy" in parse_run(name, RUN_ADDONS)[1]:  # symmetric label noise, fixed by its seed
        if "label_noise" not in section:
            raise ConfigError(f"te.runs has {name!r}: te.label_noise must give rate and seed")
        noise = section["label_noise"]
        train = training_labels(train, "random", noise["rate"], noise["seed"])
    test = load_data(inputs["test"], params.get("data"))
    run = {"dataset": dataset, "run": name}
    accel = rt.accel(**params.get("accel", {}))
    model, best, history = _fit(section, name, train, test, outputs, rt, run, accel)
    write_table(outputs["history"], history)
    if best is None:
        raise ConfigError("te.train.monitor.best_by must name the column that picks the best epoch")
    epochs = section["train"]["epochs"]
    save_model(outputs["model"], model, **run, checkpoint="final", epoch=epochs)
    model.load_state_dict(best.pop("state_dict"))
    save_model(outputs["best"], model, **best, **run, checkpoint="best")


@STEPS.register(
    inputs=("models*", "test"),
    outputs=("table",),
    sections=("te", "data", "accel"),
    torch=True,
    gpu=True,
)
def attack_te(params, inputs, outputs, rt):
    """Natural, PGD-20, CW-20 and AutoAttack test accuracy of each best and final TE
    checkpoint."""
    from reprise.attacks import PGD
    from reprise.attacks.suite import build_attack
    from reprise.metrics import accuracy
    from reprise.models import load_model
    from reprise.training.recipe import load_data

    evaluation = dict(params["te"]["evaluation"])
    test = load_data(inputs["test"], params.get("data"), evaluation.pop("test_size", None))
    accel = replace(rt.accel(**params.get("accel", {})), bf16=False)  # final numbers: fp32
    attacks = {  # an entry with a kind (autoattack) from the suite, else the core PGD
        k: build_attack(k, v) if "kind" in v else PGD.from_config(v) for k, v in evaluation.items()
    }
    rows = []
    for path in progress(inputs["models"], desc="models", unit="model"):
        model, ckpt = load_model(path)
        model = accel.model(model)
        row = {k: ckpt[k] for k in ("dataset", "run", "checkpoint", "epoch")}
        row["natural"] = accuracy(model, test, accel=accel)
        for name, attack in attacks.items():
            row[name] = accuracy(model, test, attack=attack, accel=accel)
        log.info("%s", row)
        rows.append(row)
    write_table(outputs["table"], pd.DataFrame(rows))


@STEPS.register(
    inputs=("models*", "train"),
    outputs=("table",),
    sections=("random_labels", "complexity", "data", "accel"),
    torch=True,
    gpu=True,
)
def complexity_(params, inputs, outputs, rt):
    """The complexity measures of each random-label-experiment model, on its training
    samples with the labels it was trained on."""
    from reprise.attacks import PGD
    from reprise.data.prepared import ImageData
    from reprise.models import load_model
    from reprise.papers.memorization import complexity
    from reprise.training.recipe import load_data

    section = params["complexity"]
    accel = replace(rt.accel(**params.get("accel", {})), bf16=False)  # measures: fp32
    attack = PGD.from_config(section["attack"])
    rows = []
    for path in progress(inputs["models"], desc="models", unit="model"):
        model, ckpt = load_model(path)
        model = accel.model(model)
        labels = ckpt["train_labels"]
        train = load_data(inputs["train"], params.get("data"), len(labels))
        data = ImageData(train.x, labels, train.classes).subset(section["samples"])
        row = {k: ckpt[k] for k in ("dataset", "method", "labels")} | {"seed": ckpt.get("seed", 0)}
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
    from reprise.papers.memorization.metrics import METRICS, Tables

    tables = Tables(labels, finals, separation, measures, best_final)
    write_json(outputs["metrics"], METRICS.compute(tables))


@STEPS.register(inputs=("tables*",), outputs=("figure*",), sections=("plot",))
def figure(params, inputs, outputs, rt):
    """One figure (named by its output file) from its tables, concatenated."""
    from reprise.papers.memorization.figures import FIGURES
    from reprise.plots import save_figure, use_style

    draw = FIGURES[outputs["figure"][0].stem]
    opts = use_style(params["plot"])
    table = pd.concat([read_table(p) for p in inputs["tables"]], ignore_index=True)
    save_figure(draw(table), outputs["figure"], opts)
