"""Paper-scale landmark datasets (CelebA aligned and wild, AFLW, CUB-200-2011, VOC sheep)
converted from tiny files written in the official formats; a file failing its checksum, or
a damaged archive without one, is refused."""

import io
import sqlite3
import zipfile

import numpy as np
import pytest
from PIL import Image

from reprise import data
from reprise.data import aflw, celeba, celeba_wild, cub, download, landmarks, voc_sheep
from reprise.errors import DataError
from tests.tiny_datasets import trust_files_in, write_tar


def _jpeg(w, h, colour):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, format="JPEG")
    return buf.getvalue()


def _tiny_celeba(raw):
    raw.mkdir(parents=True)
    names = ["000001.jpg", "000002.jpg", "000003.jpg"]
    with zipfile.ZipFile(raw / "img_align_celeba.zip", "w") as z:
        for i, n in enumerate(names):
            z.writestr(f"img_align_celeba/{n}", _jpeg(178, 218, (50 * i, 80, 120)))
    lines = ["3", "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x "
             "leftmouth_y rightmouth_x rightmouth_y"]  # fmt: skip
    lines += [f"{n} 69 109 106 113 77 142 73 152 108 154" for n in names]
    (raw / "list_landmarks_align_celeba.txt").write_text("\n".join(lines) + "\n")
    (raw / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n")


def test_celeba_converts_official_formats(tmp_path):
    raw = tmp_path / "raw" / "celeba"
    _tiny_celeba(raw)
    celeba.prepare(raw, "train", tmp_path / "train.pt")
    celeba.prepare(raw, "test", tmp_path / "test.pt")
    train, test = landmarks.load(tmp_path / "train.pt"), landmarks.load(tmp_path / "test.pt")
    assert train["images"].shape == (1, 3, 128, 128) and len(test["images"]) == 1
    scale = 128 / 178
    left_eye = (np.array([69, 109 - 20]) + 0.5) * scale
    assert np.allclose(train["landmarks"][0, 0], left_eye, atol=1e-4)
    assert train["norm"][0] == pytest.approx(np.hypot(37, 4) * scale, rel=1e-5)
    from reprise.data.prepared import load_split

    assert len(load_split(tmp_path / "train.pt")) == 1  # the core loader reads it too
    assert data.splits("celeba") == ("train", "test")  # registered
    (raw / "list_eval_partition.txt").write_text("000001.jpg 0\n000009.jpg 0\n")
    with pytest.raises(DataError, match="000009.jpg"):
        celeba.prepare(raw, "train", tmp_path / "bad.pt")


def test_celeba_checksums_refuse_a_wrong_file(tmp_path):
    raw = tmp_path / "raw" / "celeba"
    _tiny_celeba(raw)
    with pytest.raises(DataError, match="md5"):
        data.prepare("celeba", tmp_path, "train")


def test_cub_converts_official_formats(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    files = {
        "images.txt": "1 001.Black_footed_Albatross/a.jpg\n2 001.Black_footed_Albatross/b.jpg\n",
        "train_test_split.txt": "1 1\n2 0\n",
        "bounding_boxes.txt": "1 10.0 20.0 100.0 50.0\n2 0.0 0.0 60.0 60.0\n",
        "parts/part_locs.txt": "\n".join(
            f"{i} {p} {30.0 + p} {40.0} {int(p != 3)}" for i in (1, 2) for p in range(1, 16)
        ),
    }
    members = {f"CUB_200_2011/{name}": text.encode() for name, text in files.items()}
    for name in ("a", "b"):
        jpg = _jpeg(160, 120, (200, 10, 10))
        members[f"CUB_200_2011/images/001.Black_footed_Albatross/{name}.jpg"] = jpg
    write_tar(raw / "CUB_200_2011.tgz", members)
    cub.prepare(raw, "train", tmp_path / "train.pt")
    train = landmarks.load(tmp_path / "train.pt")
    assert train["images"].shape == (1, 3, 128, 128)
    # box (10, 20, 100×50): square of side 100 centred at (60, 45) -> origin (10, -5)
    scale = 128 / 100
    assert np.allclose(train["landmarks"][0, 0], (np.array([31.0, 40.0]) - (10, -5)) * scale)
    assert train["visible"][0].tolist() == [p != 3 for p in range(1, 16)]
    assert train["norm"][0] == pytest.approx(np.sqrt(100 * 50) * scale)


def test_landmark_split_refuses_foreign_file(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a prepared landmark split"):
        landmarks.load(tmp_path / "x.pt")


# --- wild CelebA + MAFL ----------------------------------------------------------------------


def _tiny_celeba_wild(raw, names=("000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg")):
    """Four wild images of different sizes in one 7z archive split into fourteen volumes (as
    the official one is); 000003's face box is small (filtered out)."""
    py7zr = pytest.importorskip("py7zr")
    raw.mkdir(parents=True)
    sizes = {n: (200 + 40 * i, 160 + 20 * i) for i, n in enumerate(names)}
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        for n, (w, h) in sizes.items():
            z.writestr(_jpeg(w, h, (90, 60, 30)), f"img_celeba/{n}")
    blob = buf.getvalue()
    step = len(blob) // 14 + 1
    for k in range(14):
        (raw / f"img_celeba.7z.{k + 1:03d}").write_bytes(blob[k * step : (k + 1) * step])
    marks = ["4", "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x "
             "leftmouth_y rightmouth_x rightmouth_y"]  # fmt: skip
    marks += [f"{n} 60 80 120 84 90 110 70 130 112 131" for n in names]
    (raw / "list_landmarks_celeba.txt").write_text("\n".join(marks) + "\n")
    boxes = ["4", "image_id x_1 y_1 width height"]
    boxes += [f"{n} 10 5 {20 if n == '000003.jpg' else 180} 150" for n in names]
    (raw / "list_bbox_celeba.txt").write_text("\n".join(boxes) + "\n")
    (raw / "training.txt").write_text("000001.jpg\n000003.jpg\n000004.jpg\n")
    (raw / "testing.txt").write_text("000002.jpg\n")
    return sizes


def test_celeba_wild_converts_official_formats(tmp_path, monkeypatch):
    raw = tmp_path / "raw" / "celeba_wild"
    sizes = _tiny_celeba_wild(raw)
    celeba_wild.prepare(raw, "train", tmp_path / "train.pt")
    train = landmarks.load(tmp_path / "train.pt")
    assert train["images"].shape == (2, 3, 128, 128)  # 000003 dropped: face box too small
    w, h = sizes["000004.jpg"]
    scale = np.array([128 / w, 128 / h])
    assert np.allclose(train["landmarks"][1, 0], (np.array([60, 80]) + 0.5) * scale, atol=1e-4)
    assert train["norm"][1] == pytest.approx(np.hypot(60 * scale[0], 4 * scale[1]), rel=1e-5)
    trust_files_in(monkeypatch, celeba_wild, raw)  # the tiny annotation files' md5s
    data.prepare("celeba_wild", tmp_path, "test")  # as `reprise data prepare` runs it
    test = landmarks.load(data.prepared_path(tmp_path, "celeba_wild", "test"))
    assert len(test["images"]) == 1


def test_celeba_wild_refuses_damaged_or_foreign_files(tmp_path):
    raw = tmp_path / "raw" / "celeba_wild"
    _tiny_celeba_wild(raw)
    (raw / "testing.txt").write_text("000002.jpg\n000009.jpg\n")  # not a CelebA image
    with pytest.raises(DataError, match="000009.jpg"):
        celeba_wild.prepare(raw, "test", tmp_path / "bad.pt")
    vol = raw / "img_celeba.7z.002"
    vol.write_bytes(vol.read_bytes()[:-5])  # a truncated volume
    with pytest.raises(DataError, match="not a readable 7z archive"):
        celeba_wild.prepare(raw, "train", tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()  # no partial output
    with pytest.raises(DataError, match="list_landmarks_celeba.txt fails its md5"):
        data.prepare("celeba_wild", tmp_path, "train")


def test_by_hand_files_are_never_downloaded(tmp_path):
    with pytest.raises(DataError, match=r"get it from .*training.txt"):
        download.fetch_file(celeba_wild.LISTS["train"], tmp_path)
    with pytest.raises(DataError, match=r"img_celeba.7z.014 cannot be downloaded"):
        download.fetch_file(celeba_wild.VOLUMES[-1], tmp_path)
    with pytest.raises(DataError, match="registration"):
        data.fetch("aflw", tmp_path, "aflw-db.tar.gz")
    assert not any(tmp_path.iterdir())


# --- AFLW -------------------------------------------------------------------------------------


def _aflw_sqlite(path, faces):
    """The tables of aflw.sqlite the loader reads; faces: (file_id, filepath, w, h, rect
    (x, y, w, h), {feature descr: (x, y)})."""
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE FaceImages (image_id INTEGER, db_id TEXT, file_id TEXT, filepath TEXT,"
        " bw INTEGER, width INTEGER, height INTEGER);"
        "CREATE TABLE Faces (face_id INTEGER, file_id TEXT, db_id TEXT);"
        "CREATE TABLE FaceRect (face_id INTEGER, x INTEGER, y INTEGER, w INTEGER, h INTEGER,"
        " annot_type_id INTEGER);"
        "CREATE TABLE FeatureCoords (face_id INTEGER, feature_id INTEGER, x REAL, y REAL,"
        " annot_type_id INTEGER);"
        "CREATE TABLE FeatureCoordTypes (feature_id INTEGER, descr TEXT, code TEXT, x REAL,"
        " y REAL, z REAL);"
    )
    names = ["LeftBrowLeftCorner", *aflw.POINTS, "ChinCenter"]
    con.executemany(
        "INSERT INTO FeatureCoordTypes VALUES (?, ?, '', 0, 0, 0)", list(enumerate(names, 1))
    )
    images = {}
    for face_id, (file_id, filepath, w, h, rect, points) in enumerate(faces, 1):
        images[file_id] = (filepath, w, h)
        con.execute("INSERT INTO Faces VALUES (?, ?, 'flickr')", (face_id, file_id))
        con.execute("INSERT INTO FaceRect VALUES (?, ?, ?, ?, ?, 1)", (face_id, *rect))
        for descr, (x, y) in points.items():
            con.execute(
                "INSERT INTO FeatureCoords VALUES (?, ?, ?, ?, 1)",
                (face_id, names.index(descr) + 1, x, y),
            )
    for k, (file_id, (filepath, w, h)) in enumerate(images.items()):
        con.execute(
            "INSERT INTO FaceImages VALUES (?, 'flickr', ?, ?, 0, ?, ?)",
            (k, file_id, filepath, w, h),
        )
    con.commit()
    con.close()


def test_aflw_converts_official_formats(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    five = dict(zip(aflw.POINTS, [(50, 60), (90, 62), (70, 80), (55, 100), (85, 101)], strict=True))
    paths = [f"0/image{k:05d}.jpg" for k in range(40)]
    test_paths = [p for p in paths if aflw.in_split(p, "test")]
    train_paths = [p for p in paths if aflw.in_split(p, "train")]
    assert test_paths and train_paths and not set(test_paths) & set(train_paths)
    big, small = (20, 20, 120, 120), (20, 20, 30, 30)
    faces = [(f"f{k}", p, 160, 140, big, five) for k, p in enumerate(paths)]
    faces.append(("f0", paths[0], 160, 140, big, five))  # a second face in image 0: dropped
    faces[1] = ("f1", paths[1], 160, 140, small, five)  # a small face: dropped
    partial = dict(five)
    del partial["NoseCenter"]
    faces[2] = ("f2", paths[2], 160, 140, big, partial)  # a landmark missing: dropped
    _aflw_sqlite(tmp_path / "aflw.sqlite", faces)
    write_tar(
        raw / "aflw-db.tar.gz", {"aflw/data/aflw.sqlite": (tmp_path / "aflw.sqlite").read_bytes()}
    )
    jpgs = {f"aflw/data/flickr/{p}": _jpeg(160, 140, (10, 200, 30)) for p in paths}
    write_tar(raw / "aflw-images-0.tar.gz", jpgs)
    write_tar(raw / "aflw-images-2.tar.gz", {})
    write_tar(raw / "aflw-images-3.tar.gz", {})
    for split, chosen in (("train", train_paths), ("test", test_paths)):
        aflw.prepare(raw, split, tmp_path / f"{split}.pt")
        got = landmarks.load(tmp_path / f"{split}.pt")
        assert len(got["images"]) == len(set(chosen) - set(paths[:3]))
    scale = np.array([128 / 160, 128 / 140])
    assert np.allclose(got["landmarks"][0, 2], np.array([70, 80]) * scale)
    assert got["norm"][0] == pytest.approx(np.hypot(40 * scale[0], 2 * scale[1]), rel=1e-5)
    write_tar(raw / "aflw-images-0.tar.gz", dict(list(jpgs.items())[5:]))
    with pytest.raises(DataError, match="in none of"):
        aflw.prepare(raw, "train", tmp_path / "bad.pt")
    write_tar(raw / "aflw-db.tar.gz", {"aflw/data/aflw.sqlite": b"not a database" * 100})
    with pytest.raises(DataError, match="not the AFLW database"):
        aflw.prepare(raw, "train", tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()


# --- PASCAL VOC sheep -------------------------------------------------------------------------


def _voc_xml(w, h, objects):
    objs = "".join(
        f"<object><name>{c}</name><truncated>{t}</truncated><bndbox><xmin>{b[0]}</xmin>"
        f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for c, t, b in objects
    )
    size = f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
    return f"<annotation>{size}{objs}</annotation>".encode()


def _label_png(w, h, box, label):
    seg = np.zeros((h, w), np.uint8)
    seg[box[1] : box[3], box[0] : box[2]] = label
    seg[box[1], box[0] : box[2]] = 255  # VOC's void outline
    img = Image.fromarray(seg, mode="L").convert("P")
    img.putpalette([v for i in range(256) for v in (i, i, i)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_voc_sheep_converts_official_formats(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    root = voc_sheep.ROOT
    sheep = (40, 30, 140, 110)  # 100×80 in a 200×150 image: 27% of it
    cases = {
        "2008_000001": [("sheep", 0, sheep)],
        "2008_000002": [("sheep", 0, sheep), ("sheep", 0, (0, 0, 20, 20))],  # two sheep
        "2008_000003": [("sheep", 0, (0, 0, 50, 50))],  # too small
        "2008_000004": [("cow", 0, sheep)],
        "2008_000005": [("person", 1, (0, 0, 200, 150)), ("sheep", 0, sheep)],  # truncated
    }
    files = {f"{root}/ImageSets/Segmentation/trainval.txt": "\n".join(cases).encode()}
    for i, objs in cases.items():
        files[f"{root}/Annotations/{i}.xml"] = _voc_xml(200, 150, objs)
        files[f"{root}/JPEGImages/{i}.jpg"] = _jpeg(200, 150, (120, 120, 120))
        files[f"{root}/SegmentationClass/{i}.png"] = _label_png(200, 150, sheep, voc_sheep.LABEL)
    write_tar(raw / "VOCtrainval_11-May-2012.tar", files)
    voc_sheep.prepare(raw, "test", tmp_path / "test.pt")
    got = landmarks.load(tmp_path / "test.pt")
    assert got["images"].shape == (2, 3, 128, 128) and got["landmarks"].shape == (2, 0, 2)
    # the crop: the box grown by 30% per side -> (10, 6, 170, 134), 160×128 -> 128×128
    mask = got["masks"][0]
    sx, sy = 128 / 160, 128 / 128
    inside = (slice(int((31 - 6) * sy) + 1, int((110 - 6) * sy) - 1),
              slice(int((40 - 10) * sx) + 1, int((140 - 10) * sx) - 1))  # fmt: skip
    assert mask[inside].all() and mask.sum() < mask[inside].size * 1.1
    assert mask[0].sum() == 0 and mask[:, 0].sum() == 0  # background around, void row out
    ev_iou = (mask > 0).mean()
    assert ev_iou == pytest.approx(100 * 79 / (160 * 128), abs=0.03)


def test_partseg_scores_a_dataset_without_landmarks(tmp_path):
    """VOC sheep (masks, no landmarks): foreground IoU only, no landmark or keypoint scores."""
    import torch

    from reprise.papers.partseg import runs

    class Halves(torch.nn.Module):  # part 1 on the left half of every image, else background
        def features(self, x):
            parts = torch.zeros(len(x), 2, 8, 8)
            parts[:, 1, :, :4] = 1
            parts[:, 0, :, 4:] = 1
            return parts, torch.zeros(len(x), 2, 3)

    masks = np.zeros((3, 16, 16), np.uint8)
    masks[:, :, :8] = 1
    split = {
        "images": np.zeros((3, 3, 16, 16), np.uint8),
        "landmarks": np.zeros((3, 0, 2), np.float32),
        "visible": np.zeros((3, 0), bool),
        "norm": np.ones(3, np.float32),
        "masks": masks,
    }
    row, _ = runs.scores(Halves(), split, split, None)
    assert row["foreground_iou"] == pytest.approx(1.0)
    assert row["landmark_error"] is None and row["nmi"] is None and row["part_nmi"] is None
