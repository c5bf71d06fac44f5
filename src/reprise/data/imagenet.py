"""ImageNet (ILSVRC2012; Russakovsky et al. 2015), from the official archives, kept on disk.

Splits: `train` (1,281,167 images, the inner per-class tars of ILSVRC2012_img_train.tar) and
`test`, the official validation set (50,000 images, ILSVRC2012_img_val.tar; labels from the
devkit's ILSVRC2012_validation_ground_truth.txt): the test labels are not public, and LiBRe's
authors evaluate on the validation set too (exps/dataset/imagenet.py).

Class index = the rank of the WordNet id in sorted order (torchvision's ImageFolder order,
which its pre-trained weights use); the devkit's meta.mat maps ILSVRC2012_ID -> WordNet id.
Every image: shorter side resized to 256 (bilinear, antialiased), centre 224×224 crop, uint8
(the authors' evaluation transform; fine-tuning sees the same crops, see docs/libre.md).

A split is too big for memory, so it is written as shards of SHARD images (each a prepared
split file, ~150 MB) beside a small index file, the prepared file the DAG sees:
    prepared/imagenet/test.pt        {"shards": [names], "counts": [...], "classes": [...]}
    prepared/imagenet/test/00000.pt  {"x": uint8 SHARD×3×224×224, "y", "classes"}
A shard on disk is not converted again, so a killed prepare resumes; the index is written
last. `reprise.data.prepared.load_split(..., limit=n)` reads only the shards it needs.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

from reprise.data.archives import read_members
from reprise.data.download import RawFile
from reprise.errors import DataError

SPLITS = ("train", "test")
URL = "https://image-net.org/data/ILSVRC/2012/"  # needs an image-net.org account
TRAIN_TAR, VAL_TAR, DEVKIT = (
    "ILSVRC2012_img_train.tar",
    "ILSVRC2012_img_val.tar",
    "ILSVRC2012_devkit_t12.tar.gz",
)
RAW_FILES = (
    RawFile(URL + TRAIN_TAR, TRAIN_TAR, "1d675b47d978889d74fa0da5fadfb00e"),
    RawFile(URL + VAL_TAR, VAL_TAR, "29b22e2961454d5413ddabcf34fc5622"),
    RawFile(URL + DEVKIT, DEVKIT, "fa75699e90414af021442c21a62c3abf"),
)
SPLIT_FILES = {"train": (TRAIN_TAR, DEVKIT), "test": (VAL_TAR, DEVKIT)}
META = "ILSVRC2012_devkit_t12/data/meta.mat"
TRUTH = "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt"
CLASSES, VAL_IMAGES = 1000, 50_000
RESIZE, CROP = 256, 224
SHARD = 1000


def devkit(path: Path) -> tuple[list[str], dict[int, str], list[int]]:
    """(the 1000 WordNet ids sorted, ILSVRC2012_ID -> WordNet id, the validation labels as
    ILSVRC2012_IDs in image order) from the devkit archive."""
    import scipy.io

    files = read_members(path, [META, TRUTH])
    bad = f"{path}: {META} is not the devkit's synset table"
    try:
        synsets = scipy.io.loadmat(io.BytesIO(files[META]), squeeze_me=True)["synsets"]
        leaves = {
            int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets if int(s["num_children"]) == 0
        }
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise DataError(
            f"{bad} ({e}): expected synsets with ILSVRC2012_ID, WNID, num_children"
        ) from None
    if sorted(leaves) != list(range(1, CLASSES + 1)):
        raise DataError(f"{bad}: expected leaf synsets with ILSVRC2012_ID 1..{CLASSES}")
    try:
        truth = [int(line) for line in files[TRUTH].decode().split()]
    except ValueError as e:
        raise DataError(f"{path}: {TRUTH} is not one class id per line ({e})") from None
    if len(truth) != VAL_IMAGES or not all(1 <= t <= CLASSES for t in truth):
        raise DataError(
            f"{path}: {TRUTH} has {len(truth)} labels; expected {VAL_IMAGES} in 1..{CLASSES}"
        )
    return sorted(leaves.values()), leaves, truth


def centre_crop(data: bytes, name: str):
    """Decode; shorter side to RESIZE; the centre CROP×CROP; uint8 3×CROP×CROP."""
    import numpy as np
    from PIL import Image

    from reprise.data.landmarks import decode

    img = decode(data, name)  # RGB; an undecodable member is one DataError
    w, h = img.size
    scale = RESIZE / min(w, h)
    w, h = max(RESIZE, int(w * scale)), max(RESIZE, int(h * scale))  # as torchvision: floor
    img = img.resize((w, h), Image.Resampling.BILINEAR)
    left, top = round((w - CROP) / 2), round((h - CROP) / 2)
    img = img.crop((left, top, left + CROP, top + CROP))
    return np.asarray(img).transpose(2, 0, 1).copy()


def _files(tar: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    for member in tar:
        if member.isfile():
            yield member, tar.extractfile(member).read()


def val_images(path: Path, truth: list[int]) -> Iterator[tuple[str, bytes, int]]:
    """(name, bytes, ILSVRC2012_ID) of ILSVRC2012_val_<n>.JPEG, whose label is line n."""
    seen = 0
    with tarfile.open(path, "r|") as tar:
        for member, data in _files(tar):
            stem = Path(member.name).stem
            n = int(stem[15:]) if stem[15:].isdigit() else 0
            if not stem.startswith("ILSVRC2012_val_") or not 1 <= n <= len(truth):
                raise DataError(
                    f"{path}: unexpected member {member.name}; expected ILSVRC2012_val_<n>.JPEG "
                    f"with n in 1..{len(truth)}"
                )
            seen += 1
            yield member.name, data, truth[n - 1]
    if seen != len(truth):
        raise DataError(f"{path} holds {seen} images; expected {len(truth)} (truncated?)")


def train_images(path: Path, wnids: set[str]) -> Iterator[tuple[str, bytes, str]]:
    """(name, bytes, WordNet id) of every image in the per-class inner tars <wnid>.tar."""
    classes = set()
    with tarfile.open(path, "r|") as tar:
        for member in tar:
            wnid = Path(member.name).stem
            if not member.isfile() or not member.name.endswith(".tar") or wnid not in wnids:
                raise DataError(
                    f"{path}: unexpected member {member.name}; expected one <wnid>.tar per class"
                )
            classes.add(wnid)
            with tarfile.open(fileobj=tar.extractfile(member), mode="r|") as inner:
                for image, data in _files(inner):
                    yield f"{member.name}/{image.name}", data, wnid
    if classes != wnids:
        raise DataError(f"{path} holds {len(classes)} class tars; expected {len(wnids)}")


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    from reprise.data.prepared import save_shards

    raw_dir = Path(raw_dir)
    wnids, by_id, truth = devkit(raw_dir / DEVKIT)
    index = {w: i for i, w in enumerate(wnids)}
    try:
        if split == "test":
            images = val_images(raw_dir / VAL_TAR, truth)
            labelled = ((name, data, index[by_id[t]]) for name, data, t in images)
        else:
            images = train_images(raw_dir / TRAIN_TAR, set(wnids))
            labelled = ((name, data, index[w]) for name, data, w in images)
        save_shards(out, labelled, centre_crop, wnids, SHARD)
    except tarfile.TarError as e:
        tar = VAL_TAR if split == "test" else TRAIN_TAR
        raise DataError(f"{raw_dir / tar} is not a readable tar archive ({e})") from None
