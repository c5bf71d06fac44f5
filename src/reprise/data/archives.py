"""Read members of official tar and 7z archives in memory, never extracting them to disk.

Extracting would let a crafted archive write outside the data directory (absolute paths,
`..`, links); reading the regular-file members we ask for by name avoids that altogether.
A multi-volume 7z archive (CelebA's img_celeba.7z.001-014) is read as the concatenation of
its volumes; 7z checks each member's CRC as it decompresses (needs the py7zr package).
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
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


def each_member(path: Path, wanted: Callable[[str], bool], handle: Callable[[str, bytes], None]):
    """handle(name, bytes) for every regular-file member whose name `wanted` accepts, in one
    sequential pass (cheap on .tar.gz; only one member is held at a time)."""
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if member.isfile() and wanted(member.name):
                    handle(member.name, tar.extractfile(member).read())
    except _UNREADABLE as e:
        raise _not_a_tar(path, e) from None


def read_members(path: Path, names: Iterable[str]) -> dict[str, bytes]:
    """The named members' bytes, in one sequential pass (cheap on .tar.gz)."""
    wanted, found = set(names), {}
    each_member(path, wanted.__contains__, found.__setitem__)
    if wanted - found.keys():
        raise _missing(path, wanted - found.keys())
    return found


def read_ending(path: Path, suffix: str) -> bytes:
    """The bytes of the member whose name ends with `suffix` (an archive that wraps its tree in
    a top folder of its own still matches)."""
    found = {}
    each_member(path, lambda n: n == suffix or n.endswith("/" + suffix), found.__setitem__)
    if not found:
        raise _missing(path, [suffix])
    return next(iter(found.values()))


def each_7z_member(
    volumes: list[Path], wanted: Callable[[str], bool], handle: Callable[[str, bytes], None]
):
    """handle(name, bytes) for every file member of the 7z archive split into `volumes`
    (in order) whose name `wanted` accepts, each as soon as it is decompressed."""
    try:
        import py7zr
        from py7zr.io import Py7zIO, WriterFactory
    except ImportError:
        raise DataError(
            f"reading {volumes[0].name} needs the py7zr package (7z archives): pip install py7zr"
        ) from None

    class _Member(Py7zIO):  # py7zr's writer interface; hands the bytes on when complete
        def __init__(self, name: str):
            self.name, self.buf = name, io.BytesIO()

        def write(self, s):
            return self.buf.write(s)

        def read(self, size=None):
            return self.buf.read(size)

        def seek(self, offset, whence=0):
            return self.buf.seek(offset, whence)

        def flush(self):
            pass

        def size(self):
            return self.buf.getbuffer().nbytes

        def close(self):
            handle(self.name, self.buf.getvalue())
            self.buf = io.BytesIO()

    class _Factory(WriterFactory):
        def create(self, filename):
            return _Member(filename)

    try:
        with _Volumes(volumes) as f, py7zr.SevenZipFile(f, mode="r") as z:
            infos = [i for i in z.list() if not i.is_directory and wanted(i.filename)]
            z.extract(targets=[i.filename for i in infos], factory=_Factory())
    except DataError:
        raise
    except Exception as e:  # bad/missing volume, CRC error, not a 7z archive
        raise DataError(
            f"{', '.join(v.name for v in volumes)} in {volumes[0].parent} are not a readable "
            f"7z archive ({type(e).__name__}: {e}): expected the official volumes, complete"
        ) from None


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


class _Volumes(io.RawIOBase):
    """The byte-wise concatenation of `paths` as one read-only seekable file (a split archive's
    volumes are plain slices of the archive)."""

    def __init__(self, paths: list[Path]):
        self.paths = list(paths)
        self.sizes = [p.stat().st_size for p in self.paths]
        self.starts = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        self.total, self.pos = sum(self.sizes), 0
        self.files = [open(p, "rb") for p in self.paths]  # noqa: SIM115 (closed in close())

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.total}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buf):
        n = 0
        view = memoryview(buf)
        while n < len(view) and self.pos < self.total:
            i = max(j for j, start in enumerate(self.starts) if start <= self.pos)
            f = self.files[i]
            f.seek(self.pos - self.starts[i])
            got = f.readinto(
                view[n : n + min(len(view) - n, self.starts[i] + self.sizes[i] - self.pos)]
            )
            if not got:
                break
            n += got
            self.pos += got
        return n

    def close(self):
        for f in self.files:
            f.close()
        super().close()
