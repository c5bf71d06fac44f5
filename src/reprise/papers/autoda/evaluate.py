"""The evaluation protocol, the same for every method: the same images, the same starting
points procedure (its queries counted), a per-image query budget, and the best L2 after
each recorded query count; median L2 and success rate (L2 ≤ ε) across images from it."""

from __future__ import annotations

import math

import pandas as pd
import torch

from reprise.attacks.decision import ATTACKS, Oracle, start_points
from reprise.papers.autoda.attack import Tuning, program_attack
from reprise.papers.autoda.program import Program


def run_method(
    method: str,
    model,
    x,
    y,
    pool_x,
    pool_y,
    *,
    budget: int,
    record,
    seed: int,
    programs: dict[str, Program],
    tuning: Tuning,
    baselines: dict | None = None,
) -> Oracle:
    """Attack images x (labels y, all correctly classified) with `method`: a name in
    `programs` (a program attack) or in ATTACKS (a baseline, options from `baselines`)."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    oracle = Oracle(model, x, y, budget, record)
    x_adv = start_points(oracle, pool_x, pool_y, gen)
    if method in programs:
        program_attack(oracle, x_adv, gen, [programs[method]], tuning)
    elif method in ATTACKS:
        ATTACKS[method](oracle, x_adv, gen, **(baselines or {}).get(method, {}))
    else:
        raise KeyError(
            f"unknown method {method!r}; expected one of {sorted(programs) + sorted(ATTACKS)}"
        )
    oracle.finish()
    return oracle


def curves(oracle: Oracle, eps: float, **labels) -> pd.DataFrame:
    """One row per recorded query count: median L2 and success rate across images."""
    trace = oracle.trace.cpu()
    rows = []
    for q, best in zip(oracle.record.tolist(), trace, strict=True):
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
