"""AutoDA's random program search with its pruning stages.

Each round generates `batch` random programs and passes them through:

1. inputs check (symbolic, per program, no arithmetic);
2. distance test: on synthetic cases (x uniform, x_adv at L2 0.5 .. 15 from it, fresh noise)
   the proposal must come closer to x, but by at most 20%, in every case;
3. a short attack (`short_steps` queries, fixed s0) on a small binary model, all survivors ×
   `short_images` images in lockstep; a program whose mean final/initial L2 ratio is not
   below `short_max_ratio` is rejected;
4. the round's best `rerun_top` survivors re-run longer (`rerun_steps`, s0 tuned) on other
   images; the lowest mean ratio is the best program so far.

Rejections per stage and the queries spent (stages 3 and 4, plus the starting points) are
counted. With `prune: false` stages 1 and 2 are skipped: plain random search over the same
query budget. The loop saves its state (RNGs, counters, best programs, history) after every
round and resumes from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from reprise.attacks.decision import Oracle, start_points
from reprise.papers.autoda.attack import Tuning, program_attack
from reprise.papers.autoda.program import (
    FIXED,
    Program,
    inputs_ok,
    live_mask,
    random_code,
    run_torch,
)

log = logging.getLogger("reprise")
STAGES = ("inputs", "distance", "short")


@dataclass(frozen=True)
class SearchConfig:
    length: int = 24  # nodes, the fixed 7 included (the official DAG max length)
    batch: int = 2000  # programs generated per round
    random_batch: int = 50  # per round without pruning (each costs a short attack)
    cases: int = 10  # synthetic cases of the distance test
    s0_init: float = 0.01
    short_steps: int = 100
    short_images: int = 10
    short_max_ratio: float = 0.95
    rerun_steps: int = 1000
    rerun_images: int = 20
    rerun_top: int = 2
    max_queries: int = 1_000_000
    max_programs: int = 10**12
    prune: bool = True

    @classmethod
    def from_config(cls, cfg: dict) -> SearchConfig:
        from reprise.errors import ConfigError

        unknown = sorted(set(cfg) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"search: unknown keys {unknown}; allowed {sorted(cls.__dataclass_fields__)}"
            )
        c = cls(**cfg)
        if c.length <= FIXED:
            raise ConfigError(f"search.length = {c.length} must exceed the {FIXED} fixed nodes")
        return c


def distance_test(
    code: np.ndarray, s0: float, dim: int, cases: int, gen, chunk: int = 2048
) -> np.ndarray:
    """Pruning stage 2 for P programs at once (`code` P × L × 3): True where every
    synthetic case comes closer to x by at most 20% (the output is not clipped here). Like
    the official validator it stops at a program's first failing case: all programs run
    case 1, the survivors the rest."""
    x = torch.rand((cases, dim), generator=gen)
    radius = torch.linspace(0.5, 15.0, cases)[:, None]
    x_adv = x + torch.randn((cases, dim), generator=gen) * radius / dim**0.5
    noise = torch.randn((cases, dim), generator=gen)
    ok = np.ones(len(code), bool)
    live = live_mask(code)
    for sl in (slice(0, 1), slice(1, cases)):
        idx = np.flatnonzero(ok)
        for at in range(0, len(idx), chunk):
            part = idx[at : at + chunk]
            ok[part] = _closer(code[part], live[part], s0, x[sl], x_adv[sl], noise[sl])
    return ok


def _closer(code, live, s0, x, x_adv, noise) -> np.ndarray:
    if len(code) == 0 or len(x) == 0:
        return np.ones(len(code), bool)
    P, (n, dim) = len(code), x.shape
    ex = lambda t: t[None].expand(P, n, dim)  # noqa: E731
    out = run_torch(code, live, torch.full((P, n), s0), ex(x), ex(x_adv), ex(noise))
    before = (x_adv - x).norm(dim=1)
    after = (out - x).norm(dim=2)
    good = (after < before) & (after / before > 0.8)  # NaN fails both
    return good.all(1).numpy()


class Evaluator:
    """Short and long program attacks on fixed images of a binary model, starting points
    computed once (their queries counted once)."""

    def __init__(self, model, x, y, pool_x, pool_y, gen):
        self.model, self.x, self.y = model, x, y
        oracle = Oracle(model, x, y, budget=200)
        self.start = start_points(oracle, pool_x, pool_y, gen)
        self.found = torch.isfinite(oracle.best_l2)
        self.x, self.y, self.start = x[self.found], y[self.found], self.start[self.found]
        self.l0 = oracle.best_l2[self.found]
        self.queries = int(oracle.queries.sum())
        if len(self.x) == 0:
            from reprise.errors import ReproError

            raise ReproError(
                "the search model labels every noisy and other-class image as the original: no "
                "starting point for any search image (train the search model longer)"
            )

    def ratios(
        self, programs: list[Program], steps: int, tuning: Tuning, gen
    ) -> tuple[np.ndarray, int]:
        """Mean final/initial L2 per program, and the queries spent."""
        P, B = len(programs), len(self.x)
        rep = lambda t: t.repeat(P, *[1] * (t.dim() - 1))  # noqa: E731
        oracle = Oracle(self.model, rep(self.x), rep(self.y), budget=steps)
        oracle.best_l2 = rep(self.l0).clone()  # the start is adversarial and already paid
        oracle.best = rep(self.start).clone()
        program_attack(oracle, rep(self.start), gen, programs, tuning)
        ratio = (oracle.best_l2 / rep(self.l0)).view(P, B).mean(1)
        return ratio.cpu().numpy(), int(oracle.queries.sum())


def search(
    cfg: SearchConfig, short: Evaluator, long: Evaluator, seed: int, resume=None, on_round=None
) -> dict:
    """Run rounds until `max_queries` queries or `max_programs` programs; returns the final
    state (see `_fresh`). `on_round(state)` is called after each saved round."""
    state = resume.load() if resume is not None else None
    if state is None:
        state = _fresh(seed, short.queries + long.queries)
    else:
        log.info("resumed from %s after round %d", resume.path, state["round"])
    rng = np.random.default_rng()
    rng.bit_generator.state = _np_state(state["np_rng"])
    gen = torch.Generator().manual_seed(0)
    gen.set_state(state["torch_rng"])
    dim = short.x[0].numel()
    fixed_s0 = Tuning(s0_init=cfg.s0_init, tune=False)
    tuned = Tuning(s0_init=cfg.s0_init)
    while state["queries"] < cfg.max_queries and state["counts"]["generated"] < cfg.max_programs:
        code = random_code(rng, cfg.batch if cfg.prune else cfg.random_batch, cfg.length)
        c = state["counts"]
        c["generated"] += len(code)
        if cfg.prune:
            keep = code[inputs_ok(code)]
            c["inputs"] += len(code) - len(keep)
            ok = distance_test(keep, cfg.s0_init, dim, cfg.cases, gen)
            c["distance"] += int((~ok).sum())
            code = keep[ok]
        progs = [Program.from_code(row) for row in code]
        if progs:
            ratio, q = short.ratios(progs, cfg.short_steps, fixed_s0, gen)
            state["queries"] += q
            good = np.flatnonzero(ratio < cfg.short_max_ratio)
            c["short"] += len(progs) - len(good)
            c["passed"] += len(good)
            top = good[np.argsort(ratio[good], kind="stable")][: cfg.rerun_top]
            if len(top):
                rerun = [progs[i] for i in top]
                long_ratio, q = long.ratios(rerun, cfg.rerun_steps, tuned, gen)
                state["queries"] += q
                c["rerun"] += len(rerun)
                for p, r, s in zip(rerun, long_ratio, ratio[top], strict=True):
                    state["programs"].append(
                        {"nodes": p.as_list(), "short": float(s), "long": float(r)}
                    )
                    if r < state["best"]["long"]:
                        state["best"] = state["programs"][-1]
        state["round"] += 1
        state["history"].append(
            {
                "round": state["round"],
                "generated": c["generated"],
                "queries": state["queries"],
                "best_ratio": state["best"]["long"],
            }
        )
        state["np_rng"] = _np_list(rng.bit_generator.state)
        state["torch_rng"] = gen.get_state()
        if resume is not None:
            resume.save(state)
        if on_round is not None:
            on_round(state)
        log.info(
            "round %d: %d programs, %d queries, best ratio %.4g",
            state["round"],
            c["generated"],
            state["queries"],
            state["best"]["long"],
        )
    return state


def _fresh(seed: int, queries: int) -> dict:
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    return {
        "round": 0,
        "queries": queries,
        "counts": {"generated": 0, "inputs": 0, "distance": 0, "short": 0, "passed": 0, "rerun": 0},
        "best": {"nodes": [], "short": float("inf"), "long": float("inf")},
        "programs": [],
        "history": [],
        "np_rng": _np_list(rng.bit_generator.state),
        "torch_rng": gen.get_state(),
    }


def _np_list(st: dict) -> dict:
    """numpy's PCG64 state with its 128-bit integers as strings (a checkpoint holds them)."""
    return {
        "state": str(st["state"]["state"]),
        "inc": str(st["state"]["inc"]),
        "has_uint32": int(st["has_uint32"]),
        "uinteger": int(st["uinteger"]),
    }


def _np_state(st: dict) -> dict:
    return {
        "bit_generator": "PCG64",
        "state": {"state": int(st["state"]), "inc": int(st["inc"])},
        "has_uint32": st["has_uint32"],
        "uinteger": st["uinteger"],
    }
