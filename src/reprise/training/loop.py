"""The training loop: epochs of a method over an ImageData, resumable and deterministic.

After every epoch it appends a row to the metrics table (written as Parquet + CSV) and saves
the step's resume state (`rt.resume`, the one resume path of every long loop): model,
optimiser, schedule, the method's per-sample state, RNG states, the rows so far, the best
checkpoint so far and the epoch. A run killed at any point and started again continues from
that state and ends with the same weights and table as an uninterrupted run: the data order
and augmentation of an epoch derive from (seed, epoch) alone, and everything else random
draws from the global generators, whose states the resume state restores.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from reprise.data.prepared import ImageData
from reprise.errors import ConfigError
from reprise.io import write_table
from reprise.metrics import accuracy
from reprise.resume import Resume
from reprise.runtime import Accel, progress
from reprise.training.augment import crop_flip
from reprise.training.config import TrainConfig
from reprise.training.methods import Batch, Method
from reprise.training.state import rng_state, set_rng_state

log = logging.getLogger(__name__)

DEVICE_DATA_FRACTION = 0.25  # keep a dataset on the GPU when it takes at most this share


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator fixed by (seed, epoch): the epoch's order and augmentation."""
    digest = hashlib.sha256(f"reprise-epoch:{seed}:{epoch}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def on_device(data: ImageData | None, accel: Accel) -> ImageData | None:
    """The whole dataset on the accelerator when it fits (CIFAR does): no loader needed."""
    if data is None or accel.device.type != "cuda":
        return data
    total = torch.cuda.get_device_properties(accel.device).total_memory
    if data.x.numel() * data.x.element_size() > DEVICE_DATA_FRACTION * total:
        return data
    return ImageData(accel.batch(data.x), data.y.to(accel.device), data.classes)


@dataclass
class Fitted:
    """What `fit` returns: the per-epoch table and, when `monitor.best_by` is set, the best
    epoch's checkpoint ({"epoch", "metric", "value", "state_dict"})."""

    history: pd.DataFrame
    best: dict | None


def fit(
    model: torch.nn.Module,
    method: Method,
    train: ImageData,
    cfg: TrainConfig,
    *,
    resume: Resume,
    history_path: str | Path | None = None,
    test: ImageData | None = None,
    attack=None,
    accel: Accel | None = None,
    seed: int = 0,
    run_config: dict | None = None,
) -> Fitted:
    """Train `model` in place for cfg.epochs epochs, resuming from `resume` (a step's
    `rt.resume`; `Resume()` keeps no state).

    `attack` (a PGD) gives the robust columns of the table; `run_config` (plain values) is
    any further setting that makes a saved state belong to this run."""
    accel = accel or Accel.cpu()
    model = accel.model(model)
    opt = torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        nesterov=cfg.nesterov,
    )
    fingerprint = _fingerprint(cfg, method, model, train, seed, run_config)
    start, rows, best = _resume(resume, fingerprint, model, opt, method)
    if attack is not None:  # the monitor measures: eval mode, whatever the training attack's
        attack = replace(attack, bn="eval")
    train_dev, test_dev = on_device(train, accel), on_device(test, accel)
    for epoch in progress(range(start, cfg.epochs), desc="epochs", initial=start, total=cfg.epochs):
        t0 = time.perf_counter()
        lr = cfg.schedule.lr(cfg.lr, epoch, cfg.epochs)
        for group in opt.param_groups:
            group["lr"] = lr
        method.start_epoch(model, train, epoch)
        row = {"epoch": epoch + 1, "lr": lr}
        row |= _train_epoch(model, method, opt, train_dev, cfg, accel, seed, epoch)
        row |= _evaluate(model, train_dev, test_dev, attack, cfg, accel)
        row |= method.epoch_metrics()
        rows.append(row)
        best = _keep_best(model, row, cfg.monitor.best_by, best)
        resume.save(
            {
                "epoch": epoch + 1,
                "fit": fingerprint,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": {"config": cfg.as_dict()["schedule"], "lr": lr},
                "method": method.state_dict(),
                "rng": rng_state(),
                "history": rows,
                "best": best,
            },
        )
        if history_path is not None:
            write_table(history_path, pd.DataFrame(rows))
        log.info(
            "epoch %d/%d (%.1fs): %s",
            epoch + 1,
            cfg.epochs,
            time.perf_counter() - t0,
            ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"),
        )
    table = pd.DataFrame(rows)
    if history_path is not None and start == cfg.epochs:  # a finished run: the table again
        write_table(history_path, table)
    return Fitted(table, best or None)


def _train_epoch(model, method, opt, data, cfg, accel, seed, epoch) -> dict:
    gen = epoch_generator(seed, epoch)
    order = torch.randperm(len(data), generator=gen)
    model.train()
    # sums stay on the device (float64): no host sync per batch
    loss_sum = torch.zeros((), dtype=torch.float64, device=accel.device)
    grad_sq_sum = torch.zeros_like(loss_sum)
    for i in range(0, len(order), cfg.batch_size):
        idx = order[i : i + cfg.batch_size].to(data.x.device)
        x = crop_flip(data.x[idx], gen, cfg.augment.crop, cfg.augment.flip)
        batch = Batch(accel.batch(x), data.y[idx].to(accel.device), idx, epoch)
        with accel.autocast():
            loss = method.loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.monitor.grad_norm:
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            grad_sq_sum += sum(g.double().pow(2).sum() for g in grads)
        opt.step()
        loss_sum += loss.detach().double() * len(idx)
    out = {"loss": loss_sum.item() / max(len(order), 1)}
    if cfg.monitor.grad_norm:
        out["grad_norm_sq"] = grad_sq_sum.item() / max(math.ceil(len(order) / cfg.batch_size), 1)
    return out


def _evaluate(model, train, test, attack, cfg, accel) -> dict:
    m = cfg.monitor
    row = {}
    for split, data, size in (("train", train, m.train_size), ("test", test, m.test_size)):
        if data is None or size == 0:
            continue
        data = data.subset(size)
        row[f"{split}_clean_acc"] = accuracy(model, data, batch_size=m.batch_size, accel=accel)
        if attack is not None:
            row[f"{split}_robust_acc"] = accuracy(
                model, data, attack=attack, batch_size=m.batch_size, accel=accel
            )
    return row


def _keep_best(model, row: dict, best_by: str | None, best: dict) -> dict:
    if best_by is None:
        return best
    if best_by not in row:
        raise ConfigError(
            f"train.monitor.best_by = {best_by!r} is not a column of the epoch table; "
            f"columns: {', '.join(row)}"
        )
    if best and row[best_by] <= best["value"]:
        return best
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {
        "epoch": row["epoch"],
        "metric": best_by,
        "value": float(row[best_by]),
        "state_dict": weights,
    }


def _fingerprint(cfg: TrainConfig, method: Method, model, train: ImageData, seed, run_config):
    """What makes a checkpoint belong to this run (a stale one is not resumed)."""
    labels = hashlib.sha256(train.y.cpu().numpy().tobytes()).hexdigest()[:16]
    blob = {
        "train": cfg.as_dict(),
        "method": method.config(),
        "model": [[k, list(v.shape)] for k, v in model.state_dict().items()],
        "data": [len(train), list(train.x.shape[1:]), labels],
        "seed": seed,
        "run": run_config or {},
    }
    return json.dumps(blob, sort_keys=True, default=str)


def _resume(resume: Resume, fingerprint: str, model, opt, method) -> tuple[int, list, dict]:
    state = resume.load()
    if state is None:
        return 0, [], {}
    if state.get("fit") != fingerprint:
        log.warning("%s belongs to another configuration: training from scratch", resume.path)
        return 0, [], {}
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    method.load_state_dict(state["method"])
    set_rng_state(state["rng"])
    log.info("resumed from %s after epoch %d", resume.path, state["epoch"])
    return int(state["epoch"]), list(state["history"]), dict(state["best"])
