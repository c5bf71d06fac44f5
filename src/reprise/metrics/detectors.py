"""Feature-space detectors (core: the rejection, poisoning and LiBRe papers use them): scores
that tell correct from wrong predictions, or clean from adversarial or poisoned inputs.

Each is fitted on the penultimate features of correctly classified clean reference inputs
(training data) and scores every input so that higher means "more likely correct":

- energy: logsumexp of the logits (Liu et al. 2020's negative free energy).
- KD: kernel density (Feinman et al. 2017), the log mean Gaussian kernel exp(−γ‖z − z_i‖²)
  over up to `per_class` references of the predicted class. γ from config, or by the median
  heuristic (1 / median squared distance between references) when null.
- LID: local intrinsic dimensionality (Ma et al. 2018) from the k nearest references; the
  score is −LID, LID = −1 / mean_i log(d_i / d_k).
- GDA: a Gaussian per class with a shared covariance (Lee et al. 2018); the score is the
  largest −Mahalanobis² distance to a class mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from reprise.errors import ConfigError

CHUNK = 1024  # test points per distance matrix
LOWEST = -1e30  # the score of a density of 0 (finite: ROC code refuses infinities)


@dataclass
class FeatureBaselines:
    kd_refs: list[torch.Tensor]  # per class: references (n_c × d)
    kd_gamma: float
    lid_refs: torch.Tensor  # R × d
    lid_k: int
    gda_means: torch.Tensor  # K × d
    gda_precision: torch.Tensor  # d × d

    @classmethod
    def fit(cls, features, labels, correct, cfg: dict) -> FeatureBaselines:
        """From reference features (N × d), their labels and which were classified right."""
        z, y = features[correct].double(), labels[correct]
        classes = int(labels.max()) + 1
        kd = cfg["kd"]
        kd_refs = [z[y == c][: kd["per_class"]] for c in range(classes)]
        gamma = kd["gamma"] or 1.0 / _median_sq_distance(torch.cat(kd_refs))
        lid = cfg["lid"]
        lid_refs = z[: lid["references"]]
        if len(lid_refs) <= lid["k"]:
            raise ConfigError(
                f"evaluation.baselines.lid: k = {lid['k']} needs more than k correctly "
                f"classified reference inputs; got {len(lid_refs)} (raise references or lower k)"
            )
        means = torch.stack([_mean_or_nan(z[y == c]) for c in range(classes)])
        centred = z - means[y]
        cov = centred.T @ centred / max(len(z), 1)
        ridge = cfg["gda"]["ridge"] * cov.diagonal().mean().clamp_min(1e-12)
        precision = torch.linalg.inv(cov + ridge * torch.eye(len(cov), dtype=cov.dtype))
        return cls(kd_refs, float(gamma), lid_refs, lid["k"], means, precision)

    def scores(self, features: torch.Tensor, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        z = features.double()
        out = {"kd": torch.empty(len(z), dtype=z.dtype), "lid": torch.empty(len(z), dtype=z.dtype)}
        for i in range(0, len(z), CHUNK):
            zc, pc = z[i : i + CHUNK], pred[i : i + CHUNK]
            out["kd"][i : i + CHUNK] = self._kd(zc, pc)
            out["lid"][i : i + CHUNK] = self._neg_lid(zc)
        out["gda"] = self._gda(z)
        return {k: v.float() for k, v in out.items()}

    def _kd(self, z, pred):
        score = torch.full((len(z),), LOWEST, dtype=z.dtype)
        for c, refs in enumerate(self.kd_refs):
            rows = pred == c
            if rows.any() and len(refs):
                d2 = torch.cdist(z[rows], refs).pow(2)
                density = torch.logsumexp(-self.kd_gamma * d2, 1) - math.log(len(refs))
                score[rows] = density.clamp(min=LOWEST)
        return score

    def _neg_lid(self, z):
        d = torch.cdist(z, self.lid_refs).topk(self.lid_k, dim=1, largest=False).values
        d = d.clamp_min(1e-12)
        mean_log_ratio = (d.log() - d[:, -1:].log()).mean(1)  # <= 0
        return mean_log_ratio.clamp(max=-1e-12).reciprocal()  # = -LID

    def _gda(self, z):
        diff = z[:, None, :] - self.gda_means[None]  # N × K × d
        maha = torch.einsum("nkd,de,nke->nk", diff, self.gda_precision, diff)
        return (-maha).nan_to_num(nan=LOWEST).amax(1)


def energy(logits: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(logits.float(), dim=1)


def _median_sq_distance(z: torch.Tensor, at_most: int = 2000) -> float:
    z = z[:at_most]
    d2 = torch.cdist(z, z).pow(2)
    off_diagonal = d2[~torch.eye(len(z), dtype=torch.bool)]
    return float(off_diagonal.median().clamp_min(1e-12)) if len(off_diagonal) else 1.0


def _mean_or_nan(z: torch.Tensor) -> torch.Tensor:
    return z.mean(0) if len(z) else torch.full((z.shape[1],), math.nan, dtype=z.dtype)
