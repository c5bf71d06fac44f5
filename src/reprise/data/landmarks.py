"""Prepared files of landmark datasets (CelebA, CUB): images with keypoints, not class labels.

On disk: the prepared-split file of every dataset ({"x", "y", "classes"}, so the core loader
reads it) plus "landmarks" float32 N×L×2 (x, y in pixels of the stored image, pixel centres
at i + 0.5), "visible" bool N×L and "norm" float32 N (the length the landmark error is
divided by). Images are cropped and resized to `size`×`size` as they are converted.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from reprise.errors import DataError
from reprise.io import atomic_path


def crop_resize(data: bytes, box: tuple[float, float, float, float], size: int, name: str):
    """Decode an image, crop the box (x0, y0, x1, y1; may leave the image: padded black),
    resize to size×size; returns (uint8 3×size×size, scale, (x0, y0))."""
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as e:  # any undecodable member is bad input
        raise DataError(f"cannot decode image {name}: {e}") from None
    x0, y0, x1, y1 = box
    img = img.crop((round(x0), round(y0), round(x1), round(y1))).resize(
        (size, size), Image.Resampling.BILINEAR
    )
    scale = size / (round(x1) - round(x0))
    return np.asarray(img).transpose(2, 0, 1).copy(), scale, (round(x0), round(y0))


def save(path: Path, images, landmarks, visible, norm, name: str) -> None:
    import torch

    x = torch.from_numpy(np.stack(images)).to(torch.uint8)
    with atomic_path(path) as tmp:
        torch.save(
            {
                "x": x,
                "y": torch.zeros(len(x), dtype=torch.int64),
                "classes": [name],
                "landmarks": torch.from_numpy(np.asarray(landmarks, np.float32)),
                "visible": torch.from_numpy(np.asarray(visible, bool)),
                "norm": torch.from_numpy(np.asarray(norm, np.float32)),
            },
            tmp,
        )


def load(path: str | Path) -> dict:
    """A prepared landmark split as the arrays partseg evaluates (no masks: IoU not measured)."""
    import torch

    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        return {
            "images": blob["x"].numpy(),
            "landmarks": blob["landmarks"].numpy(),
            "visible": blob["visible"].numpy(),
            "norm": blob["norm"].numpy(),
            "category": blob["classes"][0],
        }
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
