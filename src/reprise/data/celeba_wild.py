"""Unaligned ("in the wild") CelebA with the MAFL split, as the unsupervised-landmark papers
use it (SCOPS; Liu et al.'s official code): the original web photographs, each stretched
whole to 128×128 (no crop, no alignment), CelebA's five landmarks in the wild images,
MAFL's training.txt (19,000 images) / testing.txt (1,000) as train / test, keeping only the
images whose face box covers more than 30% of the image (the official code's filter). The
landmark error is normalised by the inter-ocular distance in the stretched image.

The images ship only as the 14-volume 7z archive img_celeba.7z.001-014 (read with py7zr,
which checks each image's CRC); neither it nor MAFL's lists have a published checksum, so
both are placed by hand (a download could not be told from Google Drive's warning page).
MAFL (Zhang et al. 2016) is distributed from its project page.
"""

from __future__ import annotations

from pathlib import Path

from reprise.data.celeba import DRIVE
from reprise.data.download import RawFile
from reprise.errors import DataError

SPLITS = ("train", "test")
_VOLUME_IDS = (
    "0B7EVK8r0v71pQy1YUGtHeUM2dUE",
    "0B7EVK8r0v71peFphOHpxODd5SjQ",
    "0B7EVK8r0v71pMk5FeXRlOXcxVVU",
    "0B7EVK8r0v71peXc4WldxZGFUbk0",
    "0B7EVK8r0v71pMktaV1hjZUJhLWM",
    "0B7EVK8r0v71pbWFfbGRDOVZxOUU",
    "0B7EVK8r0v71pQlZrOENSOUhkQ3c",
    "0B7EVK8r0v71pLVltX2F6dzVwT0E",
    "0B7EVK8r0v71pVlg5SmtLa1ZiU0k",
    "0B7EVK8r0v71pa09rcFF4THRmSFU",
    "0B7EVK8r0v71pNU9BZVBEMF9KN28",
    "0B7EVK8r0v71pTVd3R2NpQ0FHaGM",
    "0B7EVK8r0v71paXBad2lfSzlzSlk",
    "0B7EVK8r0v71pcTFwT1VFZzkzZk0",
)
VOLUMES = tuple(
    RawFile(DRIVE + i, f"img_celeba.7z.{n:03d}", None, by_hand=True)
    for n, i in enumerate(_VOLUME_IDS, 1)
)
LANDMARKS = RawFile(
    DRIVE + "0B7EVK8r0v71pTzJIdlJWdHczRlU",
    "list_landmarks_celeba.txt",
    "063ee6ddb681f96bc9ca28c6febb9d1a",
)
BOXES = RawFile(
    DRIVE + "0B7EVK8r0v71pbThiMVRxWXZ4dU0",
    "list_bbox_celeba.txt",
    "00566efa6fedff7a56946cd1c10f1c16",
)
_MAFL = "http://mmlab.ie.cuhk.edu.hk/projects/TCDCN.html (MAFL)"
LISTS = {
    "train": RawFile(_MAFL, "training.txt", None, by_hand=True),
    "test": RawFile(_MAFL, "testing.txt", None, by_hand=True),
}
RAW_FILES = (*VOLUMES, LANDMARKS, BOXES, *LISTS.values())
SPLIT_FILES = {
    s: (*(v.filename for v in VOLUMES), LANDMARKS.filename, BOXES.filename, LISTS[s].filename)
    for s in SPLITS
}
SIZE = 128
MIN_FACE = 0.3  # face box area / image area, kept when above


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    import numpy as np

    from reprise.data import archives
    from reprise.data import landmarks as lm

    raw_dir = Path(raw_dir)
    marks = lm.read_table((raw_dir / LANDMARKS.filename).read_text(), 10, skip=2)
    boxes = lm.read_table((raw_dir / BOXES.filename).read_text(), 4, skip=2)
    names = list(lm.read_table((raw_dir / LISTS[split].filename).read_text(), 0))
    for name in names:
        if name not in marks or name not in boxes:
            raise DataError(
                f"{name} of MAFL's {LISTS[split].filename} has no landmarks or box in "
                f"{LANDMARKS.filename} / {BOXES.filename}: expected CelebA image names"
            )
    wanted, seen, kept = set(names), set(), {}

    def keep(member: str, data: bytes) -> None:
        name = Path(member).name
        seen.add(name)
        img, scale, (w, h) = lm.whole(data, SIZE, name)
        _, _, bw, bh = map(float, boxes[name])
        if bw * bh > MIN_FACE * w * h:
            # CelebA gives pixel indices: centres at i + 0.5
            kept[name] = (img, (np.array(marks[name], np.float32).reshape(5, 2) + 0.5) * scale)

    volumes = [raw_dir / v.filename for v in VOLUMES]
    archives.each_7z_member(volumes, lambda m: Path(m).name in wanted, keep)
    if missing := wanted - seen:
        raise DataError(
            f"{len(missing)} images of MAFL's {LISTS[split].filename} (e.g. {min(missing)}) are "
            f"not in img_celeba.7z: expected the official in-the-wild archive"
        )
    order = [n for n in names if n in kept]
    lm.save_faces(out, [kept[n][0] for n in order], [kept[n][1] for n in order])
