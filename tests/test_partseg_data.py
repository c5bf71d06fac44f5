"""Paper-scale landmark datasets (CelebA aligned, CUB-200-2011) converted from tiny files
written in the official formats; a file failing its checksum is refused."""

import io
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from reprise import data
from reprise.data import celeba, cub, landmarks
from reprise.errors import DataError


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
    with tarfile.open(raw / "CUB_200_2011.tgz", "w:gz") as tar:
        for name, text in files.items():
            blob = text.encode()
            info = tarfile.TarInfo(f"CUB_200_2011/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        for name in ("a", "b"):
            blob = _jpeg(160, 120, (200, 10, 10))
            info = tarfile.TarInfo(f"CUB_200_2011/images/001.Black_footed_Albatross/{name}.jpg")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
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
