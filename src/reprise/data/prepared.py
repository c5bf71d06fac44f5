"""The prepared-split file every dataset converts to, and the tensors every loader returns.

On disk: a weights-only torch file {"x": uint8 N×C×H×W, "y": int64 N, "classes": [str]}.
In memory: float32 N×C×H×W in [0, 1] and int64 labels, whatever the source format, so a
paper runs unchanged on the embedded digits (smoke) or on CIFAR/SVHN (paper).
"""

from __future__ import annotations

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


def load_split(path: str | Path, size: int | None = None, channels: int | None = None) -> ImageData:
    """Load a prepared split; optionally resize to size×size and repeat grey to `channels`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prepared dataset file {path} does not exist (run its prepare rule)")
    try:
        blob = load_checkpoint(path, what="prepared dataset split")
        x, y, classes = blob["x"], blob["y"], blob["classes"]
    except CheckpointError as e:
        raise DataError(str(e)) from None
    except KeyError as e:
        raise DataError(f"{path} is not a prepared dataset split: it has no {e} entry") from None
    x = x.float().div_(255.0)
    if channels is not None and channels != x.shape[1]:
        if x.shape[1] != 1:
            raise DataError(f"cannot turn {x.shape[1]}-channel images into {channels} channels")
        x = x.expand(-1, channels, -1, -1).contiguous()
    if size is not None and size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    return ImageData(x, y, list(classes))
