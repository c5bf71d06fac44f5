"""The evaluation protocol, the same for every method: the same images, the same starting
points procedure (its queries counted), a per-image query budget, and the best L2 after
each recorded query count; median L2 and success rate (L2 ≤ ε) across images from it.

Program attacks run together: P programs × B images are one lockstep batch (rows p·B ..
p·B+B-1 are program p's copy of the images), which shares every model call among them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch

from reprise.attacks.decision import ATTACKS, Oracle, start_points
from reprise.papers.autoda.attack import Tuning, program_attack
from reprise.papers.autoda.program import Program


@dataclass
class Run:
    record: list[int]
    trace: torch.Tensor  # len(record) × images: best L2 after that many queries
    queries: int  # all queries of all images


def run_baseline(method, model, x, y, pool_x, pool_y, *, budget, record, seed, options=None):
    """A baseline of reprise.attacks.decision.ATTACKS on images x (labels y)."""
    if method not in ATTACKS:
        raise KeyError(f"unknown baseline {method!r}; expected one of {sorted(ATTACKS)}")
    gen = torch.Generator(device=x.device).manual_seed(seed)
    oracle = Oracle(model, x, y, budget, record)
    x_adv = start_points(oracle, pool_x, pool_y, gen)
    ATTACKS[method](oracle, x_adv, gen, **(options or {}))
    oracle.finish()
    return Run(oracle.record.tolist(), oracle.trace.cpu(), int(oracle.queries.sum()))


def run_programs(
    programs: dict[str, Program],
    model,
    x,
    y,
    pool_x,
    pool_y,
    *,
    budget,
    record,
    seed,
    tuning: Tuning,
) -> dict[str, Run]:
    """Every program on images x in one lockstep batch; each gets its own starting points
    (the same procedure) and its own query count."""
    P, B = len(programs), len(x)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    rep = lambda t: t.repeat(P, *[1] * (t.dim() - 1))  # noqa: E731
    oracle = Oracle(model, rep(x), rep(y), budget, record)
    x_adv = start_points(oracle, pool_x, pool_y, gen)
    program_attack(oracle, x_adv, gen, list(programs.values()), tuning)
    oracle.finish()
    trace, queries = oracle.trace.cpu(), oracle.queries.cpu()
    return {
        name: Run(
            oracle.record.tolist(),
            trace[:, p * B : (p + 1) * B],
            int(queries[p * B : (p + 1) * B].sum()),
        )
        for p, name in enumerate(programs)
    }


def curves(run: Run, eps: float, **labels) -> pd.DataFrame:
    """One row per recorded query count: median L2 and success rate across images."""
    rows = []
    for q, best in zip(run.record, run.trace, strict=True):
        med = float(best.median())
        rows.append(
            {
                **labels,
                "queries": int(q),
                "median_l2": med if math.isfinite(med) else math.nan,
                "success_rate": float((best <= eps).float().mean()),
            }
        )
    return pd.DataFrame(rows)
