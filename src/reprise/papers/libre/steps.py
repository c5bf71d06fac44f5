"""Steps of libre: pretrain (dnn, transfer) -> finetune (per method) -> transfer | score (per
method, plus the plain dnn's KD/LID) | cost -> evaluate -> figures.

The torch steps import torch and the core inside, so evaluate and figures start without it.
"""

from __future__ import annotations

import logging

import pandas as pd

from reprise.errors import ConfigError
from reprise.io import read_table, write_json, write_table
from reprise.steps import Steps, one

STEPS = Steps()
log = logging.getLogger("reprise")


def _load(path, params, size=None):
    from reprise.training.recipe import load_data

    return load_data(path, params["data"], size)


@STEPS.register(
    inputs=("train", "test"),
    outputs=("model", "history"),
    sections=("data", "networks", "pretrain"),
    torch=True,
    gpu=True,
)
def pretrain(params, inputs, outputs, rt):
    """Train one plain network by the core (the pre-trained DNN, or the independently trained
    network the transfer attacks are crafted on: its own seed); or, with `pretrained: <file>`,
    take torchvision's published ImageNet weights from that file instead of training."""
    import torch

    from reprise.models import build_model, save_model
    from reprise.training import Standard, TrainConfig, fit

    name, net = one(params, "networks")
    if net.get("pretrained"):
        return _published(name, net, params, inputs, outputs, rt)
    seed = rt.seed + net.get("seed_offset", 0)
    torch.manual_seed(seed)
    train, test = _load(inputs["train"], params), _load(inputs["test"], params)
    model = build_model(**net["model"], num_classes=train.num_classes)
    cfg = TrainConfig.from_config(params["pretrain"])
    fit(
        model,
        Standard(),
        train,
        cfg,
        resume=rt.resume,
        history_path=outputs["history"],
        test=test,
        accel=rt.accel(),
        seed=seed,
    )
    save_model(outputs["model"], model, network=name)


def _published(name, net, params, inputs, outputs, rt):
    """The network with published weights (the authors fine-tune torchvision's pre-trained
    ResNet-50 and transfer from its ResNet-152); its history is its accuracy on the first
    pretrain.monitor.test_size test images (all when null)."""
    from reprise.metrics.evaluation import accuracy
    from reprise.models import build_model, save_model
    from reprise.models.pretrained import load_torchvision

    test_size = params["pretrain"].get("monitor", {}).get("test_size")
    test = _load(inputs["test"], params, test_size)
    model = build_model(**net["model"], num_classes=test.num_classes)
    load_torchvision(model, net["pretrained"])
    acc = accuracy(model, test, batch_size=params["pretrain"]["batch_size"], accel=rt.accel())
    log.info("%s: published weights %s, test accuracy %.4f", name, net["pretrained"], acc)
    history = {"epoch": 0, "test_acc": acc, "test_size": len(test), "weights": net["pretrained"]}
    write_table(outputs["history"], pd.DataFrame([history]))
    save_model(outputs["model"], model, network=name, pretrained=str(net["pretrained"]))


@STEPS.register(
    inputs=("dnn", "train", "test"),
    outputs=("model", "history"),
    sections=("data", "methods", "finetune"),
    torch=True,
    gpu=True,
)
def finetune(params, inputs, outputs, rt):
    """Turn the pre-trained DNN into one Bayesian refinement (LiBRe, its ablation, MC dropout,
    mean-field VI) and fine-tune it as LiBRe does."""
    from reprise.models import load_model
    from reprise.papers.libre import model as bayes
    from reprise.papers.libre.finetune import finetune as run

    name, method = one(params, "methods")
    dnn, ckpt = load_model(inputs["dnn"])
    model = bayes.build(method["kind"], dnn, method)
    train, test = _load(inputs["train"], params), _load(inputs["test"], params)
    rows = run(model, train, params["finetune"], method, seed=rt.seed, resume=rt.resume, test=test)
    write_table(outputs["history"], pd.DataFrame(rows).assign(method=name))
    bayes.save(outputs["model"], model, ckpt["spec"], method["kind"], method, method_name=name)


@STEPS.register(
    inputs=("model", "test"),
    outputs=("adversarial",),
    sections=("data", "evaluation"),
    torch=True,
    gpu=True,
)
def transfer(params, inputs, outputs, rt):
    """The transfer attacks: adversarial test inputs crafted on the independently trained
    network (evaluation.transfer names attacks of evaluation.attacks)."""
    import zlib

    import torch

    from reprise.attacks.suite import build_attack
    from reprise.io import save_checkpoint
    from reprise.models import load_model
    from reprise.papers.libre.scoring import attack_all

    cfg = params["evaluation"]
    net, _ = load_model(inputs["model"])
    test = _load(inputs["test"], params, cfg["test_size"])
    out = {}
    for name in cfg["transfer"]:
        if name not in cfg["attacks"]:
            raise ConfigError(f"evaluation.transfer names {name!r}, not an evaluation.attacks key")
        torch.manual_seed(zlib.crc32(name.encode()))
        out[name] = attack_all(
            net.eval(), test, build_attack(name, cfg["attacks"][name]), cfg["batch_size"]
        )
    save_checkpoint(outputs["adversarial"], out)


@STEPS.register(
    inputs=("model", "train", "test", "transfer"),
    outputs=("scores",),
    sections=("data", "detectors", "evaluation"),
    torch=True,
    gpu=True,
)
def score(params, inputs, outputs, rt):
    """Attack one detector's model with every configured attack and score every input."""
    from reprise.io import load_checkpoint
    from reprise.models import load_model
    from reprise.papers.libre import model as bayes
    from reprise.papers.libre.scoring import DNNScores, bayesian_scores, score_method

    method = one(params, "detectors")
    cfg = params["evaluation"]
    test = _load(inputs["test"], params, cfg["test_size"])
    transfer = load_checkpoint(inputs["transfer"])
    if method == "dnn":
        model, _ = load_model(inputs["model"])
        scorer = DNNScores(
            model, _load(inputs["train"], params), cfg["baselines"], cfg["batch_size"]
        )
    else:
        model, _ = bayes.load(inputs["model"])
        scorer = lambda x: bayesian_scores(model, x, cfg["batch_size"])  # noqa: E731
    write_table(outputs["scores"], score_method(method, model.eval(), scorer, test, transfer, cfg))


@STEPS.register(
    inputs=("dnn", "libre", "mc_dropout", "test"),
    outputs=("cost",),
    sections=("data", "cost"),
    torch=True,
    gpu=True,
)
def cost(params, inputs, outputs, rt):
    """Inference time of LiBRe and MC dropout against the DNN on the same batch."""
    from reprise.models import load_model
    from reprise.papers.libre import model as bayes
    from reprise.papers.libre.cost import cost_table

    cfg = params["cost"]
    test = _load(inputs["test"], params)
    x = test.x[: cfg["batch_size"]].to(rt.device)
    models = {"dnn": load_model(inputs["dnn"])[0]}
    models["libre"] = bayes.load(inputs["libre"])[0]
    models["mc_dropout"] = bayes.load(inputs["mc_dropout"])[0]
    models = {k: m.to(rt.device) for k, m in models.items()}
    table = cost_table(models, x, cfg["repeats"])
    log.info("cost: %s", ", ".join(f"{k}={v:.4g}" for k, v in table.items()))
    write_json(outputs["cost"], {**table, "batch_size": len(x), "device": str(rt.device)})


@STEPS.register(
    inputs=("scores*", "cost"),
    outputs=("metrics", "detection", "accuracy"),
    sections=("evaluation",),
)
def evaluate(params, inputs, outputs, rt):
    """The detection table (AUROC, TPR at FPR 1, 5, 10 percent), clean accuracy, metrics."""
    import json

    from reprise.papers.libre import analysis
    from reprise.papers.libre.metrics import METRICS

    scores = pd.concat([read_table(p) for p in inputs["scores"]], ignore_index=True)
    detection = analysis.detection_table(scores)
    accuracy = analysis.clean_accuracy(scores)
    cost = json.loads(inputs["cost"].read_text())
    write_table(outputs["detection"], detection)
    write_table(outputs["accuracy"], accuracy)
    cfg = params["evaluation"]
    tables = {"detection": detection, "accuracy": accuracy, "cost": cost, "evaluation": cfg}
    write_json(outputs["metrics"], METRICS.compute(tables))


FIGURES = ("auroc_table", "tpr", "densities", "roc", "cost")


@STEPS.register(
    inputs=("scores*", "detection", "cost"),
    outputs=tuple(f"{name}*" for name in FIGURES),
    sections=("plot",),
)
def figures(params, inputs, outputs, rt):
    """AUROC table (authors' layout), TPR at FPR 1, 5, 10 percent, uncertainty densities,
    ROC curves and the cost table."""
    import json

    from reprise.papers.libre import figures as fig
    from reprise.plots import save_figure, use_style

    opts = use_style(params.get("plot"))
    scores = pd.concat([read_table(p) for p in inputs["scores"]], ignore_index=True)
    detection = read_table(inputs["detection"])
    made = {
        "auroc_table": fig.auroc_table(detection),
        "tpr": fig.tpr_table(detection),
        "densities": fig.densities(scores),
        "roc": fig.roc_curves(scores),
        "cost": fig.cost_table(json.loads(inputs["cost"].read_text())),
    }
    for name, figure in made.items():
        save_figure(figure, outputs[name], opts)
