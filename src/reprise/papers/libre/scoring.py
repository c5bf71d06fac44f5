"""Attack one detector's model and score every input: one table row per (input set, score,
sample), with `uncertainty` oriented so that higher means "more likely adversarial".

Methods (config `methods`, plus `dnn`):
- libre, no_hinge, mfvi_last, mfvi_full: the feature variance across members;
- mc_dropout: the softmax variance and the feature variance across dropout samples;
- dnn: KD and LID on the plain network's penultimate features (reprise.metrics.detectors),
  negated (their scores are high on clean inputs).
Input sets (column `input`): clean; every white-box attack of `evaluation.attacks` crafted
on the method's own model (its predictive distribution: the members' mean softmax);
`transfer-<attack>`, crafted on an independently trained network; `spsa`; and
`adaptive-<attack>` (libre only), which also lowers the uncertainty: the attack maximises
loss − λ·log(uncertainty), mimicking clean inputs.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pandas as pd
import torch

from reprise.attacks.suite import build_attack
from reprise.data.prepared import ImageData
from reprise.errors import ConfigError
from reprise.metrics.detectors import FeatureBaselines

log = logging.getLogger("reprise")


@torch.no_grad()
def bayesian_scores(model, x: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, dict]:
    """(predictions, {score: uncertainty}) of a Bayesian refinement, in batches."""
    preds, scores = [], {}
    model.eval()
    for i in range(0, len(x), batch_size):
        z = model.features(x[i : i + batch_size])
        preds.append(model.head(z).argmax(1))
        batch = {"feature_var": model.uncertainty(z)}
        if type(model).__name__ == "MCDropout":
            batch["softmax_var"] = model.softmax_variance(z)
        for k, v in batch.items():
            scores.setdefault(k, []).append(v)
    return torch.cat(preds), {k: torch.cat(v) for k, v in scores.items()}


class DNNScores:
    """KD and LID of the plain network, fitted on correctly classified training features."""

    def __init__(self, dnn, train: ImageData, cfg: dict, batch_size: int):
        self.dnn, self.batch_size = dnn.eval(), batch_size
        z, pred = self._features(train.x)
        self.detectors = FeatureBaselines.fit(z, train.y, pred == train.y, cfg)

    @torch.no_grad()
    def _features(self, x):
        z = torch.cat(
            [
                self.dnn.features(x[i : i + self.batch_size])
                for i in range(0, len(x), self.batch_size)
            ]
        )
        return z, self.dnn.head(z).argmax(1)

    def __call__(self, x):
        z, pred = self._features(x)
        s = self.detectors.scores(z, pred)
        return pred, {"kd": -s["kd"], "lid": -s["lid"]}


def adaptive_extra(model, lam: float):
    """PGD extra term: −λ·log(feature variance) (the attack also lowers the uncertainty)."""

    def extra(out, x_adv):
        return -lam * torch.log(model.uncertainty(out.features) + 1e-12)

    return extra


def attack_all(model, data: ImageData, attack, batch_size: int, extra=None) -> torch.Tensor:
    out = []
    for i in range(0, len(data), batch_size):
        x, y = data.x[i : i + batch_size], data.y[i : i + batch_size]
        kw = {} if extra is None else {"extra": extra}
        out.append(attack(model, x, y, **kw).detach())
    return torch.cat(out)


def seed(name: str) -> None:
    """Each input set its own fixed draws (random starts, SPSA's directions, a mean-field or
    MC-dropout model's samples), whatever other attacks the config lists before it."""
    torch.manual_seed(zlib.crc32(name.encode()))


def input_sets(method: str, model, test: ImageData, transfer: dict, cfg: dict):
    """(name, adversarial inputs) of every input set this method is judged on."""
    bs = cfg["batch_size"]
    yield "clean", test.x
    for name, spec in cfg["attacks"].items():
        seed(name)
        yield name, attack_all(model, test, build_attack(name, spec), bs)
    for name, x in transfer.items():
        yield f"transfer-{name}", x
    if method in cfg["spsa"]["methods"]:
        n = cfg["spsa"]["size"]
        sub = test.subset(n)
        seed("spsa")
        yield "spsa", attack_all(model, sub, build_attack("spsa", cfg["spsa"]["attack"]), bs)
    adaptive = cfg["adaptive"]
    if method in adaptive["methods"]:
        for name in adaptive["attacks"]:
            seed(f"adaptive-{name}")
            attack = build_attack(name, cfg["attacks"][name])
            extra = adaptive_extra(model, adaptive["lambda"])
            yield f"adaptive-{name}", attack_all(model, test, attack, bs, extra)


def score_method(method: str, model, scorer, test: ImageData, transfer: dict, cfg: dict):
    """The whole per-sample table of one method (see the module docstring)."""
    unknown = set(cfg["adaptive"]["attacks"]) - set(cfg["attacks"])
    if unknown:
        raise ConfigError(f"evaluation.adaptive.attacks names {sorted(unknown)}: not attacks")
    frames = []
    for name, x in input_sets(method, model, test, transfer, cfg):
        y = test.y[: len(x)]
        pred, scores = scorer(x)
        linf = (x - test.x[: len(x)]).flatten(1).abs().amax(1)
        for score, u in scores.items():
            frames.append(
                pd.DataFrame(
                    {
                        "method": method,
                        "score": score,
                        "input": name,
                        "idx": np.arange(len(x)),
                        "y": y.numpy(),
                        "correct": (pred == y).numpy(),
                        "uncertainty": u.double().numpy(),
                        "linf": linf.numpy(),
                    }
                )
            )
        log.info("%s %s: accuracy %.3f", method, name, (pred == y).float().mean().item())
    return pd.concat(frames, ignore_index=True)
