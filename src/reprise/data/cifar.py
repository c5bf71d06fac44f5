"""The python version of CIFAR-10 and CIFAR-100 (https://www.cs.toronto.edu/~kriz/cifar.html).

A .tar.gz of pickled dicts (Python 2, protocol 2). Each batch holds "data", a uint8 N×3072
array whose rows are the red, green and blue 32×32 planes one after another (each row-major),
and a list of integer labels; a meta pickle holds the class names.
"""

from __future__ import annotations

from pathlib import Path

from reprise.errors import DataError

SIZE = 32
ROW = 3 * SIZE * SIZE


def _dict(blob: bytes, what: str) -> dict:
    from reprise.data.safe_pickle import loads

    obj = loads(blob, what)
    if not isinstance(obj, dict):
        raise DataError(f"{what} holds a {type(obj).__name__}, expected a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _field(d: dict, key: str, what: str):
    if key not in d:
        raise DataError(f"{what} has no {key!r} entry (it has {', '.join(map(str, d))})")
    return d[key]


def read_batch(blob: bytes, what: str, label_key: str):
    """(uint8 N×3×32×32 images, int64 labels) of one pickled batch."""
    import numpy as np

    d = _dict(blob, what)
    data, labels = _field(d, "data", what), np.asarray(_field(d, label_key, what))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape[1:] != (ROW,):
        shape = getattr(data, "shape", type(data).__name__)
        raise DataError(f"{what}: 'data' is {shape}, expected a uint8 N×{ROW} array")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{what}: {label_key!r} is not {len(data)} integer labels")
    return data.reshape(-1, 3, SIZE, SIZE), labels.astype(np.int64)


def read_names(blob: bytes, what: str, key: str) -> list[str]:
    names = _field(_dict(blob, what), key, what)
    if not isinstance(names, list) or not all(isinstance(n, bytes | str) for n in names):
        raise DataError(f"{what}: {key!r} is not a list of class names")
    return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]


def convert(
    archive: Path, batches: list[str], meta: str, label_key: str, names_key: str, out: Path
) -> None:
    """Write the prepared split made of `batches` (member names) of `archive`."""
    import numpy as np
    import torch

    from reprise.data.archives import read_members
    from reprise.data.prepared import save_split

    blobs = read_members(archive, [*batches, meta])
    classes = read_names(blobs.pop(meta), f"{archive}:{meta}", names_key)
    parts = [read_batch(blobs.pop(b), f"{archive}:{b}", label_key) for b in batches]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    save_split(out, torch.from_numpy(x), torch.from_numpy(y), classes)
