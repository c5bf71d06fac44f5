"""PASCAL VOC 2012 sheep for foreground segmentation, selected as Liu et al.'s official code
does (it reads VOC 2012's class segmentations, not PASCAL-Part): from the segmentation
trainval list, the images whose largest non-truncated object is a sheep covering more than
20% of the image with no other non-truncated sheep; each is cropped to its first such
sheep's box enlarged by 30% on every side (black beyond the image), stretched to 128×128,
with the mask of the sheep class (VOC label 17; the 255 "void" outline counts as
background, as in the official IoU) resized by nearest neighbour.

The method is unsupervised and scored on the images it is trained on, as in the official
code: the train and test splits hold the same images. There are no landmarks (L = 0).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from reprise.data.download import RawFile
from reprise.errors import DataError

SPLITS = ("train", "test")
RAW_FILES = (
    RawFile(
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
        "VOCtrainval_11-May-2012.tar",
        "6cd6e144f989b92b3379bac3b3de84fd",
    ),
)
ROOT = "VOCdevkit/VOC2012"
CLASS, LABEL = "sheep", 17
SIZE = 128
MIN_AREA = 0.2  # box area / image area of the dominant object, kept when above
MARGIN = 0.3  # the crop: the box grown by this fraction of its size on each side


def objects(xml: bytes, name: str) -> tuple[tuple[int, int], list[tuple[str, tuple[int, ...]]]]:
    """(width, height) and the non-truncated objects (class, (xmin, ymin, xmax, ymax))."""
    try:
        root = ET.fromstring(xml)
        size = root.find("size")
        wh = (int(size.findtext("width")), int(size.findtext("height")))
        objs = [
            (o.findtext("name").strip(), tuple(int(float(o.find("bndbox").findtext(k))) for k in
                                               ("xmin", "ymin", "xmax", "ymax")))
            for o in root.iter("object")
            if int(o.findtext("truncated") or 0) == 0
        ]  # fmt: skip
    except (ET.ParseError, AttributeError, TypeError, ValueError) as e:
        raise DataError(f"{name} is not a VOC annotation ({type(e).__name__}: {e})") from None
    return wh, objs


def select(wh: tuple[int, int], objs: list) -> tuple[int, ...] | None:
    """The box of the sheep the image is selected for, or None (see the module's rule)."""
    area = wh[0] * wh[1]

    def frac(box):
        return (box[2] - box[0]) * (box[3] - box[1]) / area

    ranked = sorted(objs, key=lambda o: frac(o[1]), reverse=True)
    if not ranked or ranked[0][0] != CLASS or frac(ranked[0][1]) <= MIN_AREA:
        return None
    if any(c == CLASS for c, _ in ranked[1:]):
        return None
    return next(box for c, box in objs if c == CLASS and frac(box) > MIN_AREA)


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    import numpy as np

    from reprise.data import archives
    from reprise.data import landmarks as lm

    tar = Path(raw_dir) / RAW_FILES[0].filename
    listing = f"{ROOT}/ImageSets/Segmentation/trainval.txt"
    ids = list(lm.read_table(archives.read_members(tar, [listing])[listing].decode(), 0))
    xmls = archives.read_members(tar, [f"{ROOT}/Annotations/{i}.xml" for i in ids])
    boxes = {}
    for i in ids:
        wh, objs = objects(xmls[f"{ROOT}/Annotations/{i}.xml"], f"{i}.xml")
        if (box := select(wh, objs)) is not None:
            w, h = box[2] - box[0], box[3] - box[1]
            boxes[i] = (box[0] - MARGIN * w, box[1] - MARGIN * h, box[2] + MARGIN * w,
                        box[3] + MARGIN * h)  # fmt: skip
    if not boxes:
        raise DataError(f"no {CLASS} image passes the selection in {tar}: expected VOC 2012")
    files = archives.read_members(
        tar, [f"{ROOT}/{d}/{i}.{e}" for i in boxes for d, e in
              (("JPEGImages", "jpg"), ("SegmentationClass", "png"))]
    )  # fmt: skip
    images, masks = [], []
    for i, box in boxes.items():
        img, _, _ = lm.fit(lm.decode(files[f"{ROOT}/JPEGImages/{i}.jpg"], f"{i}.jpg"), box, SIZE)
        seg = lm.decode(files[f"{ROOT}/SegmentationClass/{i}.png"], f"{i}.png", mode=None)
        if seg.mode not in ("P", "L"):
            raise DataError(f"SegmentationClass/{i}.png is {seg.mode}: expected VOC's label PNG")
        mask, _, _ = lm.fit(seg, box, SIZE, nearest=True)
        images.append(img.transpose(2, 0, 1))
        masks.append((mask == LABEL).astype(np.uint8))
    n = len(images)
    lm.save(out, images, np.zeros((n, 0, 2)), np.zeros((n, 0), bool), np.ones(n), CLASS, masks)
