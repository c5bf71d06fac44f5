"""One run end to end: load its splits, train (resumable), evaluate on the exact ground truth,
keep what the figures need."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reprise.papers.partseg import evaluate as ev
from reprise.papers.partseg import generate
from reprise.papers.partseg.model import centroids
from reprise.papers.partseg.train import fit, images, model_config

log = logging.getLogger("reprise")


def part_centres(parts: torch.Tensor) -> torch.Tensor:
    """Centroid of each part's map where that part wins the argmax, (B, K+1, H, W) ->
    (B, K, 2). The soft map's faint mass spread over the whole image would otherwise pull
    every centroid towards the image centre; a part that wins nowhere keeps its soft
    centroid."""
    fg = parts[:, 1:]
    won = fg * (parts.argmax(1, keepdim=True) == torch.arange(1, parts.shape[1])[:, None, None])
    hard, soft = centroids(won), centroids(fg)
    empty = won.flatten(2).sum(-1, keepdim=True) == 0
    return torch.where(empty, soft, hard)


@torch.no_grad()
def predict(model, data: dict, batch: int = 256) -> dict:
    """Part centroids in pixels (N, K, 2), argmax part labels at image resolution (N, H, W)
    and per-part feature vectors (N, K+1, C) of every image."""
    x = images(data)
    size = x.shape[-1]
    cents, labels, vectors = [], [], []
    for i in range(0, len(x), batch):
        parts, vec = model.features(x[i : i + batch])
        cents.append((part_centres(parts) + 1) / 2 * size)
        up = F.interpolate(parts, size=(size, size), mode="bilinear", align_corners=False)
        labels.append(up.argmax(1).to(torch.uint8))
        vectors.append(vec)
    return {
        "centroids": torch.cat(cents).numpy(),
        "labels": torch.cat(labels).numpy(),
        "vectors": torch.cat(vectors).numpy(),
    }


def load_split(path: Path) -> dict:
    """A generated split (.npz, smoke) or a prepared landmark dataset (.pt, paper scale)."""
    if Path(path).suffix == ".npz":
        return generate.load(path)
    from reprise.data import landmarks

    return landmarks.load(path)


def scores(model, train: dict, test: dict, fit_size: int | None) -> tuple[dict, dict]:
    """The run's scores on the test split (regression fitted on the train split) and the
    test predictions. Landmark scores need landmarks (VOC sheep has none), foreground IoU
    needs masks, the part NMI masks with several parts (None without); visibility flags
    (CUB) leave hidden keypoints out."""
    fit_on = {k: v[:fit_size] for k, v in train.items() if k in ("images", "landmarks", "visible")}
    p_train, p_test = predict(model, fit_on), predict(model, test)
    row = dict.fromkeys(
        ("landmark_error", "foreground_iou", "part_nmi", "part_nmi_chance", "nmi", "ari",
         "nmi_chance")
    )  # fmt: skip
    if "masks" in test:
        row["foreground_iou"] = ev.foreground_iou(p_test["labels"], test["masks"])
        if test["masks"].max() > 1:
            row |= ev.part_scores(p_test["labels"], test["masks"])
    if test["landmarks"].shape[1]:
        vis_tr, vis_te = fit_on.get("visible"), test.get("visible")
        pred = ev.regress_landmarks(
            p_train["centroids"], fit_on["landmarks"], p_test["centroids"], vis_tr
        )
        row["landmark_error"] = ev.landmark_error(pred, test["landmarks"], test["norm"], vis_te)
        labels = ev.keypoint_labels(p_test["labels"], test["landmarks"])
        row |= ev.clustering_scores(labels, vis_te)
    return row, p_test


def run(name: str, run_cfg: dict, model: dict, train: dict, evaluation: dict, paths, rt):
    """Train and evaluate run `name`; returns (model, history, score row, predictions kept)."""
    tr, te = load_split(paths["train"]), load_split(paths["test"])
    cfg = model_config({k: v for k, v in run_cfg.items() if k != "data"}, model)
    net, history = fit(cfg, images(tr), train, rt.seed, rt.resume)
    row, pred = scores(net, tr, te, evaluation.get("fit_size"))
    row = {"run": name, "data": run_cfg["data"], "parts": cfg.parts, **row}
    log.info("%s", row)
    n, m = evaluation["overlay_images"], evaluation["tsne_images"]
    keep = {
        "images": te["images"][:n],
        "labels": pred["labels"][:n],
        "vectors": pred["vectors"][:m],
    }
    return net, history, row, keep


def save_predictions(path: Path, keep: dict) -> None:
    from reprise.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **keep)
