"""The model zoo as papers see it: each run of a speech paper decodes a zoo model by name."""

from __future__ import annotations

from reprise.errors import ConfigError


def check_models(where: str, runs: dict, zoo, scale: str) -> None:
    """Every run's `model` is in `zoo` (config/speech.yaml's models at `scale`); `where`
    names the paper's config file in the one-line error."""
    for name, run in runs.items():
        if run["model"] not in zoo:
            raise ConfigError(
                f"{where}: runs.{name} decodes model {run['model']!r}; there is no model "
                f"{run['model']!r} in config/speech.yaml ({scale}) models: {', '.join(zoo)}"
            )
