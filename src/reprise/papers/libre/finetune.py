"""LiBRe's fine-tuning (Deng et al. 2021, Sec. 3.3 and the authors' finetune_imagenet.py).

Every batch of B clean images x is followed by B/2 noisy copies x' = clip(x + n) of its
first half, n ~ U(−ε, ε)^D with ε ~ U(min, max)·eps per batch, the noise Gaussian-blurred
with probability `blur_prob`. All B + B/2 inputs go through every member in one pass; then
- each clean image is scored by ONE random member: cross-entropy (the members see different
  data, as a deep ensemble's members do);
- each noisy image is seen by TWO distinct random members a, b, whose feature disagreement
  m = mean_d (z_a − z_b)² must exceed γ: loss += α · mean ReLU(γ − m).
α = 0 is the ablation without the uncertainty regulariser. The members' parameters use SGD
at a rate cosine-annealed per step from `lr` to `ft_lr` (weight decay / C); the rest of the
network keeps `ft_lr`. MC dropout (no members of its own) trains with the cross-entropy only.
A mean-field posterior adds the ELBO's KL per training example, KL(q ‖ N(0, 1/(λN))) / N
(λ = the method's prior_decay, N = the training set's size), and its μ and ψ get no weight
decay: the authors' PsiSGD and SGD weight decay give them exactly this term's gradients
(λμ and λσ² − 1/N).

Resumable: the state after each epoch (weights, both optimisers, RNG, rows) goes to
rt.resume; the data order and augmentation derive from (seed, epoch).
"""

from __future__ import annotations

import logging
import math
import time

import torch
import torch.nn.functional as F

from reprise.attacks.momentum import gaussian_kernel
from reprise.attacks.pgd import magnitude
from reprise.errors import ConfigError
from reprise.papers.libre.stacked import kl_to_prior, member_parameters, prior_parameters
from reprise.training import crop_flip, epoch_generator, rng_state, set_rng_state

log = logging.getLogger("reprise")


def blur(noise: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Gaussian blur of each channel (size×size kernel of std `sigma` pixels)."""
    kernel = gaussian_kernel(size, (size - 1) / (2 * sigma))  # ±nsig·σ spans the kernel
    c = noise.shape[1]
    weight = kernel.to(noise)[None, None].expand(c, 1, size, size)
    pad = size // 2
    padded = F.pad(
        noise, (pad, pad, pad, pad), mode="reflect" if pad < noise.shape[-1] else "replicate"
    )
    return F.conv2d(padded, weight, groups=c)


def noisy_copies(x: torch.Tensor, cfg: dict) -> torch.Tensor:
    """Uniform (sometimes blurred) noise of a random magnitude on x, clipped to [0, 1]."""
    eps = magnitude(cfg["eps"], "noise.eps") * float(torch.empty(()).uniform_(*cfg["scale"]))
    noise = torch.empty_like(x).uniform_(-eps, eps)
    if float(torch.rand(())) < cfg["blur_prob"]:
        sizes = cfg["blur_kernels"]
        size = sizes[int(torch.randint(len(sizes), ()))]
        sigma = float(torch.empty(()).uniform_(*cfg["blur_sigma"]))
        noise = blur(noise, size, max(sigma, 1e-3))
    return (x + noise).clamp(0, 1)


def hinge(z_noisy: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean ReLU(γ − m), m) for member features z_noisy (n × C × d) of noisy inputs, where
    m = mean_d (z_a − z_b)² for two distinct random members a, b per input."""
    n, c = z_noisy.shape[:2]
    a = torch.randint(c, (n,), device=z_noisy.device)
    b = (a + torch.randint(1, c, (n,), device=z_noisy.device)) % c  # b ≠ a, uniform
    rows = torch.arange(n, device=z_noisy.device)
    m = (z_noisy[rows, a] - z_noisy[rows, b]).pow(2).mean(1)
    return F.relu(gamma - m).mean(), m


def routed_ce(model, z_clean: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of one random member per clean input."""
    n, c = z_clean.shape[:2]
    pick = torch.randint(c, (n,), device=z_clean.device)
    logits = model.classifier(z_clean[torch.arange(n, device=z_clean.device), pick])
    return F.cross_entropy(logits, y)


def decay_groups(params: list, weight_decay: float, kl_covered: set[int]) -> list[dict]:
    """Parameter groups: weight decay for all but those whose prior is the KL term's."""
    groups = [
        {"params": [p for p in params if id(p) not in kl_covered], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) in kl_covered], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def optimisers(model, cfg: dict) -> tuple[torch.optim.SGD, torch.optim.SGD | None]:
    """(rest of the network at ft_lr, the members' own parameters at lr, or None)."""
    own = member_parameters(model)
    ids = {id(p) for p in own}
    covered = {id(p) for p in prior_parameters(model)}
    rest = [p for p in model.parameters() if id(p) not in ids]
    wd, sgd = cfg["weight_decay"], dict(momentum=cfg["momentum"])
    opt_rest = torch.optim.SGD(decay_groups(rest, wd, covered), lr=cfg["ft_lr"], **sgd)
    if not own:
        return opt_rest, None
    groups = decay_groups(own, wd / model.members, covered)
    return opt_rest, torch.optim.SGD(groups, lr=cfg["lr"], **sgd)


def kl_term(model, method: dict, n_train: int) -> torch.Tensor:
    """KL(q ‖ N(0, 1/(λN))) / N for a mean_field method (λ = its prior_decay); 0 otherwise."""
    if method["kind"] != "mean_field":
        return torch.zeros(())
    lam = method.get("prior_decay")
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not lam > 0:
        raise ConfigError(
            f"method prior_decay = {lam!r}; a mean_field method needs a positive number "
            "(the prior is N(0, 1/(prior_decay · N_train)); the authors' value is 1e-4)"
        )
    return kl_to_prior(model, 1.0 / (lam * n_train)) / n_train


def member_lr(cfg: dict, progress: float) -> float:
    """The members' rate at `progress` (epochs done, fractional) of the run: cosine lr → ft_lr."""
    lo, hi = cfg["ft_lr"], cfg["lr"]
    return lo + (hi - lo) * (1 + math.cos(math.pi * progress / cfg["epochs"])) / 2


def finetune(model, train, cfg: dict, method: dict, *, seed: int, resume=None, test=None):
    """Fine-tune `model` (a Refined or MCDropout) in place; returns the per-epoch rows."""
    opt_rest, opt_own = optimisers(model, cfg)
    alpha, gamma = method.get("alpha", 0.0), method.get("gamma", 0.0)
    use_noise = method["kind"] != "mc_dropout"
    state = resume.load() if resume is not None else None
    start, rows = 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        opt_rest.load_state_dict(state["opt_rest"])
        if opt_own is not None:
            opt_own.load_state_dict(state["opt_own"])
        set_rng_state(state["rng"])
        start, rows = state["epoch"], list(state["rows"])
        log.info("resumed from %s after epoch %d", resume.path, start)
    bs, n = cfg["batch_size"], len(train)
    steps = math.ceil(n / bs)
    for epoch in range(start, cfg["epochs"]):
        t0 = time.perf_counter()
        gen = epoch_generator(seed, epoch)
        order = torch.randperm(n, generator=gen)
        aug = cfg.get("augment", {})
        model.train()
        sums = {"loss": 0.0, "ce": 0.0, "hinge": 0.0, "disagreement": 0.0, "kl": 0.0}
        for i in range(steps):
            idx = order[i * bs : (i + 1) * bs]
            x = crop_flip(train.x[idx], gen, aug.get("crop", 0), aug.get("flip", False))
            y = train.y[idx]
            half = x[: len(x) // 2]
            inputs = torch.cat([x, noisy_copies(half, cfg["noise"])]) if use_noise else x
            penultimate, scored = model.split(model.member_features(inputs))
            ce = routed_ce(model, penultimate[: len(x)], y)
            kl = kl_term(model, method, n)
            loss = ce + kl
            if use_noise:
                h, m = hinge(scored[len(x) :], gamma)
                loss = loss + alpha * h
                sums["hinge"] += h.item()
                sums["disagreement"] += m.mean().item()
            if opt_own is not None:
                for group in opt_own.param_groups:
                    group["lr"] = member_lr(cfg, epoch + i / steps)
                opt_own.zero_grad(set_to_none=True)
            opt_rest.zero_grad(set_to_none=True)
            loss.backward()
            opt_rest.step()
            if opt_own is not None:
                opt_own.step()
            sums["loss"] += loss.item()
            sums["ce"] += ce.item()
            sums["kl"] += kl.item()
        row = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}}
        if test is not None:
            row["test_acc"] = accuracy(model, test)
        rows.append(row)
        if resume is not None:
            resume.save(
                {
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "opt_rest": opt_rest.state_dict(),
                    "opt_own": opt_own.state_dict() if opt_own is not None else {},
                    "rng": rng_state(),
                    "rows": rows,
                }
            )
        log.info(
            "epoch %d/%d (%.1fs): %s",
            epoch + 1,
            cfg["epochs"],
            time.perf_counter() - t0,
            ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch"),
        )
    return rows


@torch.no_grad()
def accuracy(model, data, batch_size: int = 500) -> float:
    """Accuracy of the members' mean prediction (eval mode; dropout stays on for MC dropout)."""
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(data), batch_size):
        correct += (
            (model(data.x[i : i + batch_size]).argmax(1) == data.y[i : i + batch_size]).sum().item()
        )
    model.train(was)
    return correct / max(len(data), 1)
