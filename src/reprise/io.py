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
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reprise.errors import CheckpointError, ReproError


def _file_mode() -> int:
    """The mode the umask gives an ordinary new file (mkstemp's temporaries are 0600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_writable(path: str | Path) -> None:
    """Refuse an output path that cannot be written (a directory, or under a directory this
    user cannot write to), before a step spends its time computing it."""
    path = Path(path)
    if path.is_dir():
        raise ReproError(f"output {path} is an existing directory; expected a file path")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ReproError(f"output {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ReproError(f"output {path}: directory {parent} is not writable")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it over `path` only on success.

    The content is synced to disk before the rename and the directory after it, so a power
    cut or node crash leaves the old file or the whole new one, never zeros under the final
    name. The file gets the umask's mode, as an ordinary new file would."""
    path = Path(path)
    check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # some network file systems cannot sync a folder
            _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY)
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
    """Save tensors, numbers, strings and containers of them (nothing that needs pickle code).
    Byte-stable: through a file object torch names the archive's folder `archive`, not after
    the temporary file's random name."""
    import torch

    with atomic_path(path) as tmp, tmp.open("wb") as f:
        torch.save(state, f)


ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format
PICKLE_MAGIC = b"\x80"  # a pickle of protocol >= 2 (torch.save's legacy format)


def _refusal(err: Exception) -> str:
    """Why torch's weights-only unpickler refused a file, without its advice to disable it."""
    keep = [
        line.strip()
        for line in str(err).splitlines()[1:]
        if line.strip() and not line.startswith(("Please file an issue", "Check the doc"))
    ]
    return " ".join(keep).rstrip(".") or type(err).__name__


def load_checkpoint(
    path: str | Path, map_location: str = "cpu", what: str = "checkpoint", mmap: bool = False
) -> Any:
    """Load a checkpoint as untrusted input: only tensors, numbers, strings and containers of
    them are rebuilt, so no pickled code runs. Bad files stop with one line naming the file.
    `mmap`: tensors stay in the file, read when used (a zip-format file only)."""
    import torch

    path = Path(path)
    if not path.is_file():
        state = "is a directory" if path.is_dir() else "does not exist"
        raise CheckpointError(f"{what} {path} {state}")
    with path.open("rb") as f:
        head = f.read(4)
    if not head:
        raise CheckpointError(f"{what} {path} is empty (0 bytes)")
    if not head.startswith((ZIP_MAGIC, PICKLE_MAGIC)):
        raise CheckpointError(
            f"{path} is not a {what}: not a zip or pickle file (it starts with {head!r})"
        )
    try:
        with warnings.catch_warnings():  # torch warns about unusual pickle protocols first
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{what} {path} was refused: loading it would need objects other than tensors, "
            f"numbers, strings and containers of them ({_refusal(e)}). Only plain data is "
            "loaded from a file, since a pickle can run arbitrary code; re-create the file "
            "with reprise (reprise.io.save_checkpoint)"
        ) from None
    except Exception as e:  # a damaged archive surfaces as RuntimeError, KeyError, ...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0]
        raise CheckpointError(
            f"{what} {path} is unreadable (truncated or corrupt?): {first}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{what} {path} holds a {type(state).__name__}, expected a dict")
    return state
