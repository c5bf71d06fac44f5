"""CUB-200-2011 (Wah et al. 2011): 11,788 bird photographs with 15 part keypoints (with
visibility) and a bounding box each, official train/test split. Each image is cropped to the
square around its box (side = the box's longer edge) and resized to 128×128; the landmark
error is normalised by the box's edge length sqrt(w·h).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from reprise.data.download import RawFile
from reprise.errors import DataError

SPLITS = ("train", "test")
RAW_FILES = (
    RawFile(
        "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
        "CUB_200_2011.tgz",
        "97eceeb196236b17998738112f37df78",
    ),
)
ROOT = "CUB_200_2011"
PARTS = 15
SIZE = 128


def _text(tar: tarfile.TarFile, name: str) -> str:
    try:
        return tar.extractfile(f"{ROOT}/{name}").read().decode()
    except KeyError:
        raise DataError(f"{ROOT}/{name} is missing from {RAW_FILES[0].filename}") from None


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    import numpy as np

    from reprise.data import landmarks as lm

    with tarfile.open(Path(raw_dir) / RAW_FILES[0].filename) as tar:
        paths = lm.read_table(_text(tar, "images.txt"), 1)
        is_train = lm.read_table(_text(tar, "train_test_split.txt"), 1)
        boxes = lm.read_table(_text(tar, "bounding_boxes.txt"), 4)
        locs: dict[str, np.ndarray] = {}
        for line in _text(tar, "parts/part_locs.txt").splitlines():
            if line.strip():
                img, part, x, y, vis = line.split()
                locs.setdefault(img, np.zeros((PARTS, 3), np.float32))[int(part) - 1] = (
                    float(x), float(y), float(vis)
                )  # fmt: skip
        want = "1" if split == "train" else "0"
        ids = sorted((i for i, (t,) in is_train.items() if t == want), key=int)
        images, points, visible, norms = [], [], [], []
        for i in ids:
            x, y, w, h = map(float, boxes[i])
            side = max(w, h)
            cx, cy = x + w / 2, y + h / 2
            box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
            data = tar.extractfile(f"{ROOT}/images/{paths[i][0]}").read()
            img, scale, origin = lm.crop_resize(data, box, SIZE, paths[i][0])
            loc = locs.get(i, np.zeros((PARTS, 3), np.float32))
            images.append(img)
            points.append((loc[:, :2] - origin) * scale)  # CUB's part locations are in pixels
            visible.append(loc[:, 2] > 0)
            norms.append(np.sqrt(w * h) * scale)
    lm.save(out, images, points, visible, norms, "bird")
