"""One adversarial-training recipe for every paper: a run name and a config section -> the
training method with its hooks, and the split loader the runs read their data with.

A run is named `<method>[_<addon>...]`: `pgd_at`, `trades_te`, `pgd_at_rr`. The method part
is one of the core's methods; each addon is a paper's hook (temporal ensembling, the RR head)
which the paper builds and passes in, so the core never imports a paper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from reprise.attacks import PGD
from reprise.data.prepared import ImageData, load_split
from reprise.errors import ConfigError
from reprise.training.methods import CCAT, METHODS, PGDAT, TRADES, Hook, Method, Standard


def parse_run(name: str, addons: Sequence[str] = ()) -> tuple[str, tuple[str, ...]]:
    """'trades_te' -> ('trades', ('te',)) when 'te' is an allowed addon; 'ccat' -> ('ccat', ())."""
    method, found = name, []
    stripped = True
    while stripped:
        stripped = False
        for addon in addons:
            if method.endswith(f"_{addon}") and addon not in found:
                method, stripped = method.removesuffix(f"_{addon}"), True
                found.append(addon)
    if method not in METHODS:
        allowed = "".join(f"[_{a}]" for a in addons)
        raise ConfigError(
            f"run {name!r}: expected <method>{allowed} with method one of {', '.join(METHODS)}"
        )
    return method, tuple(a for a in addons if a in found)


def build_method(
    method: str,
    attack: Mapping,
    *,
    trades: Mapping | None = None,
    ccat: Mapping | None = None,
    hooks: Sequence[Hook] = (),
) -> Method:
    """The core method from its config: `attack` is the training PGD, `trades` holds beta,
    `ccat` holds rho, ratio, CCAT's own attack and optionally its momentum and backtrack."""
    if method == "standard":
        return Standard(hooks=list(hooks))
    if method == "pgd_at":
        return PGDAT(PGD.from_config(attack), hooks=list(hooks))
    if method == "trades":
        if trades is None:
            raise ConfigError("a TRADES run needs its settings (beta)")
        return TRADES(PGD.from_config(attack), beta=trades["beta"], hooks=list(hooks))
    if method == "ccat":
        if ccat is None:
            raise ConfigError("a CCAT run needs its settings (rho, ratio, attack)")
        extra = {k: ccat[k] for k in ("momentum", "backtrack") if k in ccat}
        attack = PGD.from_config(ccat["attack"])
        return CCAT(attack, ccat["rho"], ccat["ratio"], hooks=list(hooks), **extra)
    raise ConfigError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")


def load_data(path: str | Path, data: Mapping | None = None, size: int | None = None) -> ImageData:
    """A prepared split as the config's `data:` section says (resized, recoloured), its first
    `size` samples when given."""
    opts = data or {}
    return load_split(path, size=opts.get("size"), channels=opts.get("channels"), limit=size)
