"""Named attacks from a config mapping, one `kind` each, so a paper lists its attack table
in YAML and calls every entry the same way: attack(model, x, y, extra=None) -> x_adv.

    attacks = build_attacks({"pgd": {"kind": "pgd", "eps": "16/255", "step_size": "1/255",
                                     "steps": 20}, "tim": {"kind": "mim", "ti_kernel": 5, ...}})

kinds:
- fgsm, bim, pgd: the core PGD under L∞ (fgsm: one step of ε from x; bim: from x; pgd: from
  a random point); any PGD option (loss: cw gives the "CW" attack of PGD-style benchmarks).
- mim: momentum iterative (MIM; TIM with ti_kernel; DI-MIM with di_prob).
- fgsm_l2, bim_l2, pgd_l2: the L2 variants (ε per pixel × √D unless per_pixel: false).
- spsa: gradient-free SPSA.
- cw: Carlini-Wagner optimisation (reprise.attacks.cw).
- autoattack: Croce and Hein's AutoAttack, their own code (reprise.attacks.autoattack).
"""

from __future__ import annotations

from collections.abc import Callable

from reprise.attacks.autoattack import AutoAttack
from reprise.attacks.cw import CW
from reprise.attacks.l2 import L2Attack
from reprise.attacks.momentum import MIM
from reprise.attacks.pgd import PGD
from reprise.attacks.spsa import SPSA
from reprise.errors import ConfigError

KINDS = ("fgsm", "bim", "pgd", "mim", "fgsm_l2", "bim_l2", "pgd_l2", "spsa", "cw", "autoattack")


def build_attack(name: str, spec: dict) -> Callable:
    """One configured attack; `name` only labels errors."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in KINDS:
        raise ConfigError(f"attack {name}: kind = {kind!r}; expected one of {KINDS}")
    if kind == "fgsm":
        eps = spec.get("eps")
        spec = {**spec, "step_size": eps, "steps": 1, "random_start": False}
        return PGD.from_config(spec)
    if kind in ("bim", "pgd"):
        return PGD.from_config({**spec, "random_start": kind == "pgd"})
    if kind == "mim":
        return MIM.from_config(spec)
    if kind.endswith("_l2"):
        return L2Attack.from_config(kind.removesuffix("_l2"), spec)
    if kind == "spsa":
        return SPSA.from_config(spec)
    if kind == "autoattack":
        return AutoAttack.from_config(spec)
    cw = CW.from_config(spec)
    return lambda model, x, y, extra=None: cw(model, x, y, penalty=extra)


def build_attacks(cfg: dict) -> dict[str, Callable]:
    return {name: build_attack(name, spec) for name, spec in cfg.items()}
