"""CelebA (Liu et al. 2015), aligned and cropped faces with five landmarks (eye centres, nose,
mouth corners), the official train/test partition; images cropped to the central 178×178
square (rows 20-198) and resized to 128×128. The landmark error is normalised by the
inter-ocular distance.

The paper evaluates on *unaligned* ("wild") CelebA with the MAFL test split: that is
`reprise.data.celeba_wild`; this loader's numbers are not the paper's wild-CelebA setting.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from reprise.data.download import RawFile
from reprise.errors import DataError

SPLITS = ("train", "test")
DRIVE = "https://drive.google.com/uc?export=download&id="
RAW_FILES = (
    RawFile(
        DRIVE + "0B7EVK8r0v71pZjFTYXZWM3FlRnM",
        "img_align_celeba.zip",
        "00d2c5bc6d35e252742224ab0c1e8fcb",
    ),
    RawFile(
        DRIVE + "0B7EVK8r0v71pd0FJY3Blby1HUTQ",
        "list_landmarks_align_celeba.txt",
        "cc24ecafdb5b50baae59b03474781f8c",
    ),
    RawFile(
        DRIVE + "0B7EVK8r0v71pY0NSMzRuSXJEVkk",
        "list_eval_partition.txt",
        "d32c9cbf5e040fd4025c592c306e6668",
    ),
)
PARTITION = {"train": "0", "test": "2"}  # 1 = validation, unused
SIZE = 128
CROP = (0, 20, 178, 198)


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    import numpy as np

    from reprise.data import landmarks as lm

    raw_dir = Path(raw_dir)
    marks = lm.read_table((raw_dir / RAW_FILES[1].filename).read_text(), 10, skip=2)
    part = lm.read_table((raw_dir / RAW_FILES[2].filename).read_text(), 1)
    names = sorted(n for n, (p,) in part.items() if p == PARTITION[split])
    images, points, norms = [], [], []
    with zipfile.ZipFile(raw_dir / RAW_FILES[0].filename) as z:
        members = {Path(m).name: m for m in z.namelist() if m.endswith(".jpg")}
        for name in names:
            if name not in members or name not in marks:
                raise DataError(f"{name} of the {split} partition is missing from the files")
            img, scale, (x0, y0) = lm.crop_resize(z.read(members[name]), CROP, SIZE, name)
            p = (np.array(marks[name], np.float32).reshape(5, 2) - (x0, y0)) * scale
            images.append(img)
            points.append(p + 0.5 * scale)  # CelebA gives pixel indices: centres at i + 0.5
            norms.append(np.linalg.norm(p[0] - p[1]))
    lm.save(out, images, points, np.ones((len(images), 5), bool), norms, "face")
