"""Steps of the example paper: train -> evaluate -> figures."""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from reprise.data.prepared import load_split
from reprise.io import load_checkpoint, read_table, save_checkpoint, write_json, write_table
from reprise.papers.example import METRICS
from reprise.steps import Steps

STEPS = Steps()


def _model(num_features: int, num_classes: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(num_features, num_classes))


@STEPS.register(inputs=("train",), outputs=("model", "history"))
def train(params, inputs, outputs, rt):
    """Full-batch softmax regression on the training split."""
    cfg = params["train"]
    d = load_split(inputs["train"])
    model = _model(d.x[0].numel(), d.num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9)
    rows = []
    for epoch in range(cfg["epochs"]):
        opt.zero_grad()
        loss = F.cross_entropy(model(d.x), d.y)
        loss.backward()
        opt.step()
        rows.append({"epoch": epoch + 1, "train_loss": loss.item()})
    save_checkpoint(outputs["model"], {"model": model.state_dict(), "classes": d.classes})
    write_table(outputs["history"], pd.DataFrame(rows))


@STEPS.register(inputs=("model", "test", "history"), outputs=("metrics", "predictions"))
def evaluate(params, inputs, outputs, rt):
    """Test accuracy and per-sample predictions."""
    d = load_split(inputs["test"])
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
