"""Prepared files of landmark datasets (CelebA, wild CelebA, AFLW, CUB, VOC sheep): images
with keypoints and/or masks, not class labels.

On disk: the prepared-split file of every dataset ({"x", "y", "classes"}, so the core loader
reads it) plus "landmarks" float32 N×L×2 (x, y in pixels of the stored image, pixel centres
at i + 0.5; L = 0 where a dataset has none), "visible" bool N×L, "norm" float32 N (the
length the landmark error is divided by) and, where the dataset has them, "masks" uint8
N×size×size (0 = background). Images are cropped and resized to `size`×`size` as they are
converted.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from reprise.errors import DataError
from reprise.io import atomic_path


def decode(data: bytes, name: str, mode: str | None = "RGB"):
    """An image file's bytes as a PIL image in `mode` (None: as stored, e.g. a label map)."""
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img if mode in (None, img.mode) else img.convert(mode)
    except Exception as e:  # any undecodable member is bad input
        raise DataError(f"cannot decode image {name}: {e}") from None


def fit(img, box: tuple[float, float, float, float], size: int, nearest: bool = False):
    """Crop the box (x0, y0, x1, y1, rounded; may leave the image: padded with 0) of a PIL
    image and resize it to size×size (a non-square box is stretched); returns (array H×W[×C],
    (sx, sy) scale, (x0, y0) origin): a point p of the image lands at (p - origin) * scale."""
    from PIL import Image

    x0, y0, x1, y1 = (round(v) for v in box)
    resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    out = img.crop((x0, y0, x1, y1)).resize((size, size), resample)
    return np.asarray(out).copy(), np.array([size / (x1 - x0), size / (y1 - y0)]), (x0, y0)


def crop_resize(data: bytes, box: tuple[float, float, float, float], size: int, name: str):
    """Decode an image, crop the square box (x0, y0, x1, y1; may leave the image: padded
    black), resize to size×size; returns (uint8 3×size×size, scale, (x0, y0))."""
    arr, scale, origin = fit(decode(data, name), box, size)
    return arr.transpose(2, 0, 1).copy(), float(scale[0]), origin


def whole(data: bytes, size: int, name: str):
    """Decode an image and stretch all of it to size×size, as the unaligned-face benchmarks
    do; returns (uint8 3×size×size, (sx, sy) scale, (width, height) of the original)."""
    img = decode(data, name)
    arr, scale, _ = fit(img, (0, 0, *img.size), size)
    return arr.transpose(2, 0, 1).copy(), scale, img.size


def save(path: Path, images, landmarks, visible, norm, name: str, masks=None) -> None:
    """`masks` (N×size×size uint8, 0 = background), where the dataset has them."""
    import torch

    if not len(images):
        raise DataError(f"no image of {name} is left for {Path(path).name}: nothing to write")
    x = torch.from_numpy(np.stack(images)).to(torch.uint8)
    blob = {
        "x": x,
        "y": torch.zeros(len(x), dtype=torch.int64),
        "classes": [name],
        "landmarks": torch.from_numpy(np.asarray(landmarks, np.float32).reshape(len(x), -1, 2)),
        "visible": torch.from_numpy(np.asarray(visible, bool).reshape(len(x), -1)),
        "norm": torch.from_numpy(np.asarray(norm, np.float32)),
    }
    if masks is not None:
        blob["masks"] = torch.from_numpy(np.stack(masks).astype(np.uint8))
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def save_faces(path: Path, images, points) -> None:
    """Faces whose five landmarks are all annotated, eye centres first: the error is
    normalised by the inter-ocular distance (MAFL/AFLW protocol)."""
    points = np.asarray(points, np.float32).reshape(len(images), -1, 2)
    eyes = np.linalg.norm(points[:, 0] - points[:, 1], axis=1)
    save(path, images, points, np.ones(points.shape[:2], bool), eyes, "face")


def load(path: str | Path) -> dict:
    """A prepared landmark split as the arrays partseg evaluates ("masks" only where the
    dataset has them: foreground IoU is measured only there)."""
    import torch

    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        out = {
            "images": blob["x"].numpy(),
            "landmarks": blob["landmarks"].numpy(),
            "visible": blob["visible"].numpy(),
            "norm": blob["norm"].numpy(),
            "category": blob["classes"][0],
        }
        if "masks" in blob:
            out["masks"] = blob["masks"].numpy()
        return out
    except Exception as e:
        raise DataError(f"{path} is not a prepared landmark split: {e}") from None


def read_table(text: str, columns: int, skip: int = 0) -> dict[str, list[str]]:
    """Whitespace table lines `<key> <v1> ... <v_columns>` -> {key: [values]} after `skip`
    header lines; a malformed line is a DataError naming it."""
    out = {}
    for i, line in enumerate(text.splitlines()[skip:], skip + 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != columns + 1:
            raise DataError(f"line {i} has {len(parts) - 1} values, expected {columns}: {line!r}")
        out[parts[0]] = parts[1:]
    return out
