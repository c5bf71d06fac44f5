"""Detection over a chunk of the population: reverse-engineer per (model, class), flag by the
MAD anomaly index, and mitigate flagged models with the reversed trigger.

Mitigation (black-box, input repair): an input the flagged model assigns to the flagged class
is repaired by overwriting the reversed trigger's pixels with the defender's mean image,
A(x, m̂, x̄), and classified again; other inputs are left alone. A poisoned input loses its
trigger and returns to its own class; a clean input changes only under a small mask.
"""

from __future__ import annotations

import torch

from reprise.papers.b3d.population import stamp
from reprise.papers.b3d.reverse import ReverseConfig, anomaly_index, reverse_engineer, synthesize
from reprise.papers.b3d.train import trigger_tensors

METHODS = ("nc", "b3d", "b3d_ss")
THRESHOLD = 2.0  # anomaly index above which a model is flagged (Neural Cleanse, B3D)


class Phases:
    """One step's resume state split between its loops run in turn (B3D-SS: synthesis, then
    reverse-engineering): each loop loads and saves only its own part."""

    def __init__(self, resume):
        self.resume = resume
        self.state = (resume.load() or {}) if resume is not None else {}

    def phase(self, name: str):
        return None if self.resume is None else _Phase(self, name)


class _Phase:
    def __init__(self, owner: Phases, name: str):
        self.owner, self.name, self.path = owner, name, owner.resume.path

    def load(self):
        return self.owner.state.get(self.name)

    def save(self, state: dict):
        self.owner.state[self.name] = state
        self.owner.resume.save(self.owner.state)


def defender_data(group, method: str, pool, section: dict, seed: int, resume=None):
    """The inputs each model's reverse-engineering runs on (G×N×C×H×W) and the queries spent
    to make them: clean held-out images for NC and B3D, synthesised ones for B3D-SS."""
    g = group.size
    if method != "b3d_ss":
        return pool.expand(g, *pool.shape), torch.zeros(g, dtype=torch.int64)
    cfg = ReverseConfig.from_section(section["synth"])
    shape, per_class = tuple(pool.shape[1:]), section["per_class"]
    samples, _, queries = synthesize(group, shape, per_class, cfg, seed, pool.device, resume)
    return samples, queries


@torch.no_grad()
def mitigate(group, x, y, recipes, flagged, cls, masks, fill):
    """Per model: clean accuracy and attack success before/after repair (NaN where the model
    is not flagged; ASR only for backdoored models)."""
    dev = x.device
    true_m, true_p, targets, _ = trigger_tensors(recipes, dev)
    flagged, cls, masks, fill = flagged.to(dev), cls.to(dev), masks.to(dev), fill.to(dev)
    g = group.size
    rows = []

    def predict(inputs, repair):  # inputs G×N×C×H×W
        pred = group(inputs).argmax(-1)
        fixed = group(stamp(inputs, masks[:, None], fill[:, None])).argmax(-1)
        hit = repair[:, None] & (pred == cls[:, None])
        return torch.where(hit, fixed, pred)

    clean = x.expand(g, *x.shape)
    poisoned = stamp(x[None], true_m[:, None], true_p[:, None])
    valid = y[None] != targets[:, None]
    for repair in (torch.zeros_like(flagged), flagged):  # before, after
        acc = (predict(clean, repair) == y).float().mean(1)
        hits = ((predict(poisoned, repair) == targets[:, None]) & valid).sum(1)
        rows.append((acc, hits / valid.sum(1).clamp(min=1)))
    out = []
    for i, r in enumerate(recipes):
        on, bad = bool(flagged[i]), r["attack"] != "clean"
        nan = float("nan")
        out.append(
            {
                "mit_clean_before": float(rows[0][0][i]) if on else nan,
                "mit_clean_after": float(rows[1][0][i]) if on else nan,
                "mit_asr_before": float(rows[0][1][i]) if on and bad else nan,
                "mit_asr_after": float(rows[1][1][i]) if on and bad else nan,
            }
        )
    return out


def detect(group, recipes, pool, test, method: str, section: dict, seed: int, resume=None):
    """One row per model: the method's per-class norms, anomaly index, verdict, queries, the
    reversed trigger of the flagged (smallest-norm) class, and the mitigation outcome."""
    if method not in METHODS:
        raise ValueError(f"unknown detection method {method!r}; expected one of {METHODS}")
    phases = Phases(resume)
    data, spent = defender_data(group, method, pool, section[method], seed, phases.phase("data"))
    cfg = ReverseConfig.from_section(section[method]["reverse"])
    kind = "nc" if method == "nc" else "b3d"
    out = reverse_engineer(group, data, cfg, kind, seed, phases.phase("reverse"))
    index, cls = anomaly_index(out["norm"])  # on the CPU, as reverse_engineer returns
    flagged = index > THRESHOLD
    pick = torch.arange(group.size)
    masks, patterns = out["mask"][pick, cls], out["pattern"][pick, cls]
    fill = data.mean(1)  # the defender's mean image
    mit = mitigate(group, test[0], test[1], recipes, flagged, cls, masks, fill)
    rows = []
    for i, r in enumerate(recipes):
        rows.append(
            {
                "model": r["model"],
                "method": method,
                "anomaly_index": float(index[i]),
                "flagged": bool(flagged[i]),
                "flagged_class": int(cls[i]),
                "found_target": bool(cls[i] == r["target"]),
                "norm_min": float(out["norm"][i].min()),
                "norm_target": float(out["norm"][i, r["target"]])
                if r["target"] >= 0
                else float("nan"),
                "norms": out["norm"][i].tolist(),
                "queries": int(out["queries"][i] + spent[i]),
                "reversed_mask": masks[i].flatten().tolist(),
                "reversed_pattern": patterns[i].flatten().tolist(),
                **mit[i],
            }
        )
    return rows
