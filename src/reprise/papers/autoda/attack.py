"""A program as a decision-based attack, many programs × many images in lockstep.

Each step a program proposes the next point from (s0, x, x_adv, noise); a proposal that moves
away from x is redrawn (up to 5 times, no query), the 6th is scaled back to the current
distance. The point is queried once; if adversarial it becomes x_adv. s0 follows the
official success-rate controller: an exponential average of successes (decay 0.95) is
steered toward 0.25 by multiplying s0 by ratio^0.1, ratio in [0.5, 1.5], s0 ≤ 1.5·s0_init.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reprise.attacks.decision import Oracle
from reprise.papers.autoda.program import Program, compile_plan, live_mask, run_plan, stack


@dataclass(frozen=True)
class Tuning:
    s0_init: float = 0.01
    target: float = 0.25
    decay: float = 0.95
    lo: float = 0.5
    hi: float = 1.5
    s0_hi_factor: float = 1.5
    retries: int = 5
    tune: bool = True


def program_attack(oracle: Oracle, x_adv, gen, programs: list[Program], tuning: Tuning) -> None:
    """Run P programs on the oracle's rows, program-major: rows p·B .. p·B+B-1 belong to
    program p (B = rows / P). Stops when every row has used its budget."""
    P = len(programs)
    N = len(oracle.x)
    if N % P:
        raise ValueError(f"{N} rows do not split into {P} programs")
    B, shape = N // P, oracle.x.shape[1:]
    dev = oracle.x.device
    code = stack(programs)
    plan = compile_plan(code, live_mask(code), dev)
    x = oracle.x.reshape(P, B, -1)
    adv = x_adv.reshape(P, B, -1).clone()
    D, R = x.shape[-1], tuning.retries + 1
    s0 = torch.full((P, B), tuning.s0_init, device=dev)
    rate = torch.full((P, B), tuning.target, device=dev)
    found = torch.isfinite(oracle.best_l2).view(P, B)
    while True:
        rows = torch.nonzero(found.flatten() & (oracle.remaining() > 0)).flatten()
        if len(rows) == 0:
            return
        noise = torch.randn((P, B * R, D), device=dev, generator=gen)
        rep = lambda t: t[:, :, None].expand(P, B, R, D).reshape(P, B * R, D)  # noqa: E731
        s0_rep = s0[:, :, None].expand(P, B, R).reshape(P, B * R)
        out = run_plan(plan, s0_rep, rep(x), rep(adv), noise).view(P, B, R, D)
        step = out.clamp(0, 1) - x[:, :, None]
        size = step.norm(dim=-1)
        dist = (adv - x).norm(dim=-1)
        ok = torch.isfinite(size) & (size <= dist[..., None])
        ok[..., -1] = True  # the last draw is taken, scaled back if needed
        first = ok.int().argmax(-1)
        chosen = step.gather(2, first[..., None, None].expand(P, B, 1, D)).squeeze(2)
        size = size.gather(2, first[..., None]).squeeze(2)
        scale = torch.where(size > dist, dist / size, torch.ones_like(size))
        chosen = chosen * scale[..., None]
        cand = torch.where(torch.isfinite(chosen).all(-1, keepdim=True), x + chosen, adv)
        hit = torch.zeros(P * B, dtype=torch.bool, device=dev)
        hit[rows] = oracle(cand.reshape(N, *shape)[rows], rows)
        hit = hit.view(P, B)
        adv = torch.where(hit[..., None], cand, adv)
        if tuning.tune:
            s0 = _tune(s0, rate, hit, tuning)


def _tune(s0, rate, hit, t: Tuning):
    rate.mul_(t.decay).add_((1 - t.decay) * hit.float())
    up = ((t.hi - 1) / (1 - t.target)) * (rate - t.target) + 1
    down = ((t.lo - 1) / (0 - t.target)) * (rate - t.target) + 1
    new = s0 * torch.where(rate >= t.target, up, down) ** 0.1
    keep = (new >= 1e-12) & (new <= t.s0_hi_factor * t.s0_init)
    return torch.where(keep, new, s0)
