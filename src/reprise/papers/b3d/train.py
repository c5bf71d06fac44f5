"""Train a group of models at once, each on its own poisoned view of the same batches.

Adam is elementwise, so one optimizer over the G-stacked parameters is exactly G separate
optimizers; the summed loss gives each model its own gradient (the models share nothing).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from reprise.papers.b3d.model import Group
from reprise.papers.b3d.population import poison_batch, stamp
from reprise.training.state import rng_state, set_rng_state

log = logging.getLogger("reprise")


def trigger_tensors(recipes: list[dict], device="cpu"):
    masks = torch.stack([r["true_mask"] for r in recipes])
    patterns = torch.stack([r["true_pattern"] for r in recipes])
    targets = torch.tensor([max(r["target"], 0) for r in recipes])
    rates = torch.tensor([r["poison_rate"] for r in recipes], dtype=torch.float32)
    return tuple(t.to(device) for t in (masks, patterns, targets, rates))


def train_group(group: Group, x, y, recipes, cfg: dict, seed: int, resume=None) -> list[dict]:
    """cfg: epochs, batch_size, lr, weight_decay. Resumable per epoch; returns the history."""
    masks, patterns, targets, rates = trigger_tensors(recipes, x.device)
    opt = torch.optim.Adam(group.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    # batch order and poisoning draws from separate streams: a model's batches do not depend
    # on how many models share its group
    gen = torch.Generator(x.device).manual_seed(seed)
    poison_gen = torch.Generator(x.device).manual_seed(seed + 1)
    start, history = 0, []
    state = resume.load() if resume is not None else None
    if state is not None:
        group.load_state_dict(state["group"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        poison_gen.set_state(state["poison_gen"])
        set_rng_state(state["rng"])
        start, history = state["epoch"], state["history"]
        log.info("resumed from %s after epoch %d", resume.path, start)
    for epoch in range(start, cfg["epochs"]):
        order, total = torch.randperm(len(y), generator=gen, device=x.device), 0.0
        for i in range(0, len(y), cfg["batch_size"]):
            idx = order[i : i + cfg["batch_size"]]
            xs, ys = poison_batch(x[idx], y[idx], masks, patterns, targets, rates, poison_gen)
            logits = group(xs)
            # sum over models of each model's mean loss: independent gradients per model
            loss = F.cross_entropy(logits.flatten(0, 1), ys.flatten(), reduction="none")
            loss = loss.view_as(ys).mean(1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history.append({"epoch": epoch + 1, "loss": total / len(y) / group.size})
        log.info("epoch %d: mean loss %.4f", epoch + 1, history[-1]["loss"])
        if resume is not None:
            resume.save(
                {
                    "group": group.state_dict(),
                    "opt": opt.state_dict(),
                    "gen": gen.get_state(),
                    "poison_gen": poison_gen.get_state(),
                    "rng": rng_state(),
                    "epoch": epoch + 1,
                    "history": history,
                }
            )
    return history


@torch.no_grad()
def clean_and_attack(group: Group, x, y, recipes, chunk: int = 512):
    """Per model: clean accuracy, and attack success rate (test inputs not of the target class,
    stamped with the true trigger, classified as the target; NaN for clean models)."""
    masks, patterns, targets, _ = trigger_tensors(recipes, x.device)
    correct = torch.zeros(group.size, device=x.device)
    hits, count = torch.zeros_like(correct), torch.zeros_like(correct)
    for i in range(0, len(y), chunk):
        xb, yb = x[i : i + chunk], y[i : i + chunk]
        g = group.size
        correct += (group(xb.expand(g, *xb.shape)).argmax(-1) == yb).sum(1)
        pred = group(stamp(xb[None], masks[:, None], patterns[:, None])).argmax(-1)
        valid = yb[None] != targets[:, None]
        hits += ((pred == targets[:, None]) & valid).sum(1)
        count += valid.sum(1)
    asr = hits / count.clamp(min=1)
    backdoored = torch.tensor([r["attack"] != "clean" for r in recipes])
    return (correct / len(y)).cpu(), torch.where(backdoored, asr.cpu(), torch.nan)
