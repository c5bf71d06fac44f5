"""One subpackage per paper. Its `__init__` stays torch-free and declares METRICS: the keys
its evaluate step writes to metrics.json (claims may only name these). Its `steps` module
holds the step functions the CLI dispatches to (`reprise <paper> <step>`)."""

import importlib
import pkgutil
from functools import cache

from reprise.errors import ConfigError


@cache
def available() -> tuple[str, ...]:
    """Slugs of the papers implemented in this checkout."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg))


def package(slug: str):
    if slug not in available():
        raise ConfigError(
            f"unknown paper {slug!r}: implemented papers are {', '.join(available())}"
        )
    return importlib.import_module(f"{__name__}.{slug}")


def declared_metrics(slug: str) -> dict[str, str]:
    """Metric key -> description, as the paper's evaluate step writes them."""
    return dict(package(slug).METRICS)


def timed_metrics(slug: str) -> set[str]:
    """The paper's metrics measured from wall-clock time (see reprise.metric_table)."""
    return set(package(slug).METRICS.timed)


def steps(slug: str):
    """The paper's step registry (its `steps` module's STEPS)."""
    package(slug)
    return importlib.import_module(f"{__name__}.{slug}.steps").STEPS
