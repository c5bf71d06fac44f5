"""Run names: an AT framework, optionally with the RR head: pgd_at, pgd_at_rr, trades_rr, ..."""

from __future__ import annotations

from reprise.errors import ConfigError
from reprise.papers.rejection import FRAMEWORKS


def parse_run(name: str) -> tuple[str, bool]:
    """'trades_rr' -> ('trades', True); 'ccat' -> ('ccat', False)."""
    framework, rr = (name[:-3], True) if name.endswith("_rr") else (name, False)
    if framework not in FRAMEWORKS:
        raise ConfigError(
            f"run {name!r}: expected <framework> or <framework>_rr with framework one of "
            f"{', '.join(FRAMEWORKS)}"
        )
    return framework, rr
