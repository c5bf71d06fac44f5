"""The model population: each model's recipe is drawn from its own seed and kept with it.

Even-numbered models are clean, odd-numbered ones backdoored, cycling through the attacks:
- patch (BadNets): a size×size patch of a random binary pattern in a random corner;
- blend (Chen et al. 2017): the whole image blended with a random noise pattern, weight alpha.
The target class, trigger size or blend weight and the poison rate are drawn per model.
Either trigger is A(x, m, p) = (1 - m)·x + m·p, the form B3D reverse-engineers, so the true
(m, p) is stored next to the reversed one.
"""

from __future__ import annotations

import numpy as np
import torch

from reprise.errors import ConfigError

ATTACKS = ("patch", "blend")


def model_seed(base: int, index: int) -> int:
    return int(np.random.SeedSequence([base, index]).generate_state(1)[0])


def draw_recipe(
    index: int, base_seed: int, shape: tuple[int, int, int], num_classes: int, attacks: dict
) -> dict:
    """The recipe of model `index`: plain values plus its true trigger (mask, pattern)."""
    c, h, w = shape
    seed = model_seed(base_seed, index)
    rng = np.random.default_rng(seed)
    recipe = {
        "model": index,
        "seed": seed,
        "attack": "clean",
        "target": -1,
        "trigger_size": 0,
        "alpha": 0.0,
        "poison_rate": 0.0,
    }
    mask, pattern = np.zeros((h, w), np.float32), np.zeros((c, h, w), np.float32)
    names = [a for a in ATTACKS if a in attacks]
    if not names:
        raise ConfigError(f"population.attacks must name at least one of {list(ATTACKS)}")
    if index % 2 == 1:
        attack = names[(index // 2) % len(names)]
        spec = attacks[attack]
        recipe["attack"] = attack
        recipe["target"] = int(rng.integers(num_classes))
        recipe["poison_rate"] = float(rng.uniform(*spec["poison_rate"]))
        if attack == "patch":
            s = int(rng.choice(spec["sizes"]))
            corner = int(rng.integers(4))  # BadNets puts its patch in a corner
            top, left = (h - s) * (corner // 2), (w - s) * (corner % 2)
            bits = rng.integers(0, 2, size=(c, s, s)).astype(np.float32)
            bits[:, 0, 0] = 1.0  # never an all-dark patch (invisible on dark backgrounds)
            mask[top : top + s, left : left + s] = 1.0
            pattern[:, top : top + s, left : left + s] = bits
            recipe["trigger_size"] = s
        else:
            alpha = float(rng.uniform(*spec["alpha"]))
            mask[:] = alpha
            pattern[:] = rng.uniform(0, 1, size=(c, h, w))
            recipe["alpha"] = alpha
    recipe["true_mask"], recipe["true_pattern"] = torch.from_numpy(mask), torch.from_numpy(pattern)
    return recipe


def stamp(x: torch.Tensor, mask: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """A(x, m, p) = (1 - m)·x + m·p, broadcasting m (…×H×W) over channels."""
    m = mask.unsqueeze(-3)
    return (1 - m) * x + m * pattern


def poison_batch(x, y, masks, patterns, targets, rates, gen):
    """Each model's view of one shared batch: a fraction `rate` of it stamped and relabelled.

    x: N×C×H×W, y: N; masks G×H×W, patterns G×C×H×W, targets/rates G. Returns G×N×C×H×W, G×N."""
    g = len(targets)
    poisoned = torch.rand(g, len(y), generator=gen, device=x.device) < rates[:, None]
    xs = torch.where(
        poisoned[..., None, None, None], stamp(x[None], masks[:, None], patterns[:, None]), x[None]
    )
    ys = torch.where(poisoned, targets[:, None], y[None])
    return xs, ys
