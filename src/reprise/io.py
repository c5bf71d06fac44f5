"""Atomic file output, JSON/Parquet tables and safe checkpoints.

Every output goes through `atomic_path`: the content is written to a temporary sibling and
renamed into place, so a killed job never leaves a half file that looks whole.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reprise.errors import CheckpointError, ReproError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it over `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _jsonable(x: Any) -> Any:
    """Plain JSON: numpy/torch scalars become floats, NaN/inf become null (JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ReproError(f"{path} does not exist") from None
    except json.JSONDecodeError as e:
        raise ReproError(f"{path} is not valid JSON: {e}") from None


def write_table(path: str | Path, df) -> None:
    """Write a DataFrame as Parquet plus a CSV copy beside it (same stem)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    with atomic_path(path.with_suffix(".csv")) as tmp:
        df.to_csv(tmp, index=False)


def read_table(path: str | Path):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ReproError(f"table {path} does not exist")
    return pd.read_parquet(path)


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Save tensors, numbers, strings and containers of them (nothing that needs pickle code)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> dict:
    """Load a checkpoint as untrusted input: `weights_only=True`, so no pickled code runs."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(
            f"checkpoint {path} was refused: it holds objects that are not plain tensors or "
            f"containers ({first}). Only weights-only checkpoints are loaded."
        ) from None
    except Exception as e:  # garbage bytes surface as KeyError, ValueError, ... from the unpickler
        raise CheckpointError(
            f"checkpoint {path} is unreadable (truncated or corrupt?): {e}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, expected a dict")
    return state
