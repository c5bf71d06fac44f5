"""Training of one run (the paper's model, an ablation or the SCOPS-like baseline), resumable.

Each step draws a batch and one random TPS warp per image from a seeded generator; both
generators' states go into the resume state, so a run killed after any saved step ends
bit-identical to an uninterrupted one on CPU.
"""

from __future__ import annotations

import logging
import time

import torch

from reprise.errors import ConfigError
from reprise.papers.partseg.model import Config, Warp, build
from reprise.resume import Resume
from reprise.training.state import rng_state, set_rng_state

log = logging.getLogger("reprise")


def model_config(run: dict, model: dict) -> Config:
    """The run's model Config: the shared `model` section, then the run's own overrides."""
    merged = {**model, **{k: v for k, v in run.items() if k in Config.__dataclass_fields__}}
    merged["weights"] = {**model.get("weights", {}), **run.get("weights", {})}
    unknown = set(merged) - set(Config.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown model option(s) {sorted(unknown)} for partseg runs")
    return Config(**merged)


def images(data: dict) -> torch.Tensor:
    return torch.from_numpy(data["images"]).float().div_(255)


def fit(cfg: Config, x: torch.Tensor, train: dict, seed: int, resume: Resume | None = None):
    """Train for train['steps'] steps; returns (model, history rows)."""
    resume = resume or Resume()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=train["lr"], weight_decay=train["weight_decay"])
    sched = torch.optim.lr_scheduler.StepLR(opt, train["decay_every"], train["decay"])
    start, history = 0, []
    if (state := resume.load()) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        set_rng_state(state["rng"])
        start, history = state["step"], state["history"]
        log.info("resumed from %s after step %d", resume.path, start)
    warp_cfg, batch, every = train["warp"], train["batch_size"], train["save_every"]
    t0 = time.perf_counter()
    for step in range(start, train["steps"]):
        idx = torch.randint(len(x), (batch,), generator=gen)
        warp = Warp.random(batch, gen, **warp_cfg)
        loss, terms = model.losses(x[idx], warp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % every == 0 or step + 1 == train["steps"]:
            row = {"step": step + 1, "loss": loss.item()}
            row |= {k: float(v.detach()) for k, v in terms.items()}
            history.append(row)
            log.info(
                "step %d %.1fs %s",
                step + 1,
                time.perf_counter() - t0,
                " ".join(f"{k}={v:.4f}" for k, v in row.items() if k != "step"),
            )
            resume.save({
                "model": model.state_dict(), "opt": opt.state_dict(),
                "sched": sched.state_dict(), "gen": gen.get_state(), "rng": rng_state(),
                "step": step + 1, "history": history,
            })  # fmt: skip
    return model.eval(), history
