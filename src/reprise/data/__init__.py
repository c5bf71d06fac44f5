"""Datasets: one module per dataset, each declaring SPLITS, RAW_FILES and prepare().

Layout under the data root (DVC-tracked, git-ignored):
    <root>/raw/<dataset>/<official file name>     downloads, checksum-verified
    <root>/prepared/<dataset>/<split>.pt          one prepared file per split
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from reprise.errors import DataError

log = logging.getLogger(__name__)

DATASETS = ("digits",)


def module(name: str):
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return importlib.import_module(f"{__name__}.{name}")


def splits(name: str) -> tuple[str, ...]:
    return tuple(module(name).SPLITS)


def raw_dir(root: str | Path, name: str) -> Path:
    return Path(root) / "raw" / name


def prepared_path(root: str | Path, name: str, split: str) -> Path:
    return Path(root) / "prepared" / name / f"{split}.pt"


def fetch(name: str, root: str | Path, filename: str | None = None) -> list[Path]:
    """Download (or verify in place) the official raw files of `name` (or just `filename`)."""
    from reprise.data.download import fetch_file

    files = [r for r in module(name).RAW_FILES if filename in (None, r.filename)]
    if filename is not None and not files:
        known = ", ".join(r.filename for r in module(name).RAW_FILES) or "none (embedded)"
        raise DataError(f"dataset {name} has no raw file {filename!r}; its files: {known}")
    return [fetch_file(raw, raw_dir(root, name)) for raw in files]


def prepare(name: str, root: str | Path, split: str) -> Path:
    """Verify the raw files of `name` and convert them into the prepared file of `split`."""
    from reprise.data.download import verify

    mod = module(name)
    if split not in mod.SPLITS:
        raise DataError(f"dataset {name} has no split {split!r}; splits: {', '.join(mod.SPLITS)}")
    for raw in mod.RAW_FILES:  # refuse a truncated/corrupted archive before converting it
        path = raw_dir(root, name) / raw.filename
        if not path.is_file():
            raise DataError(f"{path} is missing: run `reprise data fetch {name} --root {root}`")
        verify(path, raw)
    out = prepared_path(root, name, split)
    mod.prepare(raw_dir(root, name), split, out)  # writes atomically
    log.info("prepared %s/%s: %s", name, split, out)
    return out


def load(
    name: str, split: str, root: str | Path, size: int | None = None, channels: int | None = None
):
    from reprise.data.prepared import load_split

    if split not in splits(name):
        raise DataError(f"dataset {name} has no split {split!r}; splits: {', '.join(splits(name))}")
    return load_split(prepared_path(root, name, split), size=size, channels=channels)
