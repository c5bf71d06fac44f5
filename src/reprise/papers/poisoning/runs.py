"""One job of each experiment on the shared core: the data roles, the burn-in, a real-time
attack (online or federated, one variant) and the detection scores.

Data roles, from two prepared splits:
    train split: the trigger batch S_T (its last `trigger_size` images) and the stream (the rest)
    test split:  the validation batch S_val (its first `val_size` images, the poisoner's) and
                 the test set the accuracies are reported on (the rest, at most `test_size`)
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch

from reprise.config import deep_merge
from reprise.data.prepared import ImageData, load_split
from reprise.errors import ConfigError
from reprise.models import build_model, load_model
from reprise.papers.poisoning.attack import PoisonConfig, Poisoner
from reprise.papers.poisoning.realtime import Federated, Online, Stream, Victim, evaluator, simulate
from reprise.steps import one

log = logging.getLogger("reprise")


def roles(train_path: Path, test_path: Path, stream_cfg: dict):
    """(trigger batch, validation batch, stream data, test data) as the module doc says."""
    train, test = load_split(train_path), load_split(test_path)
    n_trig, n_val = stream_cfg["trigger_size"], stream_cfg["val_size"]
    if n_trig >= len(train) or n_val >= len(test):
        raise ConfigError(
            f"stream.trigger_size = {n_trig} and stream.val_size = {n_val} must be smaller than "
            f"the train ({len(train)}) and test ({len(test)}) splits"
        )
    trigger = (train.x[-n_trig:], train.y[-n_trig:])
    stream = ImageData(train.x[:-n_trig], train.y[:-n_trig], train.classes)
    val = ImageData(test.x[:n_val], test.y[:n_val], test.classes)
    rest = ImageData(test.x[n_val:], test.y[n_val:], test.classes).subset(stream_cfg["test_size"])
    return trigger, val, stream, rest


def burn_in_model(model_cfg: dict, norm: str, data: ImageData):
    return build_model(
        **{**model_cfg, "norm": norm, "in_channels": data.x.shape[1]}, num_classes=data.num_classes
    )


def variant_config(section: dict, variants: dict) -> tuple[str, dict]:
    """The job's variant: its overrides merged over the setting's defaults (`section` minus
    the variants), e.g. {norm: bn} or {poison: {eps: 0.0314}}."""
    name, over = one({"variants": variants}, "variants")
    return name, deep_merge(section, over or {})


def attack(kind: str, burn_in: Path, inputs: dict, stream_cfg: dict, cfg: dict, rt, accel):
    """The four runs of one setting and variant: (per-step table, detection batches)."""
    trigger, val, stream_data, test = roles(inputs["train"], inputs["test"], stream_cfg)
    device = accel.device
    model, _ = load_model(burn_in)
    model = accel.model(model)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    norm = "bn" if any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) else "gn"
    if norm != cfg["norm"]:
        raise ConfigError(
            f"{burn_in} is a {norm} model but the variant asks for norm {cfg['norm']}"
        )
    on = lambda b: tuple(t.to(device) for t in b)  # noqa: E731
    poisoner = Poisoner(
        PoisonConfig.from_config(cfg.get("poison", {"eps": 0.0})),
        on(trigger),
        on((val.x, val.y)),
    )
    stream = Stream(stream_data, stream_cfg["batch_size"], rt.seed)
    if kind == "online":
        setting, steps = Online(stream, poisoner), cfg["max_steps"]
    else:
        setting = Federated(
            stream, poisoner, cfg["clients"], cfg["lam"], cfg["clip"], cfg["trigger_scale"]
        )
        steps = cfg["rounds"]
    learner = stream_cfg["victim"]

    def new_victim():
        model.load_state_dict(start)
        return Victim(model, learner["lr"], learner["momentum"], learner["weight_decay"])

    unit = "step" if kind == "online" else "round"
    rows, batches = simulate(
        setting, new_victim, evaluator(val, test, accel), steps, cfg["secret"], rt.resume, unit
    )
    return pd.DataFrame(rows), batches


def detection_scores(model_path: Path, batches_path: Path, train_path: Path, cfg: dict, accel):
    """KD, LID, GDA (reprise.metrics.detectors) and GMM scores, fitted on the features of
    clean training references, of the accumulative-phase images, clean (positive) and
    poisoned: one row per image. GMM: the log-likelihood under a Gaussian mixture fitted
    to the references' features (scikit-learn)."""
    from sklearn.mixture import GaussianMixture

    from reprise.io import load_checkpoint
    from reprise.metrics.detectors import FeatureBaselines
    from reprise.models.base import evaluating

    model, _ = load_model(model_path)
    model = accel.model(model)
    refs = load_split(train_path).subset(cfg["references"])
    saved = load_checkpoint(batches_path)
    if not saved["poisoned"]:
        raise ConfigError(f"{batches_path} holds no accumulative-phase batches to score")

    @torch.no_grad()
    def features(x):
        with evaluating(model):
            z = torch.cat([model.features(accel.batch(c)).float().cpu() for c in x.split(512)])
        return z, model.head(z.to(accel.device)).argmax(1).cpu()

    z, pred = features(refs.x)
    baselines = FeatureBaselines.fit(z, refs.y, pred == refs.y, cfg)
    gmm_cfg = cfg["gmm"]
    gmm = GaussianMixture(
        gmm_cfg["components"],
        covariance_type=gmm_cfg["covariance"],
        reg_covar=gmm_cfg["reg_covar"],
        random_state=0,
    ).fit(z[pred == refs.y].double().numpy())
    frames = []
    for kind, clean in (("clean", True), ("poisoned", False)):
        x = torch.cat(saved[kind]).float() / 255.0
        zk, pk = features(x)
        scores = {k: v.numpy() for k, v in baselines.scores(zk, pk).items()}
        scores["gmm"] = gmm.score_samples(zk.double().numpy())
        frames.append(pd.DataFrame(scores).assign(clean=clean))
    return pd.concat(frames, ignore_index=True)
