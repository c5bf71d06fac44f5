"""Read members of official tar archives in memory, never extracting them to disk.

Extracting would let a crafted archive write outside the data directory (absolute paths,
`..`, links); reading the regular-file members we ask for by name avoids that altogether.
"""

from __future__ import annotations

import contextlib
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from reprise.errors import DataError

_UNREADABLE = (tarfile.TarError, EOFError, zlib.error, OSError)


def _not_a_tar(path: Path, e: Exception) -> DataError:
    return DataError(f"{path} is not a readable tar archive ({e}): expected the official file")


def _missing(path: Path, names: Iterable[str]) -> DataError:
    return DataError(
        f"{path} has no regular file {', '.join(sorted(names))}: expected the official archive"
    )


def read_members(path: Path, names: Iterable[str]) -> dict[str, bytes]:
    """The named members' bytes, in one sequential pass (cheap on .tar.gz)."""
    wanted, found = set(names), {}
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    found[member.name] = tar.extractfile(member).read()
    except _UNREADABLE as e:
        raise _not_a_tar(path, e) from None
    if wanted - found.keys():
        raise _missing(path, wanted - found.keys())
    return found


@contextlib.contextmanager
def open_member(path: Path, name: str) -> Iterator[IO[bytes]]:
    """A seekable file object of one member of an uncompressed tar (reads only what is asked)."""
    try:
        with tarfile.open(path, "r:") as tar:
            try:
                member = tar.getmember(name)
            except KeyError:
                member = None
            if member is None or not member.isfile():
                raise _missing(path, [name])
            with tar.extractfile(member) as f:
                yield f
    except _UNREADABLE as e:
        raise _not_a_tar(path, e) from None
