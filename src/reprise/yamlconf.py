"""YAML config files: parsed once per modification (libyaml when present) and deep-merged.

The base of the package: config, the CLI and papers use it, and it imports nothing of
reprise but the errors.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from reprise.errors import ConfigError

# Every snakemake start validates ~40 config and schema files, some several times: libyaml
# and a cache keyed by modification time keep that to a fraction of the no-op run.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return copy.deepcopy(_parse_yaml(path.resolve(), path.stat().st_mtime_ns))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(
            f"{path} is not valid YAML: {getattr(e, 'problem', None) or e}{where}"
        ) from None


@functools.cache
def _parse_yaml(path: Path, mtime_ns: int) -> Any:
    return yaml.load(path.read_text(), Loader=_LOADER)


def deep_merge(base: dict, over: dict) -> dict:
    """`base` with `over` merged in, mapping by mapping; neither argument is changed."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = (
            deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out
