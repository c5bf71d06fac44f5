"""Complexity measures proposed to explain (robust) generalisation, computed on a trained model.

Norm-based (Neyshabur et al. 2015, 2017; Bartlett et al. 2017), over the conv and linear
layers, a conv kernel read as the matrix (out, in·kh·kw):
- log10 of the product of spectral norms, Σ_l log10 ‖W_l‖₂;
- the sum of Frobenius norms, Σ_l ‖W_l‖_F;
- the ℓ2 path norm: sqrt(Σ outputs of the network whose every weight is squared, fed an
  all-ones input), with each batch norm folded into its per-channel affine map first (eval
  mode) and the input normalisation left out.
Sharpness-based (Jiang et al. 2019, "PAC-Bayes flatness"): 1/σ*², where σ* is the largest
standard deviation of isotropic Gaussian weight noise under which the mean robust training
error (PGD recomputed for each noisy model, labels as trained) rises by at most `tolerance`.

Larger means more complex for every measure: a measure that explains generalisation ranks a
model that cannot generalise (random labels) above one that does (true labels).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from reprise.data.prepared import ImageData
from reprise.metrics import accuracy
from reprise.models import evaluating
from reprise.runtime import Accel


def weight_matrices(model: nn.Module) -> list[torch.Tensor]:
    """Every conv and linear weight as a 2-D matrix (out, fan-in)."""
    return [
        m.weight.detach().flatten(1)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]


def log_spectral_product(model: nn.Module) -> float:
    return sum(
        math.log10(torch.linalg.matrix_norm(w, ord=2).item()) for w in weight_matrices(model)
    )


def frobenius_sum(model: nn.Module) -> float:
    return sum(torch.linalg.matrix_norm(w).item() for w in weight_matrices(model))


def squared_network(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers under which `model` (in eval mode) computes the network of
    squared weights: each weight and bias squared, each batch norm an affine map
    y = a²·x + b² of its folded scale a and shift b, and no input normalisation."""
    state = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    for name, m in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            scale = m.weight.detach() / torch.sqrt(m.running_var + m.eps)
            shift = m.bias.detach() - scale * m.running_mean
            state[prefix + "weight"] = scale.pow(2)
            state[prefix + "bias"] = shift.pow(2)
            state[prefix + "running_mean"] = torch.zeros_like(m.running_mean)
            state[prefix + "running_var"] = torch.full_like(m.running_var, 1.0 - m.eps)
        elif isinstance(m, nn.Conv2d | nn.Linear):
            state[prefix + "weight"] = m.weight.detach().pow(2)
            if m.bias is not None:
                state[prefix + "bias"] = m.bias.detach().pow(2)
        elif isinstance(m, nn.GroupNorm | nn.LayerNorm):
            raise ValueError("the path norm is defined here for batch-norm networks only")
    for key in ("mean", "std"):  # ImageClassifier's input normalisation
        if key in state:
            state[key] = (
                torch.zeros_like(state[key]) if key == "mean" else torch.ones_like(state[key])
            )
    return state


@torch.no_grad()
def path_norm(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    with evaluating(model):
        out = functional_call(model, squared_network(model), (torch.ones(1, *input_shape),))
    return math.sqrt(out.sum().item())


def _error(model, data: ImageData, attack, accel: Accel) -> float:
    return 1.0 - accuracy(model, data, attack=attack, accel=accel)


@torch.no_grad()
def _noisy_error(model, data, attack, sigma: float, draws: int, gen, accel) -> float:
    """Mean error over `draws` copies of the model with N(0, sigma²) added to every weight."""
    params = [p for p in model.parameters()]
    saved = [p.detach().clone() for p in params]
    errors = []
    try:
        for _ in range(draws):
            for p, w in zip(params, saved, strict=True):
                noise = torch.randn(w.shape, generator=gen).to(w.device, w.dtype)
                p.copy_(w + sigma * noise)
            with torch.enable_grad():
                errors.append(_error(model, data, attack, accel))
    finally:
        for p, w in zip(params, saved, strict=True):
            p.copy_(w)
    return sum(errors) / len(errors)


def pac_bayes_flatness(
    model: nn.Module,
    data: ImageData,
    attack,
    *,
    tolerance: float,
    draws: int,
    sigma_range: tuple[float, float],
    steps: int,
    seed: int,
    accel: Accel,
) -> tuple[float, float]:
    """(1/σ*², σ*) by bisection on log σ within `sigma_range`: the largest σ whose mean robust
    error stays within `tolerance` of the unperturbed model's. The noise draws are fixed by
    `seed`, so the measure is deterministic."""
    base = _error(model, data, attack, accel)
    lo, hi = math.log(sigma_range[0]), math.log(sigma_range[1])
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        gen = torch.Generator().manual_seed(seed)
        if _noisy_error(model, data, attack, math.exp(mid), draws, gen, accel) - base <= tolerance:
            lo = mid
        else:
            hi = mid
    sigma = math.exp(lo)
    return 1.0 / sigma**2, sigma


def measures(model, data: ImageData, attack, cfg: dict, seed: int, accel: Accel) -> dict:
    """The four measures of one model (data: the training samples, labels as trained): log10
    of the product of the layers' spectral norms, the sum of their Frobenius norms, the l2
    path norm, and PAC-Bayes flatness (1/σ*² of the largest Gaussian weight noise that keeps
    the robust training error within tolerance), plus σ*."""
    flatness, sigma = pac_bayes_flatness(
        model,
        data,
        attack,
        tolerance=cfg["tolerance"],
        draws=cfg["draws"],
        sigma_range=tuple(cfg["sigma_range"]),
        steps=cfg["search_steps"],
        seed=seed,
        accel=accel,
    )
    return {
        "log_spectral_product": log_spectral_product(model),
        "frobenius_sum": frobenius_sum(model),
        "path_norm": path_norm(model, tuple(data.x.shape[1:])),
        "pac_bayes_flatness": flatness,
        "sigma": sigma,
    }
