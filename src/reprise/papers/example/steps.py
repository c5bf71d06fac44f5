"""Steps of the example paper: train -> evaluate -> figures."""

from __future__ import annotations

import logging

import pandas as pd
import torch
import torch.nn.functional as F

from reprise.data.prepared import load_split
from reprise.io import load_checkpoint, read_table, save_checkpoint, write_json, write_table
from reprise.papers.example import METRICS
from reprise.steps import Steps

STEPS = Steps()
log = logging.getLogger("reprise")


def _model(num_features: int, num_classes: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(num_features, num_classes))


def _load(path, params):
    """A split at the configured resolution (the digits are 8×8; `data.size` resizes them)."""
    return load_split(path, size=params.get("data", {}).get("size"))


@STEPS.register(inputs=("train",), outputs=("model", "history"))
def train(params, inputs, outputs, rt):
    """Full-batch softmax regression on the training split, resumable after every epoch."""
    cfg = params["train"]
    d = _load(inputs["train"], params)
    model = _model(d.x[0].numel(), d.num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9)
    rows = []
    if (state := rt.resume.load()) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        rows = state["history"]
        log.info("resumed from epoch %d of %d", len(rows), cfg["epochs"])
    for epoch in range(len(rows), cfg["epochs"]):
        opt.zero_grad()
        loss = F.cross_entropy(model(d.x), d.y)
        loss.backward()
        opt.step()
        rows.append({"epoch": epoch + 1, "train_loss": loss.item()})
        rt.resume.save(
            {"model": model.state_dict(), "optimizer": opt.state_dict(), "history": rows}
        )
    save_checkpoint(outputs["model"], {"model": model.state_dict(), "classes": d.classes})
    write_table(outputs["history"], pd.DataFrame(rows))


@STEPS.register(inputs=("model", "test", "history"), outputs=("metrics", "predictions"))
def evaluate(params, inputs, outputs, rt):
    """Test accuracy and per-sample predictions."""
    d = _load(inputs["test"], params)
    ckpt = load_checkpoint(inputs["model"])
    model = _model(d.x[0].numel(), len(ckpt["classes"]))
    model.load_state_dict(ckpt["model"])
    with torch.no_grad():
        pred = model(d.x).argmax(1)
    history = read_table(inputs["history"])
    metrics = {
        "test_accuracy": (pred == d.y).float().mean().item(),
        "final_train_loss": float(history["train_loss"].iloc[-1]),
    }
    assert set(metrics) == set(METRICS)
    write_table(outputs["predictions"], pd.DataFrame({"label": d.y, "pred": pred}))
    write_json(outputs["metrics"], metrics)


@STEPS.register(inputs=("history", "predictions"), outputs=("loss_curve*", "confusion*"))
def figures(params, inputs, outputs, rt):
    """Training-loss curve and test confusion matrix."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from reprise.plots import save_figure, use_style

    opts = use_style(params.get("plot"))
    h = read_table(inputs["history"])
    fig, ax = plt.subplots(figsize=(4, 3))
    sns.lineplot(h, x="epoch", y="train_loss", ax=ax)
    ax.set(title="example: training loss", yscale="log")
    save_figure(fig, outputs["loss_curve"][0].with_suffix(""), opts)
    p = read_table(inputs["predictions"])
    fig, ax = plt.subplots(figsize=(4, 3.5))
    sns.heatmap(pd.crosstab(p["label"], p["pred"]), annot=True, fmt="d", cbar=False, ax=ax)
    ax.set(title="example: test confusion", xlabel="predicted", ylabel="true")
    save_figure(fig, outputs["confusion"][0].with_suffix(""), opts)
