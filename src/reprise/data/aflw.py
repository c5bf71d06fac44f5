"""AFLW (Köstinger et al. 2011), unaligned, as in Liu et al.'s official code: the original
Flickr photographs, each stretched whole to 128×128, five of AFLW's 21 landmarks (eye
centres, nose centre, mouth corners; the error is normalised by the inter-ocular distance).

Kept: images with exactly one annotated face, all five landmarks present, and a face box
covering more than 30% of the image (the filter the official code applies to wild CelebA;
its AFLW lists are not published). The split is ours, since AFLW has none and the official
lists are unpublished: an image is in test when the CRC-32 of its path is 0 mod 5 (about
20%, stable whatever else is selected).

AFLW is released after registration: aflw-db.tar.gz (aflw/data/aflw.sqlite) and
aflw-images-{0,2,3}.tar.gz (aflw/data/flickr/<n>/<image>.jpg), obtained by hand; no
checksums are published with them (gzip's CRC catches a damaged archive).
"""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

from reprise.data.download import RawFile
from reprise.errors import DataError

SPLITS = ("train", "test")
_PAGE = (
    "https://www.tugraz.at/institute/icg/research/team-bischof/learning-recognition-surveillance/"
    "downloads/aflw (registration)"
)
DB = RawFile(_PAGE, "aflw-db.tar.gz", None, by_hand=True)
IMAGES = tuple(RawFile(_PAGE, f"aflw-images-{n}.tar.gz", None, by_hand=True) for n in (0, 2, 3))
RAW_FILES = (DB, *IMAGES)
SIZE = 128
MIN_FACE = 0.3
TEST_EVERY = 5
POINTS = ("LeftEyeCenter", "RightEyeCenter", "NoseCenter", "MouthLeftCorner", "MouthRightCorner")
_QUERY = """
SELECT i.filepath, i.width, i.height, r.w * r.h, t.descr, c.x, c.y
FROM Faces f
JOIN FaceImages i ON i.file_id = f.file_id
JOIN FaceRect r ON r.face_id = f.face_id
JOIN FeatureCoords c ON c.face_id = f.face_id
JOIN FeatureCoordTypes t ON t.feature_id = c.feature_id
WHERE f.file_id IN (SELECT file_id FROM Faces GROUP BY file_id HAVING COUNT(*) = 1)
"""


def in_split(filepath: str, split: str) -> bool:
    return (zlib.crc32(filepath.encode()) % TEST_EVERY == 0) == (split == "test")


def faces(sqlite: bytes, split: str) -> dict[str, list[tuple[float, float]]]:
    """{image path under flickr/: its five landmarks} of the kept single-face images."""
    con = sqlite3.connect(":memory:")
    try:
        con.deserialize(sqlite)
        rows = con.execute(_QUERY).fetchall()
    except sqlite3.DatabaseError as e:
        raise DataError(f"{DB.filename}: aflw.sqlite is not the AFLW database ({e})") from None
    finally:
        con.close()
    marks: dict[str, dict[str, tuple[float, float]]] = {}
    for path, w, h, area, descr, x, y in rows:
        if descr in POINTS and area > MIN_FACE * w * h and in_split(path, split):
            marks.setdefault(path, {})[descr] = (x, y)
    return {p: [m[d] for d in POINTS] for p, m in sorted(marks.items()) if len(m) == len(POINTS)}


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    import numpy as np

    from reprise.data import archives
    from reprise.data import landmarks as lm

    raw_dir = Path(raw_dir)
    db = archives.read_ending(raw_dir / DB.filename, "aflw/data/aflw.sqlite")
    marks = faces(db, split)
    kept = {}

    def keep(member: str, data: bytes) -> None:
        path = member.split("aflw/data/flickr/", 1)[1]
        img, scale, _ = lm.whole(data, SIZE, path)
        kept[path] = (img, np.array(marks[path], np.float32) * scale)

    def wanted(member: str) -> bool:
        return member.partition("aflw/data/flickr/")[2] in marks

    for raw in IMAGES:
        archives.each_member(raw_dir / raw.filename, wanted, keep)
    if missing := marks.keys() - kept.keys():
        raise DataError(
            f"{len(missing)} images of aflw.sqlite (e.g. flickr/{min(missing)}) are in none of "
            f"{', '.join(r.filename for r in IMAGES)}: expected the official archives"
        )
    lm.save_faces(out, [kept[p][0] for p in marks], [kept[p][1] for p in marks])
