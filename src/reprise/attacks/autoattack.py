"""AutoAttack (Croce and Hein, ICML 2020) run by its authors' own code, the `pyautoattack`
package: robust accuracy as the field (RobustBench) reports it. Called like every attack here,
attack(model, x, y, extra=None) -> x_adv; `extra` (an adaptive loss term) does not apply.

    AutoAttack.from_config({"eps": "8/255"})                          # the standard version
    AutoAttack.from_config({"eps": 0.15, "attacks": ["apgd-ce", "apgd-t"], "n_iter": 20})

`attacks` (a custom subset of apgd-ce, apgd-t, apgd-dlr, fab, fab-t, square) replaces the
standard four; `n_iter`, `restarts` and `target_classes` lower the package's own settings
(100 iterations, 1 restart and 9 target classes in the standard version) for a smoke run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from reprise.attacks.pgd import from_section
from reprise.errors import ConfigError

PACKAGE_ATTACKS = ("apgd-ce", "apgd-t", "apgd-dlr", "fab", "fab-t", "square")


@dataclass(frozen=True)
class AutoAttack:
    eps: float
    norm: str = "Linf"
    attacks: tuple[str, ...] = ()  # empty: the standard version
    n_iter: int | None = None
    restarts: int | None = None
    target_classes: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.norm not in ("Linf", "L2", "L1"):
            raise ConfigError(f"autoattack.norm = {self.norm!r}; expected Linf, L2 or L1")
        bad = [a for a in self.attacks if a not in PACKAGE_ATTACKS]
        if bad:
            raise ConfigError(f"autoattack.attacks: unknown {bad}; expected {PACKAGE_ATTACKS}")

    @classmethod
    def from_config(cls, cfg: dict) -> AutoAttack:
        cfg = dict(cfg)
        if "attacks" in cfg:
            cfg["attacks"] = tuple(cfg["attacks"])
        return from_section(cls, cfg, where="autoattack", magnitudes=("eps",))

    def __call__(self, model, x, y, extra=None) -> torch.Tensor:
        from pyautoattack import AutoAttack as Package

        version = "custom" if self.attacks else "standard"
        aa = Package(
            model,
            attacks=list(self.attacks) or None,
            device=x.device,
            eps=self.eps,
            norm=self.norm,
            seed=self.seed,
            version=version,
        )
        aa.logger.setLevel(logging.WARNING)  # its per-attack progress lines
        if version == "custom":  # the standard version's settings, as _set_version makes them
            aa.apgd.n_restarts = 1
            aa.apgd_targeted.n_target_classes = 9
            aa.fab.n_restarts = 1
            aa.fab.n_target_classes = 9
        if self.n_iter is not None:
            aa.apgd.n_iter = aa.apgd_targeted.n_iter = aa.fab.n_iter = self.n_iter
        if self.restarts is not None:
            aa.apgd.n_restarts = aa.apgd_targeted.n_restarts = self.restarts
        if self.target_classes is not None:
            aa.apgd_targeted.n_target_classes = aa.fab.n_target_classes = self.target_classes
        training = model.training
        model.eval()
        try:
            with torch.enable_grad():
                x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=len(x))
        finally:
            model.train(training)
        return x_adv.detach()
