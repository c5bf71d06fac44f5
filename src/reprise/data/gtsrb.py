"""GTSRB (Stallkamp et al. 2012): German traffic signs, 43 classes, 39209 train / 12630 test.

The official archives (https://benchmark.ini.rub.de/gtsrb_dataset.html) are zips of PPM
images of varying size (15×15 to 250×250) with semicolon-separated annotation CSVs:
- GTSRB_Final_Training_Images.zip: GTSRB/Final_Training/Images/<class:05d>/GT-<class:05d>.csv
  and the images it lists (Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId);
- GTSRB_Final_Test_Images.zip: GTSRB/Final_Test/Images/<n:05d>.ppm;
- GTSRB_Final_Test_GT.zip: GT-final_test.csv, the test labels in the same columns.
Whole images are resized to 32×32 (bilinear), as backdoor papers on GTSRB do. Members are
read by name from the zip, never extracted.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from reprise.data.download import RawFile
from reprise.errors import DataError

SPLITS = ("train", "test")
SIZE = 32
NUM_CLASSES = 43
_URL = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370"
TRAIN, TEST, TEST_GT = (
    "GTSRB_Final_Training_Images.zip",
    "GTSRB_Final_Test_Images.zip",
    "GTSRB_Final_Test_GT.zip",
)
_MD5 = {
    TRAIN: "f33fd80ac59bff73c82d25ab499e03a3",
    TEST: "c7e4e6327067d32654124b0fe9e82185",
    TEST_GT: "fe31e9c9270bbcd7b84b7f21a9d9d9e5",
}
RAW_FILES = tuple(RawFile(f"{_URL}/{name}", name, md5) for name, md5 in _MD5.items())
SPLIT_FILES = {"train": (TRAIN,), "test": (TEST, TEST_GT)}
TRAIN_DIR = "GTSRB/Final_Training/Images"
TEST_DIR = "GTSRB/Final_Test/Images"
TEST_CSV = "GT-final_test.csv"


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(
            f"{path} is not a readable zip archive ({e}): expected {path.name}"
        ) from None


def _read(z: zipfile.ZipFile, name: str, archive: Path) -> bytes:
    try:
        return z.read(name)
    except KeyError:
        raise DataError(f"{archive} has no member {name}: expected the official archive") from None


def _annotations(blob: bytes, what: str) -> list[tuple[str, int]]:
    """(filename, class id) rows of an annotation CSV."""
    rows = list(csv.DictReader(io.StringIO(blob.decode("utf-8-sig")), delimiter=";"))
    try:
        out = [(r["Filename"], int(r["ClassId"])) for r in rows]
    except (KeyError, ValueError, TypeError) as e:
        raise DataError(
            f"{what}: expected ';'-separated Filename and ClassId columns ({e})"
        ) from None
    if any(not 0 <= c < NUM_CLASSES for _, c in out):
        raise DataError(f"{what}: class ids must lie in 0..{NUM_CLASSES - 1}")
    return out


def _image(blob: bytes, what: str):
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(blob)) as im:
            im = im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{what} is not a readable image ({e})") from None
    return np.asarray(im).transpose(2, 0, 1)  # C×H×W


def _split(raw_dir: Path, split: str) -> tuple[list, list[int]]:
    images, labels = [], []
    if split == "train":
        archive = raw_dir / TRAIN
        with _open(archive) as z:
            for c in range(NUM_CLASSES):
                folder = f"{TRAIN_DIR}/{c:05d}"
                gt = f"{folder}/GT-{c:05d}.csv"
                for name, cls in _annotations(_read(z, gt, archive), f"{archive}:{gt}"):
                    member = f"{folder}/{name}"
                    images.append(_image(_read(z, member, archive), f"{archive}:{member}"))
                    labels.append(cls)
    else:
        archive, gt_archive = raw_dir / TEST, raw_dir / TEST_GT
        with _open(gt_archive) as z:
            rows = _annotations(_read(z, TEST_CSV, gt_archive), f"{gt_archive}:{TEST_CSV}")
        with _open(archive) as z:
            for name, cls in rows:
                member = f"{TEST_DIR}/{name}"
                images.append(_image(_read(z, member, archive), f"{archive}:{member}"))
                labels.append(cls)
    return images, labels


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    import numpy as np
    import torch

    from reprise.data.prepared import save_split

    images, labels = _split(Path(raw_dir), split)
    if not images:
        raise DataError(f"{raw_dir}: the {split} annotations list no images")
    x = torch.from_numpy(np.stack(images))
    y = torch.tensor(labels, dtype=torch.int64)
    save_split(out, x, y, [str(c) for c in range(NUM_CLASSES)])
