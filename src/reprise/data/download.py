"""Fetch official dataset files and verify their published checksums.

A file already in place is verified, never re-downloaded. A download goes to a temporary
name and is renamed only once its checksum matches, so a truncated or corrupted archive
never sits where a good one is expected. Without network the error names the file to place
by hand and where.

Some official files have no published checksum (CelebA's in-the-wild 7z volumes, MAFL's
split lists, AFLW's archives); their RawFile says so with checksum None, and the archive
formats' own CRCs (7z, gzip) or the loader's parsing catch a damaged file instead. Such
files, and those behind a registration form, are `by_hand`: never downloaded (nothing could
tell an error page from the file), the error says where to get them and where to put them.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from reprise.errors import DataError
from reprise.io import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawFile:
    url: str
    filename: str
    checksum: str | None  # hex digest published with the dataset; None: none is published
    algorithm: str = "md5"
    by_hand: bool = False  # not fetched: a registration form, or no checksum to tell a good
    # download from an error page; `url` is where to get it


def digest(path: Path, algorithm: str = "md5") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _mismatch(path: Path, raw: RawFile) -> str | None:
    """What is wrong with `path` against its published checksum, or None if it matches (or
    there is no published checksum to compare with)."""
    if raw.checksum is None:
        return None
    got = digest(path, raw.algorithm)
    if got == raw.checksum:
        return None
    return (
        f"fails its {raw.algorithm} check ({path.stat().st_size} bytes, {raw.algorithm} {got}, "
        f"expected {raw.checksum}): the file is truncated or corrupted"
    )


def verify(path: Path, raw: RawFile) -> None:
    if problem := _mismatch(path, raw):
        raise DataError(f"{path} {problem}. Delete it and download it again from {raw.url}")


def fetch_file(raw: RawFile, dest_dir: Path, timeout: float = 60.0) -> Path:
    dest = Path(dest_dir) / raw.filename
    if dest.is_file():
        verify(dest, raw)
        return dest
    if raw.by_hand:
        raise DataError(
            f"{raw.filename} cannot be downloaded automatically: get it from {raw.url}, "
            f"then place it at {dest}"
        )
    log.info("downloading %s", raw.url)
    try:
        with atomic_path(dest) as tmp:
            with urllib.request.urlopen(raw.url, timeout=timeout) as resp, open(tmp, "wb") as f:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
            if problem := _mismatch(tmp, raw):  # the temporary file goes; nothing is kept
                raise DataError(
                    f"the download of {raw.url} {problem}. Retry, or {_place(raw, dest)}"
                )
    except (OSError, http.client.HTTPException) as e:  # URLError and timeouts are OSErrors
        raise DataError(
            f"cannot download {raw.url} ({e}). Without network, {_place(raw, dest)}"
        ) from None
    return dest


def describe_checksum(raw: RawFile) -> str:
    return "no published checksum" if raw.checksum is None else f"{raw.algorithm} {raw.checksum}"


def _place(raw: RawFile, dest: Path) -> str:
    return f"place the official file {raw.filename} ({describe_checksum(raw)}) at {dest}"
