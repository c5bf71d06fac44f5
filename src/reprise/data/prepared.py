"""The prepared-split file every dataset converts to, and the tensors every loader returns.

On disk: a weights-only torch file {"x": uint8 N×C×H×W, "y": int64 N, "classes": [str]};
or, for a split too big for memory (ImageNet), an index {"shards": [names], "counts": [n],
"classes"} of such files in the folder beside it (`save_shards`). `load_split(limit=n)` reads
only the shards that hold the first n samples; without a limit the shards are memory-mapped
(`ShardedImages`: a batch reads only its images).
In memory: float32 N×C×H×W in [0, 1] and int64 labels, whatever the source format, so a
paper runs unchanged on the embedded digits (smoke) or on CIFAR/SVHN (paper).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from reprise.errors import CheckpointError, DataError
from reprise.io import load_checkpoint, save_checkpoint


@dataclass
class ImageData:
    x: torch.Tensor  # float32 N×C×H×W in [0, 1]
    y: torch.Tensor  # int64 N
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int | None) -> ImageData:
        """The first n samples (splits are stored in a fixed order)."""
        return self if n is None else ImageData(self.x[:n], self.y[:n], self.classes)


class ShardedImages:
    """The images of a sharded split as one N×C×H×W array: uint8 shards memory-mapped, only
    the indexed images read, returned as float32 in [0, 1] (as ImageData.x). Takes what the
    training loops index with: an int, a slice, an index or boolean tensor."""

    def __init__(self, shards: list[torch.Tensor]):
        self.shards = shards
        sizes = torch.tensor([0] + [len(s) for s in shards])
        self.starts = sizes.cumsum(0)
        self.shape = torch.Size([int(self.starts[-1]), *shards[0].shape[1:]])
        self.dtype, self.device, self.ndim = torch.float32, torch.device("cpu"), 4

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, int):
            return self[torch.tensor([idx])][0]
        if isinstance(idx, slice):
            idx = torch.arange(len(self))[idx]
        idx = torch.as_tensor(idx)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        idx = torch.where(idx < 0, idx + len(self), idx)
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= len(self)):
            raise IndexError(f"image index out of range for {len(self)} images")
        shard = torch.searchsorted(self.starts, idx, right=True) - 1
        out = torch.empty((len(idx), *self.shape[1:]), dtype=torch.uint8)
        for s in shard.unique().tolist():
            at = shard == s
            out[at] = self.shards[s][idx[at] - self.starts[s]]
        return out.float().div_(255.0)


def save_split(path: str | Path, x: torch.Tensor, y: torch.Tensor, classes: list[str]) -> None:
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise DataError(f"prepared images must be uint8 N×C×H×W, got {x.dtype} {tuple(x.shape)}")
    if y.shape != (x.shape[0],):
        raise DataError(f"labels must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(classes)):
        raise DataError(
            f"labels must lie in 0..{len(classes) - 1} ({len(classes)} classes), "
            f"got {int(y.min())}..{int(y.max())}"
        )
    split = {"x": x.contiguous(), "y": y.to(torch.int64), "classes": list(classes)}
    save_checkpoint(path, split)  # byte-stable, atomic


def save_shards(
    path: str | Path,
    items: Iterable[tuple[str, object, int]],
    decode: Callable[[object, str], object],
    classes: list[str],
    shard_size: int,
) -> None:
    """Write (name, raw, label) items as shards of `shard_size` (decode(raw, name) -> uint8
    C×H×W array) in the folder <path without .pt>/, then the index at `path`. A shard already
    on disk is not decoded again (a killed prepare resumes where it stopped)."""
    import numpy as np

    path = Path(path)
    folder = path.with_suffix("")
    names, counts, images, labels = [], [], [], []

    def flush():
        shard = folder / f"{len(names):05d}.pt"
        if not shard.is_file():
            x = torch.from_numpy(np.stack(images))
            save_split(shard, x, torch.tensor(labels, dtype=torch.int64), classes)
        names.append(f"{folder.name}/{shard.name}")
        counts.append(len(labels))
        images.clear()
        labels.clear()

    for name, raw, label in items:
        if not (folder / f"{len(names):05d}.pt").is_file():
            images.append(decode(raw, name))
        labels.append(label)
        if len(labels) == shard_size:
            flush()
    if labels:
        flush()
    save_checkpoint(path, {"shards": names, "counts": counts, "classes": list(classes)})


def _read(path: Path, what: str, mmap: bool = False) -> dict:
    try:
        blob = load_checkpoint(path, what=what, mmap=mmap)
    except CheckpointError as e:
        raise DataError(str(e)) from None
    if not isinstance(blob, dict):
        raise DataError(f"{path} is not a {what}: expected a dict")
    return blob


def _sharded(path: Path, index: dict, limit: int | None) -> tuple:
    """The first `limit` samples of a sharded split, shard by shard; all of them (None) as
    ShardedImages, memory-mapped, and the labels."""
    xs, ys, n = [], [], 0
    for name in index["shards"]:
        if limit is not None and n >= limit:
            break
        parts = Path(name).parts
        if len(parts) != 2 or parts[0] != path.stem or not parts[1].endswith(".pt"):
            raise DataError(f"{path}: shard {name!r} is not <{path.stem}>/<name>.pt")
        shard = _read(path.parent / name, "prepared dataset shard", mmap=limit is None)
        try:
            xs.append(shard["x"] if limit is None else shard["x"][: limit - n])
            ys.append(shard["y"][: len(xs[-1])])
        except KeyError as e:
            raise DataError(f"{path.parent / name} is not a prepared shard: no {e} entry") from None
        n += len(ys[-1])
    if not xs:
        raise DataError(f"{path} lists no shards (an empty split)")
    return (ShardedImages(xs) if limit is None else torch.cat(xs)), torch.cat(ys)


def load_split(
    path: str | Path, size: int | None = None, channels: int | None = None, limit: int | None = None
) -> ImageData:
    """Load a prepared split (its first `limit` samples when given); optionally resize to
    size×size and repeat grey to `channels`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prepared dataset file {path} does not exist (run its prepare rule)")
    blob = _read(path, "prepared dataset split")
    try:
        if "shards" in blob:
            (x, y), classes = _sharded(path, blob, limit), blob["classes"]
        else:
            x, y, classes = blob["x"][:limit], blob["y"][:limit], blob["classes"]
    except KeyError as e:
        raise DataError(f"{path} is not a prepared dataset split: it has no {e} entry") from None
    if isinstance(x, ShardedImages):  # read (and converted) batch by batch, never whole
        if size is not None or channels is not None:
            raise DataError(f"{path} is sharded: data.size/channels apply to in-memory splits")
        return ImageData(x, y, list(classes))
    x = x.float().div_(255.0)
    if channels is not None and channels != x.shape[1]:
        if x.shape[1] != 1:
            raise DataError(f"cannot turn {x.shape[1]}-channel images into {channels} channels")
        x = x.expand(-1, channels, -1, -1).contiguous()
    if size is not None and size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    return ImageData(x, y, list(classes))
