"""Datasets: one module per dataset, each declaring SPLITS, RAW_FILES and prepare().

A module may also declare SPLIT_FILES {split: (filename, ...)} when a split needs only some
of its raw files; otherwise every split needs all of them.

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

DATASETS = (
    "digits",
    "cifar10",
    "cifar100",
    "cifar10c",
    "svhn",
    "gtsrb",
    "celeba",
    "celeba_wild",
    "aflw",
    "cub",
    "voc_sheep",
    "imagenet",
)


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


def _check_split(name: str, split: str) -> None:
    if split not in splits(name):
        raise DataError(f"dataset {name} has no split {split!r}; splits: {', '.join(splits(name))}")


def raw_files(name: str, split: str | None = None) -> list:
    """The RawFiles that `split` is converted from (all of the dataset's when split is None)."""
    mod = module(name)
    if split is not None:
        _check_split(name, split)
    needed = getattr(mod, "SPLIT_FILES", {}).get(split)
    return [r for r in mod.RAW_FILES if needed is None or r.filename in needed]


def prepare(name: str, root: str | Path, split: str) -> Path:
    """Verify the raw files of `split` and convert them into its prepared file."""
    return prepare_splits(name, root, [split])[0]


def prepare_splits(name: str, root: str | Path, only: list[str] | None = None) -> list[Path]:
    """Prepare the splits `only` (all when None), verifying each raw file once, not per split."""
    from reprise.data.download import verify

    mod = module(name)
    chosen = list(only or mod.SPLITS)
    needed = {r.filename: r for s in chosen for r in raw_files(name, s)}
    for raw in needed.values():  # refuse a truncated/corrupted archive before converting it
        path = raw_dir(root, name) / raw.filename
        if not path.is_file():
            raise DataError(
                f"{path} is missing: run `reprise data fetch {name} --file {raw.filename} "
                f"--root {root}`"
            )
        verify(path, raw)
    outs = []
    for split in chosen:
        out = prepared_path(root, name, split)
        mod.prepare(raw_dir(root, name), split, out)  # writes atomically
        log.info("prepared %s/%s: %s", name, split, out)
        outs.append(out)
    return outs


def describe() -> str:
    """Every dataset with its splits and official files (`reprise data list`)."""
    import textwrap

    from reprise.data.download import describe_checksum

    lines = []
    for name in DATASETS:
        mod = module(name)
        lines.append(
            textwrap.fill(f"{name}: splits {', '.join(mod.SPLITS)}", 100, subsequent_indent="    ")
        )
        lines += [f"  {r.filename}  {describe_checksum(r)}  {r.url}" for r in mod.RAW_FILES]
        if not mod.RAW_FILES:
            lines.append("  (embedded: no download)")
    return "\n".join(lines)


def load(
    name: str, split: str, root: str | Path, size: int | None = None, channels: int | None = None
):
    from reprise.data.prepared import load_split

    _check_split(name, split)
    return load_split(prepared_path(root, name, split), size=size, channels=channels)
