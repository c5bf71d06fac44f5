"""Steps of rejection: corrupt (smoke) | train -> score (per backbone and run) -> evaluate
-> figures.

`train` and `score` get the config narrowed to one backbone and one run (`backbones` with
one entry, `runs` with one name), so editing one run retrains only that one.
"""

from __future__ import annotations

import logging

import pandas as pd

from reprise.errors import ConfigError
from reprise.io import read_table, write_json, write_table
from reprise.papers.rejection import analysis
from reprise.papers.rejection.runs import parse_run
from reprise.steps import Steps

# The torch steps (train, corrupt, score) import the core and torch inside, so that
# evaluate and figures start without torch (~2.5 s a process).

STEPS = Steps()
log = logging.getLogger("reprise")


def _load(path, params):
    """A prepared split (an ImageData) as the config's `data:` section says."""
    from reprise.data.prepared import load_split

    d = params["data"]
    return load_split(path, size=d.get("size"), channels=d.get("channels"))


def _one_run(params) -> tuple[str, dict, str]:
    """(backbone name, its model section, run name) of a narrowed config."""
    if len(params["backbones"]) != 1 or len(params["runs"]) != 1:
        raise ConfigError("this step takes one backbone and one run (the rule narrows them)")
    (backbone, model_cfg), run = next(iter(params["backbones"].items())), params["runs"][0]
    return backbone, model_cfg, run


def make_method(framework: str, rr: bool, params):
    from reprise.attacks import PGD
    from reprise.papers.rejection.rr import RectifiedRejection
    from reprise.training import CCAT, PGDAT, TRADES

    hooks = []
    if rr:
        cfg = params["rr"]
        hooks.append(RectifiedRejection(cfg["lambda"], cfg["stop_gradient"]))
    attack = PGD.from_config(params["attack"])
    if framework == "pgd_at":
        return PGDAT(attack, hooks=hooks)
    if framework == "trades":
        return TRADES(attack, beta=params["frameworks"]["trades"]["beta"], hooks=hooks)
    cfg = params["frameworks"]["ccat"]
    return CCAT(PGD.from_config(cfg["attack"]), cfg["rho"], cfg["ratio"], hooks=hooks)


@STEPS.register(inputs=("train", "test"), outputs=("model", "history"), torch=True)
def train(params, inputs, outputs, rt):
    """Adversarial training of one backbone by one framework, ± the RR head; keeps the
    checkpoint of best robust test accuracy when train.monitor.best_by says so (the paper)."""
    from reprise.attacks import PGD
    from reprise.models import build_model, load_model, save_model
    from reprise.training import BEST, TrainConfig, fit

    backbone, model_cfg, run = _one_run(params)
    framework, rr = parse_run(run)
    train_data, test = _load(inputs["train"], params), _load(inputs["test"], params)
    aux = dict(params["rr"]["head"]) if rr else None
    model = build_model(**model_cfg, num_classes=train_data.num_classes, aux_head=aux)
    cfg = TrainConfig.from_config(params["train"])
    if rt.resume.directory is None:
        raise ConfigError("rejection train needs a resume directory (run it through the CLI)")
    fit(
        model,
        make_method(framework, rr, params),
        train_data,
        cfg,
        ckpt_dir=rt.resume.directory,
        history_path=outputs["history"],
        test=test,
        attack=PGD.from_config(params["attack"]),
        accel=rt.accel(**params.get("accel", {})),
        seed=rt.seed,
    )
    best = rt.resume.directory / BEST
    if cfg.monitor.best_by is not None and best.is_file():
        model, meta = load_model(best)
        best_at = f"{meta['metric']} = {meta['value']:.4f} at epoch {meta['epoch']}"
        log.info("%s/%s: keeping the best checkpoint, %s", backbone, run, best_at)
        save_model(outputs["model"], model, epoch=meta["epoch"], run=run, backbone=backbone)
    else:
        save_model(outputs["model"], model, epoch=cfg.epochs, run=run, backbone=backbone)


@STEPS.register(inputs=("test",), outputs=("corrupted*",), torch=True)
def corrupt(params, inputs, outputs, rt):
    """The procedural corruptions of the test split, one prepared split file each, named
    <corruption>-<severity>.pt (the smoke stand-in for CIFAR-10-C)."""
    import torch

    from reprise.data.prepared import save_split
    from reprise.papers.rejection.corruptions import corrupt as apply_corruption
    from reprise.papers.rejection.corruptions import split_name

    cfg = params["corruptions"]
    if cfg["source"] != "procedural":
        raise ConfigError(f"corruptions.source = {cfg['source']!r}: only 'procedural' is made here")
    test = _load(inputs["test"], params)
    wanted = {split_name(c, s): (c, s) for c in cfg["names"] for s in cfg["severities"]}
    for path in outputs["corrupted"]:
        if path.stem not in wanted:
            raise ConfigError(f"--output corrupted {path}: not one of {', '.join(wanted)}")
        x = apply_corruption(test.x, *wanted[path.stem], seed=rt.seed)
        save_split(path, (x * 255).round().to(torch.uint8), test.y, test.classes)


@STEPS.register(inputs=("model", "train", "test", "corrupted*"), outputs=("scores",), torch=True)
def score(params, inputs, outputs, rt):
    """Every score (Con, R-Con, T-Con, energy, KD, LID, GDA) of every input of one model:
    calibration (training) inputs, clean and attacked test inputs, corrupted test inputs."""
    import torch

    from reprise.models import load_model
    from reprise.papers.rejection.scoring import score_model

    backbone, _, run = _one_run(params)
    framework, rr = parse_run(run)
    model, _ = load_model(inputs["model"])
    cfg = params["evaluation"]
    accel = rt.accel(**params.get("accel", {}))
    model = accel.model(model)
    test = _load(inputs["test"], params).subset(cfg["test_size"])
    corrupted = {p.stem: _load(p, params).subset(cfg["test_size"]) for p in inputs["corrupted"]}
    for name, data in corrupted.items():
        if not torch.equal(data.y, test.y):
            raise ConfigError(f"corrupted split {name} does not hold the test labels in order")
    train_data = _load(inputs["train"], params)
    source = params["corruptions"]["source"]
    table = score_model(model, train_data, test, corrupted, cfg, accel, source)
    table = table.assign(backbone=backbone, run=run, framework=framework, rr=rr)
    write_table(outputs["scores"], table)


@STEPS.register(
    inputs=("scores*",),
    outputs=("metrics", "detection", "acceptance", "rules", "auc", "gains", "corruptions"),
)
def evaluate(params, inputs, outputs, rt):
    """The detection (AUC), acceptance, rules, AUC-gain and corruption tables, and
    metrics.json."""
    scores = pd.concat([read_table(p) for p in inputs["scores"]], ignore_index=True)
    cfg = params["evaluation"]
    tprs = cfg["tprs"]
    detection = analysis.detection_table(scores)
    acceptance = analysis.acceptance_table(scores, tprs)
    rules = analysis.rules_table(acceptance, scores, tprs[0])
    gains = analysis.gain_table(scores, cfg["bootstrap"], seed=rt.seed)
    primary = next(iter(params["backbones"]))
    metrics = analysis.metrics(detection, acceptance, rules, gains, scores, primary, tprs[0])
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
)
def figures(params, inputs, outputs, rt):
    """Histograms of Con/R-Con, ROC curves, the AUC table, accuracy vs rejection rate, the
    corruption AUCs and the training curves."""
    from reprise.papers.rejection import figures as fig
    from reprise.plots import save_figure, use_style

    opts = use_style(params.get("plot"))
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
        save_figure(figure, outputs[name][0].with_suffix(""), opts)
