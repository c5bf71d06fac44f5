"""Steps of rejection: corrupt (smoke) | train -> score (per backbone and run) -> evaluate
-> figures.

`train` and `score` get the config narrowed to one backbone and one run (`backbones` with
one entry, `runs` with one name), so editing one run retrains only that one.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pandas as pd

from reprise.errors import ConfigError
from reprise.io import read_table, write_json, write_table
from reprise.papers.rejection import analysis
from reprise.steps import Steps, one

# The torch steps (train, corrupt, score) import the core and torch inside, so that
# evaluate and figures start without torch (~2.5 s a process).

STEPS = Steps()
log = logging.getLogger("reprise")


def make_method(method: str, rr: bool, params):
    """The run's core method (the recipe), with the RR head's loss as a hook when `rr`."""
    from reprise.papers.rejection.rr import RectifiedRejection
    from reprise.training.recipe import build_method

    hooks = []
    if rr:
        cfg = params["rr"]
        hooks.append(RectifiedRejection(cfg["lambda"], cfg["stop_gradient"]))
    settings = params["methods"]
    return build_method(
        method, params["attack"], trades=settings["trades"], ccat=settings["ccat"], hooks=hooks
    )


def parse_run(run: str) -> tuple[str, bool]:
    """'trades_rr' -> ('trades', True): an AT method, optionally with the RR head."""
    from reprise.training.recipe import parse_run as split

    method, addons = split(run, ("rr",))
    return method, "rr" in addons


@STEPS.register(
    inputs=("train", "test"),
    outputs=("model", "history"),
    sections=("backbones", "runs", "data", "train", "attack", "methods", "rr", "accel"),
    torch=True,
    gpu=True,
)
def train(params, inputs, outputs, rt):
    """Adversarial training of one backbone by one method, ± the RR head; keeps the
    checkpoint of best robust test accuracy when train.monitor.best_by says so (the paper)."""
    from reprise.attacks import PGD
    from reprise.models import build_model, save_model
    from reprise.training import TrainConfig, fit
    from reprise.training.recipe import load_data

    (backbone, model_cfg), run = one(params, "backbones"), one(params, "runs")
    method, rr = parse_run(run)
    train_data = load_data(inputs["train"], params["data"])
    test = load_data(inputs["test"], params["data"])
    aux = dict(params["rr"]["head"]) if rr else None
    model = build_model(**model_cfg, num_classes=train_data.num_classes, aux_head=aux)
    cfg = TrainConfig.from_config(params["train"])
    fitted = fit(
        model,
        make_method(method, rr, params),
        train_data,
        cfg,
        resume=rt.resume,
        history_path=outputs["history"],
        test=test,
        attack=PGD.from_config(params["attack"]),
        accel=rt.accel(**params.get("accel", {})),
        seed=rt.seed,
    )
    best = fitted.best
    if best is not None:
        model.load_state_dict(best["state_dict"])
        best_at = f"{best['metric']} = {best['value']:.4f} at epoch {best['epoch']}"
        log.info("%s/%s: keeping the best checkpoint, %s", backbone, run, best_at)
        save_model(outputs["model"], model, epoch=best["epoch"], run=run, backbone=backbone)
    else:
        save_model(outputs["model"], model, epoch=cfg.epochs, run=run, backbone=backbone)


@STEPS.register(
    inputs=("test",), outputs=("corrupted*",), sections=("data", "corruptions"), torch=True
)
def corrupt(params, inputs, outputs, rt):
    """The procedural corruptions of the test split, one prepared split file each, named
    <corruption>-<severity>.pt (the smoke stand-in for CIFAR-10-C)."""
    import torch

    from reprise.data.prepared import save_split
    from reprise.papers.rejection.corruptions import corrupt as apply_corruption
    from reprise.papers.rejection.corruptions import split_name
    from reprise.training.recipe import load_data

    cfg = params["corruptions"]
    if cfg["source"] != "procedural":
        raise ConfigError(f"corruptions.source = {cfg['source']!r}: only 'procedural' is made here")
    test = load_data(inputs["test"], params["data"])
    wanted = {split_name(c, s): (c, s) for c in cfg["names"] for s in cfg["severities"]}
    for path in outputs["corrupted"]:
        if path.stem not in wanted:
            raise ConfigError(f"--output corrupted {path}: not one of {', '.join(wanted)}")
        x = apply_corruption(test.x, *wanted[path.stem], seed=rt.seed)
        save_split(path, (x * 255).round().to(torch.uint8), test.y, test.classes)


@STEPS.register(
    inputs=("model", "train", "test", "corrupted*"),
    outputs=("scores",),
    sections=("backbones", "runs", "data", "evaluation", "corruptions", "accel"),
    torch=True,
    gpu=True,
)
def score(params, inputs, outputs, rt):
    """Every score (Con, R-Con, T-Con, energy, KD, LID, GDA) of every input of one model:
    calibration (training) inputs, clean and attacked test inputs, corrupted test inputs."""
    import torch

    from reprise.models import load_model
    from reprise.papers.rejection.scoring import score_model
    from reprise.training.recipe import load_data

    (backbone, _), run = one(params, "backbones"), one(params, "runs")
    method, rr = parse_run(run)
    model, _ = load_model(inputs["model"])
    cfg = params["evaluation"]
    # Only training may use bf16: scores, thresholds and attacks run in fp32 (Con and R-Con
    # from bf16 logits keep ~3 significant digits: AUC ties).
    accel = replace(rt.accel(**params.get("accel", {})), bf16=False)
    model = accel.model(model)
    test = load_data(inputs["test"], params["data"], cfg["test_size"])
    corrupted = {
        p.stem: load_data(p, params["data"], cfg["test_size"]) for p in inputs["corrupted"]
    }
    for name, data in corrupted.items():
        if not torch.equal(data.y, test.y):
            raise ConfigError(f"corrupted split {name} does not hold the test labels in order")
    train_data = load_data(inputs["train"], params["data"])
    source = params["corruptions"]["source"]
    table = score_model(model, train_data, test, corrupted, cfg, accel, source)
    table = table.assign(backbone=backbone, run=run, method=method, rr=rr)
    write_table(outputs["scores"], table)


@STEPS.register(
    inputs=("scores*",),
    outputs=("metrics", "detection", "acceptance", "rules", "auc", "gains", "corruptions"),
    sections=("backbones", "data", "evaluation"),
)
def evaluate(params, inputs, outputs, rt):
    """The detection (AUC), acceptance, rules, AUC-gain and corruption tables, and
    metrics.json (of the first backbone; the metrics of another dataset of its first)."""
    scores = pd.concat([read_table(p) for p in inputs["scores"]], ignore_index=True)
    cfg = params["evaluation"]
    tprs = cfg["tprs"]
    detection = analysis.detection_table(scores)
    acceptance = analysis.acceptance_table(scores, tprs)
    rules = analysis.rules_table(acceptance, scores, tprs[0])
    gains = analysis.gain_table(scores, cfg["bootstrap"], seed=rt.seed)
    from reprise.papers.rejection import backbone_datasets
    from reprise.papers.rejection.metrics import METRICS, TPR95, Tables

    if TPR95 not in tprs:
        raise ConfigError(f"evaluation.tprs = {tprs} must include {TPR95} (the paper's TPR)")
    every = dict(
        detection=detection, acceptance=acceptance, rules=rules, gains=gains, scores=scores
    )
    first: dict[str, str] = {}  # dataset -> its first backbone; the primary dataset's first
    for backbone, dataset in backbone_datasets(params["data"], params["backbones"]).items():
        first.setdefault(dataset, backbone)
    tables = Tables.of_backbone(first.pop(params["data"]["dataset"]), **every)
    tables.others = {d: Tables.of_backbone(b, **every) for d, b in first.items()}
    metrics = METRICS.compute(tables)
    write_table(outputs["gains"], gains)
    write_table(outputs["detection"], detection)
    write_table(outputs["acceptance"], acceptance)
    write_table(outputs["rules"], rules)
    write_table(outputs["auc"], analysis.auc_table(detection))
    write_table(outputs["corruptions"], analysis.corruption_table(detection, acceptance, tprs[0]))
    write_json(outputs["metrics"], metrics)


FIGURES = ("histograms", "roc", "auc_table", "accuracy_rejection", "corruptions", "training")


@STEPS.register(
    inputs=("scores*", "auc", "corruptions", "histories*"),
    outputs=tuple(f"{name}*" for name in FIGURES),
    sections=("plot",),
)
def figures(params, inputs, outputs, rt):
    """Histograms of Con/R-Con, ROC curves, the AUC table, accuracy vs rejection rate, the
    corruption AUCs and the training curves."""
    from reprise.papers.rejection import figures as fig
    from reprise.plots import save_figure, use_style

    opts = use_style(params["plot"])
    scores = pd.concat([read_table(p) for p in inputs["scores"]], ignore_index=True)
    histories = {f"{p.parent.name} {p.stem}": read_table(p) for p in inputs["histories"]}
    made = {
        "histograms": fig.histograms(scores),
        "roc": fig.roc_curves(scores),
        "auc_table": fig.auc_heatmap(read_table(inputs["auc"])),
        "accuracy_rejection": fig.accuracy_rejection(scores),
        "corruptions": fig.corruption_plot(read_table(inputs["corruptions"])),
        "training": fig.training_curves(histories),
    }
    for name, figure in made.items():
        save_figure(figure, outputs[name], opts)
