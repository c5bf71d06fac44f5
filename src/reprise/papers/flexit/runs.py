"""flexit's config lists checked against each other and the speech zoo: the runs every claim
reads, each run's zoo model, each sweep's runs (one ConfigError line naming the bad entry)."""

from __future__ import annotations

from reprise.errors import ConfigError
from reprise.speech.zoo import check_models

WHERE = "config/papers/flexit.yaml"
NEEDED = ("baseline", "flexit")  # the comparison every claim reads


def check_runs(section: dict, zoo: dict, scale: str) -> None:
    """`section`: flexit's scale section; `zoo`: config/speech.yaml's models at `scale`."""
    runs = section["runs"]
    for name in NEEDED:
        if name not in runs:
            raise ConfigError(f"{WHERE}: runs needs an entry {name!r}")
    check_models(WHERE, runs, zoo, scale)
    for name, sweep in section["sweeps"].items():
        for run in sweep["runs"]:
            if run not in runs:
                raise ConfigError(
                    f"{WHERE}: sweeps.{name} names run {run!r}, which is not in runs "
                    f"({', '.join(runs)})"
                )
