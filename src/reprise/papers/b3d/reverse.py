"""Trigger reverse-engineering for every (model, class) at once: B3D (NES, black-box) and
Neural Cleanse (gradients, white-box) share the objective, the λ schedule and the bookkeeping.

For class c: minimise E_x[CE(c, f(A(x, m, p)))] + λ‖m‖₁ over mask m ∈ [0,1]^{H×W} and pattern
p ∈ [0,1]^{C×H×W}, parameterised as m = g(θ_m), p = g(θ_p), g = (tanh + 1)/2.

B3D's search distribution: m ~ Bernoulli(g(θ_m)), p = g(θ_p + σε), ε ~ N(0, I). With k draws
(F_j the batch-mean CE of draw j, minus the mean over draws as a baseline):
    ∇θ_m ≈ (1/k) Σ F_j · 2(m_j − g(θ_m))      (score function of the Bernoulli, chain rule of g)
    ∇θ_p ≈ (1/(kσ)) Σ F_j · ε_j
The penalty's expectation E‖m‖₁ = ‖g(θ_m)‖₁ involves no model, so its gradient is taken
exactly (λ·2g(1−g)) rather than estimated; only the model term costs queries.
All k draws × B inputs × K classes × G models of a step go through the oracle in one call.

λ follows Neural Cleanse: raised ×1.5 after `patience` steps whose current trigger reaches the
attack-success threshold, lowered ÷1.5^1.5 after `patience` steps that miss it; the smallest
mask that reached the threshold is kept. A class that never reaches it gets norm H·W.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from reprise.papers.b3d.population import stamp

log = logging.getLogger("reprise")


def squash(t):
    return (torch.tanh(t) + 1) / 2


class Oracle:
    """Black-box access to a group of models: output probabilities only, queries counted."""

    def __init__(self, group, chunk: int = 1 << 16):
        self.group, self.chunk = group, chunk
        device = next(group.parameters()).device
        self.queries = torch.zeros(group.size, dtype=torch.int64, device=device)

    @torch.no_grad()
    def __call__(self, x):  # G×N×C×H×W -> G×N×K probabilities
        self.queries += x.shape[1]
        parts = [self.group(x[:, i : i + self.chunk]) for i in range(0, x.shape[1], self.chunk)]
        return torch.cat(parts, 1).softmax(-1)


@dataclass
class ReverseConfig:
    steps: int = 100
    samples: int = 50  # k, NES draws per step
    sigma: float = 0.1
    lr: float = 0.05
    batch: int = 128
    lambda0: float = 0.01
    patience: int = 5
    asr_threshold: float = 0.99
    lambda_up: float = 1.5
    lambda_down: float = 1.5**1.5

    @classmethod
    def from_section(cls, section: dict) -> ReverseConfig:
        return cls(**section)


def _target_ce(oracle, xb, masks, pats, classes):
    """Batch-mean CE to each unit's class of every draw: G×K'×k, one oracle call."""
    g, k, n, b = *masks.shape[:3], xb.shape[1]
    x = stamp(xb[:, None, None], masks[:, :, :, None], pats[:, :, :, None])  # G×K'×k×B×C×H×W
    probs = oracle(x.flatten(1, 3)).view(g, k, n, b, -1)
    cls = classes.view(1, k, 1, 1, 1).expand(g, k, n, b, 1)
    return -probs.gather(-1, cls).squeeze(-1).clamp_min(1e-12).log().mean(-1)


def nes_grad(oracle, xb, theta_m, theta_p, lam, cfg, gen, max_inputs: int = 1 << 21):
    """NES estimates of ∇θ_m, ∇θ_p of the objective, per (model, class). All queries of the
    step go in one oracle call, unless they exceed `max_inputs` stamped images: then one
    call per block of classes (each class's k×B queries still in one pass)."""
    g, k, b = xb.shape[0], theta_m.shape[1], xb.shape[1]
    pi = squash(theta_m)[:, :, None]  # G×K×1×H×W
    masks = torch.bernoulli(pi.expand(-1, -1, cfg.samples, -1, -1), generator=gen)
    shape = (*theta_p.shape[:2], cfg.samples, *theta_p.shape[2:])
    eps = torch.randn(shape, generator=gen, device=theta_p.device)
    pats = squash(theta_p[:, :, None] + cfg.sigma * eps)  # G×K×k×C×H×W
    classes = torch.arange(k, device=xb.device)
    block = max(1, max_inputs // (g * cfg.samples * b))
    f = torch.cat(
        [
            _target_ce(
                oracle, xb, masks[:, i : i + block], pats[:, i : i + block], classes[i : i + block]
            )
            for i in range(0, k, block)
        ],
        1,
    )  # G×K×k
    f = f - f.mean(-1, keepdim=True)
    pi = pi.squeeze(2)
    # the regulariser's expectation λ‖g(θ_m)‖₁ needs no query: its gradient is exact
    grad_m = (f[..., None, None] * 2 * (masks - pi[:, :, None])).mean(2)
    grad_m += lam[..., None, None] * 2 * pi * (1 - pi)
    grad_p = (f[..., None, None, None] * eps).mean(2) / cfg.sigma
    return grad_m, grad_p


def true_grad(group, xb, theta_m, theta_p, lam):
    """Neural Cleanse: exact gradients of the same objective through the model."""
    g, k, b = xb.shape[0], theta_m.shape[1], xb.shape[1]
    tm, tp = theta_m.detach().requires_grad_(), theta_p.detach().requires_grad_()
    m, p = squash(tm), squash(tp)
    x = stamp(xb[:, None], m[:, :, None], p[:, :, None])  # G×K×B×C×H×W
    logits = group(x.flatten(1, 2)).view(g, k, b, -1)
    target = torch.arange(k, device=xb.device).view(1, k, 1).expand(g, k, b)
    ce = F.cross_entropy(logits.flatten(0, 2), target.flatten(), reduction="none")
    loss = ce.view(g, k, b).mean(-1) + lam * m.sum((-1, -2))
    grad_m, grad_p = torch.autograd.grad(loss.sum(), (tm, tp))
    return grad_m, grad_p


@torch.no_grad()
def success_rate(oracle, xb, mask, pattern):
    """Fraction of the batch each (model, class) trigger sends to its class."""
    g, k, b = xb.shape[0], mask.shape[1], xb.shape[1]
    x = stamp(xb[:, None], mask[:, :, None], pattern[:, :, None])
    pred = oracle(x.flatten(1, 2)).view(g, k, b, -1).argmax(-1)
    return (pred == torch.arange(k, device=xb.device).view(1, k, 1)).float().mean(-1)


def reverse_engineer(group, data, cfg: ReverseConfig, method: str, seed: int, resume=None):
    """Reverse-engineer one trigger per (model, class) of `group` from `data` (G×N×C×H×W: each
    model's pool of inputs). method "b3d" queries probabilities only; "nc" uses gradients.

    Returns {norm: G×K L1 norms, mask: G×K×H×W, pattern: G×K×C×H×W, queries: G}."""
    g, n, c, h, w = data.shape
    k, dev = group.spec["num_classes"], data.device
    oracle = Oracle(group)
    gen = torch.Generator(dev).manual_seed(seed)
    theta_m = torch.zeros(g, k, h, w, device=dev)  # m = 0.5 and p = 0.5 everywhere to start
    theta_p = torch.zeros(g, k, c, h, w, device=dev)
    opt = torch.optim.Adam([theta_m, theta_p], lr=cfg.lr, betas=(0.5, 0.9))
    lam = torch.full((g, k), cfg.lambda0, device=dev)
    up, down = torch.zeros(g, k, device=dev), torch.zeros(g, k, device=dev)
    best = {
        "norm": torch.full((g, k), float(h * w), device=dev),
        "mask": torch.ones(g, k, h, w, device=dev),
        "pattern": torch.full((g, k, c, h, w), 0.5, device=dev),
    }
    start, state = 0, resume.load() if resume is not None else None
    if state is not None:
        theta_m, theta_p = state["theta_m"], state["theta_p"]
        opt = torch.optim.Adam([theta_m, theta_p], lr=cfg.lr, betas=(0.5, 0.9))
        opt.load_state_dict(state["opt"])
        lam, up, down, best = state["lam"], state["up"], state["down"], state["best"]
        gen.set_state(state["gen"])
        oracle.queries = state["queries"].to(dev)
        start = state["step"]
        log.info("resumed from %s after step %d", resume.path, start)
    for step in range(start, cfg.steps):
        xb = data[:, torch.randint(n, (min(cfg.batch, n),), generator=gen, device=dev)]
        if method == "nc":
            grad_m, grad_p = true_grad(group, xb, theta_m, theta_p, lam)
        else:
            grad_m, grad_p = nes_grad(oracle, xb, theta_m, theta_p, lam, cfg, gen)
        theta_m.grad, theta_p.grad = grad_m, grad_p
        opt.step()
        mask, pattern = squash(theta_m), squash(theta_p)
        asr = success_rate(oracle, xb, mask, pattern)
        norm = mask.sum((-1, -2))
        ok = asr >= cfg.asr_threshold
        better = ok & (norm < best["norm"])
        best["norm"] = torch.where(better, norm, best["norm"])
        best["mask"] = torch.where(better[..., None, None], mask, best["mask"])
        best["pattern"] = torch.where(better[..., None, None, None], pattern, best["pattern"])
        up, down = (up + 1) * ok, (down + 1) * ~ok
        lam = torch.where(up >= cfg.patience, lam * cfg.lambda_up, lam)
        lam = torch.where(down >= cfg.patience, lam / cfg.lambda_down, lam)
        up, down = up * (up < cfg.patience), down * (down < cfg.patience)
        if resume is not None and ((step + 1) % 25 == 0 or step + 1 == cfg.steps):
            resume.save(
                {
                    "theta_m": theta_m,
                    "theta_p": theta_p,
                    "opt": opt.state_dict(),
                    "lam": lam,
                    "up": up,
                    "down": down,
                    "best": best,
                    "gen": gen.get_state(),
                    "queries": oracle.queries,
                    "step": step + 1,
                }
            )
    if method == "nc":
        oracle.queries.zero_()  # white-box: gradients, not queries (the checks above aside)
    return {k: v.cpu() for k, v in {**best, "queries": oracle.queries}.items()}


def synthesize(group, shape, per_class: int, cfg: ReverseConfig, seed: int, device, resume=None):
    """B3D-SS: per-class inputs grown from noise by NES on CE(c, f(x)), x = g(θ); no data.

    Returns (G×(K·per_class)×C×H×W samples, their classes, queries per model)."""
    k, g = group.spec["num_classes"], group.size
    oracle = Oracle(group)
    gen = torch.Generator(device).manual_seed(seed)
    theta = torch.randn(g, k * per_class, *shape, generator=gen, device=device)  # noise
    labels = torch.arange(k, device=device).repeat_interleave(per_class)
    opt = torch.optim.Adam([theta], lr=cfg.lr)
    start, state = 0, resume.load() if resume is not None else None
    if state is not None:
        theta = state["theta"]
        opt = torch.optim.Adam([theta], lr=cfg.lr)
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        oracle.queries, start = state["queries"].to(device), state["step"]
        log.info("resumed from %s after synthesis step %d", resume.path, start)
    for step in range(start, cfg.steps):
        eps = torch.randn((g, k * per_class, cfg.samples, *shape), generator=gen, device=device)
        probs = oracle(squash(theta[:, :, None] + cfg.sigma * eps).flatten(1, 2))
        probs = probs.view(g, k * per_class, cfg.samples, k)
        lab = labels.view(1, -1, 1, 1).expand(g, -1, cfg.samples, 1)
        f = -probs.gather(-1, lab).squeeze(-1).clamp_min(1e-12).log()
        f = f - f.mean(-1, keepdim=True)
        theta.grad = (f[..., None, None, None] * eps).mean(2) / cfg.sigma
        opt.step()
        if resume is not None and ((step + 1) % 25 == 0 or step + 1 == cfg.steps):
            resume.save(
                {
                    "theta": theta,
                    "opt": opt.state_dict(),
                    "gen": gen.get_state(),
                    "queries": oracle.queries,
                    "step": step + 1,
                }
            )
    return squash(theta), labels, oracle.queries.cpu()


def anomaly_index(norms: torch.Tensor):
    """MAD anomaly index of the smallest norm per row (…×K): (median − min) / (1.4826·MAD),
    and the class with that norm. A model is flagged when the index exceeds 2."""
    med = norms.quantile(0.5, dim=-1)
    mad = 1.4826 * (norms - med[..., None]).abs().quantile(0.5, dim=-1)
    low, cls = norms.min(-1)
    return (med - low) / mad.clamp_min(1e-12), cls
