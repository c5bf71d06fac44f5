"""GTSRB loader on tiny archives written in the official format (zips of PPMs + ';' CSVs)."""

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from reprise import data
from reprise.data import gtsrb
from reprise.errors import DataError
from tests.tiny_datasets import trust_files_in

HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"


def _ppm(colour, size) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PPM")
    return buf.getvalue()


def _zip(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, blob in members.items():
            z.writestr(name, blob)


def _colour(i):
    return (10 * i % 256, 255 - 7 * i % 256, 3 * i % 256)


def write_gtsrb(raw, classes=(0, 1, 42), per_class=2, n_test=4):
    """Tiny official-format archives; returns the expected (colour, label) per split."""
    raw.mkdir(parents=True, exist_ok=True)
    members, train = {}, []
    for c in range(gtsrb.NUM_CLASSES):  # every class folder has its CSV, most are empty
        folder = f"{gtsrb.TRAIN_DIR}/{c:05d}"
        lines = HEADER
        for t in range(per_class if c in classes else 0):
            name, colour, size = f"00000_{t:05d}.ppm", _colour(len(train)), (15 + 9 * t, 20)
            members[f"{folder}/{name}"] = _ppm(colour, size)
            lines += f"{name};{size[0]};{size[1]};1;1;{size[0] - 1};{size[1] - 1};{c}\n"
            train.append((colour, c))
        members[f"{folder}/GT-{c:05d}.csv"] = lines.encode()
    _zip(raw / gtsrb.TRAIN, members)
    test, images, gt = [], {}, HEADER
    for n in range(n_test):
        name, colour, label = f"{n:05d}.ppm", _colour(100 + n), (5 * n) % 43
        images[f"{gtsrb.TEST_DIR}/{name}"] = _ppm(colour, (30, 41))
        gt += f"{name};30;41;2;2;28;39;{label}\n"
        test.append((colour, label))
    images[f"{gtsrb.TEST_DIR}/GT-final_test.test.csv"] = HEADER.encode()
    _zip(raw / gtsrb.TEST, images)
    _zip(raw / gtsrb.TEST_GT, {gtsrb.TEST_CSV: gt.encode()})
    return {"train": train, "test": test}


@pytest.fixture
def gtsrb_root(tmp_path, monkeypatch):
    expected = write_gtsrb(tmp_path / "raw" / "gtsrb")
    trust_files_in(monkeypatch, gtsrb, tmp_path / "raw" / "gtsrb")
    return tmp_path, expected


def test_registered_with_official_files_and_checksums():
    assert "gtsrb" in data.DATASETS and data.splits("gtsrb") == ("train", "test")
    files = {r.filename: r for r in data.raw_files("gtsrb")}
    assert set(files) == {gtsrb.TRAIN, gtsrb.TEST, gtsrb.TEST_GT}
    assert all(len(r.checksum) == 32 and r.url.endswith(r.filename) for r in files.values())
    assert [r.filename for r in data.raw_files("gtsrb", "train")] == [gtsrb.TRAIN]


@pytest.mark.parametrize("split", ["train", "test"])
def test_images_resized_to_32_with_their_labels(gtsrb_root, split):
    root, expected = gtsrb_root
    data.prepare("gtsrb", root, split)
    d = data.load("gtsrb", split, root)
    assert d.x.shape == (len(expected[split]), 3, 32, 32) and d.num_classes == 43
    assert d.y.tolist() == [label for _, label in expected[split]]
    stored = torch.load(data.prepared_path(root, "gtsrb", split), weights_only=True)["x"]
    for i, (colour, _) in enumerate(expected[split]):  # flat colours survive the resize
        assert stored[i].flatten(1).float().mean(1).round().tolist() == list(map(float, colour))


def test_corrupted_archive_refused_before_conversion(gtsrb_root):
    root, _ = gtsrb_root
    path = root / "raw" / "gtsrb" / gtsrb.TEST_GT
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="md5"):
        data.prepare("gtsrb", root, "test")
    assert not data.prepared_path(root, "gtsrb", "test").exists()


def test_missing_image_and_bad_labels_named(tmp_path, monkeypatch):
    raw = tmp_path / "raw" / "gtsrb"
    write_gtsrb(raw)
    _zip(raw / gtsrb.TEST_GT, {gtsrb.TEST_CSV: (HEADER + "99999.ppm;1;1;0;0;1;1;3\n").encode()})
    trust_files_in(monkeypatch, gtsrb, raw)
    with pytest.raises(DataError, match="99999.ppm"):
        data.prepare("gtsrb", tmp_path, "test")
    _zip(raw / gtsrb.TEST_GT, {gtsrb.TEST_CSV: (HEADER + "00000.ppm;1;1;0;0;1;1;43\n").encode()})
    trust_files_in(monkeypatch, gtsrb, raw)
    with pytest.raises(DataError, match="0..42"):
        data.prepare("gtsrb", tmp_path, "test")
    _zip(raw / gtsrb.TEST_GT, {"other.csv": b""})
    trust_files_in(monkeypatch, gtsrb, raw)
    with pytest.raises(DataError, match=gtsrb.TEST_CSV):
        data.prepare("gtsrb", tmp_path, "test")


def test_not_a_zip_refused(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / gtsrb.TEST_GT).write_bytes(np.arange(10, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match="not a readable zip"):
        gtsrb.prepare(raw, "test", tmp_path / "out.pt")
