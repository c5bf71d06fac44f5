"""Every score of every input a model is judged on: one table row per (input set, sample).

Input sets of one model (column `split`):
- calibration: held-out training inputs, clean and under the calibration attack; the
  thresholds are chosen on them (never on test data). The rest of the training split is the
  reference set the feature baselines are fitted on.
- test: clean test inputs and each configured attack; adaptive attacks once against Con and,
  for a model with an RR head, once against R-Con (column `adapted_to`).
- corruption: each corrupted test split (CIFAR-10-C, or the procedural stand-in).

Attacks (config `evaluation.attacks`, each optional but `pgd`):
- pgd, pgd_cw: the core PGD with the CE or the CW loss (any step count); `pgd` is also the
  calibration attack and the one the headline metrics read.
- multitarget: PGD on the margin to each wrong class in turn, the worst kept.
- adaptive_pgd: PGD that also maximises λ·BCE(S(x), T-Con(x)) for the attacked score S
  (Con or R-Con), as Pang et al.'s code does: on misclassified inputs this drives S up.
- autoattack: Croce and Hein's AutoAttack (their pyautoattack code), `kind: autoattack`;
  the undefended (no rejection) robust accuracy the field reports.
- adaptive_cw: Carlini-Wagner whose goal is misclassified AND S above its threshold t (the
  median S of correctly classified clean calibration inputs, as in the paper's code): the
  penalty max(t − S, 0) joins the margin term.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from reprise.attacks import CW, PGD, attack_dataset, forward, multitarget
from reprise.data.prepared import ImageData
from reprise.errors import ConfigError
from reprise.metrics.detectors import FeatureBaselines, energy
from reprise.models.base import evaluating
from reprise.papers.rejection.rr import bce, confidences, has_rr_head, rectified
from reprise.runtime import progress

log = logging.getLogger("reprise")


def adaptive_targets(model) -> tuple[str, ...]:
    return ("con", "rcon") if has_rr_head(model) else ("con",)


def score_of(model, out, con: torch.Tensor, target: str) -> torch.Tensor:
    return rectified(con, model.aux(out.features)) if target == "rcon" else con


def adaptive_bce(model, y, target: str, lam: float):
    """PGD extra term: λ·BCE(S, detach(T-Con)) per sample, S = Con or R-Con."""

    def extra(out, x_adv):
        con, tcon, _ = confidences(out.logits, y)
        s = score_of(model, out, con, target)
        return lam * bce(s, tcon.detach())

    return extra


def below_threshold(model, target: str, threshold: float):
    """CW penalty: how far S is below the threshold (0 once accepted)."""

    def penalty(out, x_adv):
        con = F.softmax(out.logits.float(), dim=1).amax(1)
        return (threshold - score_of(model, out, con, target)).clamp(min=0)

    return penalty


def make_attack(name: str, spec: dict, num_classes: int, target=None, threshold=None):
    """(model, x, y) -> x_adv for one configured attack (and adaptive target)."""
    if spec.get("kind") == "autoattack":
        from reprise.attacks.autoattack import AutoAttack

        return AutoAttack.from_config({k: v for k, v in spec.items() if k != "kind"})
    if name == "adaptive_cw":
        cw = CW.from_config(spec)
        return lambda model, x, y: cw(
            model, x, y, penalty=below_threshold(model, target, threshold)
        )
    if name == "adaptive_pgd":
        pgd, lam = PGD.from_config(spec["pgd"]), spec["lambda"]
        return lambda model, x, y: pgd(model, x, y, extra=adaptive_bce(model, y, target, lam))
    pgd = PGD.from_config(spec)
    if name == "multitarget":
        return lambda model, x, y: multitarget(model, x, y, pgd, num_classes)
    return pgd


@torch.no_grad()
def outputs(model, x: torch.Tensor, batch_size: int, accel):
    """Logits, features and RR-head logits (None without a head) of x, on the CPU."""
    logits, feats, aux = [], [], []
    with evaluating(model):
        for i in range(0, len(x), batch_size):
            with accel.autocast():
                out = forward(model, accel.batch(x[i : i + batch_size]))
                logits.append(out.logits.float().cpu())
                feats.append(out.features.float().cpu())
                if has_rr_head(model):
                    aux.append(model.aux(out.features).float().cpu())
    cat = lambda t: torch.cat(t) if t else None  # noqa: E731
    return cat(logits), cat(feats), cat(aux)


def score_table(model, data: ImageData, x_clean, baselines, cfg, accel) -> pd.DataFrame:
    """One row per sample of `data` (its inputs already attacked or corrupted)."""
    logits, features, aux = outputs(model, data.x, cfg["batch_size"], accel)
    con, tcon, pred = confidences(logits, data.y)
    cols = {
        "idx": np.arange(len(data)),
        "y": data.y.numpy(),
        "pred": pred.numpy(),
        "correct": (pred == data.y).numpy(),
        "con": con.numpy(),
        "tcon": tcon.numpy(),
        "rcon": rectified(con, aux).numpy() if aux is not None else np.full(len(data), np.nan),
        "energy": energy(logits).numpy(),
        **{k: v.numpy() for k, v in baselines.scores(features, pred).items()},
        "linf": (data.x - x_clean).flatten(1).abs().amax(1).numpy(),
    }
    return pd.DataFrame(cols)


def split_train(train: ImageData, calibration_size: int) -> tuple[ImageData, ImageData]:
    """(references, calibration): the last `calibration_size` training samples calibrate."""
    if not 0 < calibration_size < len(train):
        raise ConfigError(
            f"evaluation.calibration_size = {calibration_size}; expected 1..{len(train) - 1} "
            f"(the training split has {len(train)} samples)"
        )
    cut = len(train) - calibration_size
    part = lambda s: ImageData(train.x[s], train.y[s], train.classes)  # noqa: E731
    return part(slice(0, cut)), part(slice(cut, None))


def score_model(model, train, test, corrupted: dict, cfg: dict, accel, source: str):
    """The whole per-sample table of one model (see the module docstring)."""
    bs, k = cfg["batch_size"], test.num_classes
    refs, cal = split_train(train, cfg["calibration_size"])
    logits, features, _ = outputs(model, refs.x, bs, accel)
    ref_correct = logits.argmax(1) == refs.y
    baselines = FeatureBaselines.fit(features, refs.y, ref_correct, cfg["baselines"])
    frames = []

    def add(split, name, data, clean, src, adapted_to=""):
        table = score_table(model, data, clean, baselines, cfg, accel)
        frames.append(table.assign(split=split, input=name, source=src, adapted_to=adapted_to))
        tag = f"{split} {name}" + (f" against {adapted_to}" if adapted_to else "")
        log.info("%s: accuracy %.3f", tag, table["correct"].mean())
        return table

    def attacked(data, attack):
        x_adv = attack_dataset(model, data, attack, batch_size=bs, accel=accel)
        return ImageData(x_adv, data.y, data.classes)

    attacks = cfg["attacks"]
    cal_clean = add("calibration", "clean", cal, cal.x, "clean")
    add("calibration", "pgd", attacked(cal, make_attack("pgd", attacks["pgd"], k)), cal.x, "attack")
    add("test", "clean", test, test.x, "clean")
    right = cal_clean[cal_clean["correct"]]
    jobs = [
        (name, spec, target)
        for name, spec in attacks.items()
        for target in (adaptive_targets(model) if name.startswith("adaptive") else ("",))
    ]
    for name, spec, target in progress(jobs, desc="attacks", unit="attack"):
        threshold = float(right[target].median()) if target and len(right) else None
        attack = make_attack(name, spec, k, target or None, threshold)
        add("test", name, attacked(test, attack), test.x, "attack", target)
    for name, data in corrupted.items():
        add("corruption", name, data, test.x, source)
    return pd.concat(frames, ignore_index=True)
