"""Dataset loaders on tiny files in the real published formats (no download needed)."""

import builtins
import dataclasses
import pickle

import numpy as np
import pytest
import torch

from reprise import cli, data
from reprise.data import cifar10, cifar10c, cifar100, digits, svhn
from reprise.data.download import RawFile, digest, fetch_file
from reprise.data.prepared import save_split
from reprise.errors import DataError
from tests.tiny_datasets import (
    npy_bytes,
    py2_pickle,
    replace_members,
    trust_files_in,
    write_cifar10,
    write_cifar10c,
    write_cifar100,
    write_svhn,
    write_tar,
)


def _prepared(root, name, split):
    """The stored uint8 tensors of a prepared split."""
    return torch.load(data.prepared_path(root, name, split), weights_only=True)


def _leftovers(root):
    return [p.name for p in root.rglob("*") if p.is_file() and "prepared" in p.parts]


@pytest.fixture
def cifar10_root(tmp_path, monkeypatch):
    content = write_cifar10(tmp_path / "raw" / "cifar10")
    trust_files_in(monkeypatch, cifar10, tmp_path / "raw" / "cifar10")
    return tmp_path, content


# --- CIFAR-10 / CIFAR-100 -------------------------------------------------------------------


def test_cifar10_splits_shapes_labels_and_names(cifar10_root):
    root, content = cifar10_root
    data.prepare("cifar10", root, "train")
    data.prepare("cifar10", root, "test")
    train, test = data.load("cifar10", "train", root), data.load("cifar10", "test", root)
    assert train.x.shape == (15, 3, 32, 32) and test.x.shape == (3, 3, 32, 32)
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert train.x.min() >= 0.0 and train.x.max() <= 1.0
    batches = [content[f"data_batch_{i}"] for i in range(1, 6)]
    assert train.y.tolist() == [label for _, labels in batches for label in labels]
    assert test.y.tolist() == content["test_batch"][1]
    assert train.classes == list(cifar10.CLASSES) and train.num_classes == 10
    stored = _prepared(root, "cifar10", "train")["x"]
    assert stored.dtype == torch.uint8
    assert torch.equal(stored.float() / 255, train.x)


def test_cifar_rows_are_red_green_blue_planes(cifar10_root):
    """A row is 1024 red bytes, then green, then blue, each plane row-major (h*32 + w)."""
    root, content = cifar10_root
    rows = content["test_batch"][0]
    data.prepare("cifar10", root, "test")
    x = _prepared(root, "cifar10", "test")["x"]
    for n, c, h, w in [(0, 0, 5, 7), (1, 1, 0, 31), (2, 2, 31, 0), (0, 2, 17, 3)]:
        assert x[n, c, h, w].item() == rows[n, c * 1024 + h * 32 + w]


def test_cifar100_uses_fine_labels_and_meta_names(tmp_path, monkeypatch):
    content = write_cifar100(tmp_path / "raw" / "cifar100")
    trust_files_in(monkeypatch, cifar100, tmp_path / "raw" / "cifar100")
    data.prepare("cifar100", tmp_path, "train")
    d = data.load("cifar100", "train", tmp_path)
    assert d.x.shape == (4, 3, 32, 32)
    assert d.y.tolist() == content["train"][1] == [97, 3, 50, 0]
    assert d.num_classes == 100 and d.classes[97] == "fine97"
    stored = _prepared(tmp_path, "cifar100", "train")["x"]
    assert torch.equal(stored, torch.from_numpy(content["train"][0].reshape(4, 3, 32, 32)))


def test_malicious_pickle_in_archive_is_refused_without_running(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return builtins.exec, (f"open({str(marker)!r}, 'w').write('ran')",)

    evil = pickle.dumps({"data": Payload(), "labels": []}, protocol=2)
    pickle.loads(evil)  # the payload is live: a bare pickle.load runs it
    assert marker.read_text() == "ran"
    marker.unlink()

    raw = tmp_path / "raw" / "cifar100"
    write_cifar100(raw)
    replace_members(raw / "cifar-100-python.tar.gz", {"cifar-100-python/train": evil})
    trust_files_in(monkeypatch, cifar100, raw)  # checksum passes: the unpickler must stop it
    with pytest.raises(DataError, match=r"global __builtin__\.exec"):
        data.prepare("cifar100", tmp_path, "train")
    assert not marker.exists()
    assert _leftovers(tmp_path) == []


def test_object_arrays_in_pickles_are_refused(tmp_path, monkeypatch):
    raw = tmp_path / "raw" / "cifar10"
    write_cifar10(raw)
    batch = {"data": np.array([[1] * 3072], dtype=object), "labels": [0]}
    write_tar(
        raw / "cifar-10-python.tar.gz",
        {"cifar-10-batches-py/test_batch": py2_pickle(batch),
         "cifar-10-batches-py/batches.meta": py2_pickle({"label_names": ["a"]})},
    )  # fmt: skip
    trust_files_in(monkeypatch, cifar10, raw)
    with pytest.raises(DataError, match="Python objects"):
        data.prepare("cifar10", tmp_path, "test")


def test_cifar_archive_without_a_batch_names_the_missing_member(tmp_path, monkeypatch):
    raw = tmp_path / "raw" / "cifar10"
    raw.mkdir(parents=True)
    write_tar(raw / "cifar-10-python.tar.gz", {"cifar-10-batches-py/test_batch": b"x"})
    trust_files_in(monkeypatch, cifar10, raw)
    with pytest.raises(DataError, match="batches.meta"):
        data.prepare("cifar10", tmp_path, "test")


# --- CIFAR-10-C -----------------------------------------------------------------------------


def test_cifar10c_splits_are_19_corruptions_by_5_severities():
    assert len(cifar10c.CORRUPTIONS) == 19 and len(set(cifar10c.CORRUPTIONS)) == 19
    assert len(cifar10c.SPLITS) == 95
    assert "gaussian_noise-1" in cifar10c.SPLITS and "saturate-5" in cifar10c.SPLITS


def test_cifar10c_split_is_its_severity_rows_in_chw(tmp_path, monkeypatch):
    raw = tmp_path / "raw" / "cifar10c"
    arrays = write_cifar10c(raw, ["fog", "zoom_blur"], n=4)
    trust_files_in(monkeypatch, cifar10c, raw)
    data.prepare("cifar10c", tmp_path, "fog-3")
    d = data.load("cifar10c", "fog-3", tmp_path)
    assert d.x.shape == (4, 3, 32, 32) and d.classes == list(cifar10.CLASSES)
    assert d.y.tolist() == arrays["labels"][8:12].tolist()
    x = _prepared(tmp_path, "cifar10c", "fog-3")["x"]
    fog = arrays["fog"]
    for n, h, w, c in [(0, 0, 0, 0), (3, 31, 2, 1), (1, 7, 30, 2)]:
        assert x[n, c, h, w].item() == fog[8 + n, h, w, c]  # severity 3: rows 8..11
    assert torch.equal(x, torch.from_numpy(fog[8:12]).permute(0, 3, 1, 2))


def test_cifar10c_refuses_wrong_array_shape(tmp_path, monkeypatch):
    raw = tmp_path / "raw" / "cifar10c"
    raw.mkdir(parents=True)
    bad = {"CIFAR-10-C/fog.npy": npy_bytes(np.zeros((7, 32, 32, 3), np.uint8)),
           "CIFAR-10-C/labels.npy": npy_bytes(np.zeros(7, np.uint8))}  # fmt: skip
    write_tar(raw / "CIFAR-10-C.tar", bad)
    trust_files_in(monkeypatch, cifar10c, raw)
    with pytest.raises(DataError, match=r"shape \(7, 32, 32, 3\)"):
        data.prepare("cifar10c", tmp_path, "fog-1")
    assert _leftovers(tmp_path) == []


# --- SVHN -----------------------------------------------------------------------------------


def test_svhn_maps_10_to_0_and_hwcn_to_nchw(tmp_path, monkeypatch):
    raw = tmp_path / "raw" / "svhn"
    X, y = write_svhn(raw, "train", n=12)
    trust_files_in(monkeypatch, svhn, raw)
    data.prepare("svhn", tmp_path, "train")  # needs only train_32x32.mat: no extra, no test
    d = data.load("svhn", "train", tmp_path)
    assert d.x.shape == (12, 3, 32, 32) and d.classes == [str(i) for i in range(10)]
    assert y[9, 0] == 10 and d.y[9] == 0
    assert d.y.tolist() == [int(v) % 10 for v in y[:, 0]]
    x = _prepared(tmp_path, "svhn", "train")["x"]
    for n, c, h, w in [(0, 0, 0, 1), (11, 2, 31, 5), (4, 1, 9, 30)]:
        assert x[n, c, h, w].item() == X[h, w, c, n]


def test_svhn_splits_need_only_their_own_file():
    assert [r.filename for r in data.raw_files("svhn", "test")] == ["test_32x32.mat"]
    assert len(data.raw_files("svhn")) == 3
    assert [r.filename for r in data.raw_files("cifar10c", "fog-2")] == ["CIFAR-10-C.tar"]


def test_svhn_refuses_labels_outside_1_to_10(tmp_path, monkeypatch):
    from scipy.io import savemat

    raw = tmp_path / "raw" / "svhn"
    raw.mkdir(parents=True)
    savemat(raw / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": [[0], [3]]})
    trust_files_in(monkeypatch, svhn, raw)
    with pytest.raises(DataError, match="labels in 1..10"):
        data.prepare("svhn", tmp_path, "test")


# --- checksums, truncation, download --------------------------------------------------------


def test_truncated_archive_is_refused_and_leaves_nothing(cifar10_root):
    root, _ = cifar10_root
    archive = root / "raw" / "cifar10" / "cifar-10-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(DataError, match="truncated or corrupted"):
        data.prepare("cifar10", root, "train")
    assert _leftovers(root) == []


def test_corrupted_bytes_of_the_same_size_are_refused(cifar10_root):
    root, _ = cifar10_root
    archive = root / "raw" / "cifar10" / "cifar-10-python.tar.gz"
    blob = bytearray(archive.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    archive.write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"fails its md5 check .*expected"):
        data.prepare("cifar10", root, "test")
    assert _leftovers(root) == []


def test_truncated_archive_is_refused_by_the_reader_too(tmp_path):
    """Even past the checksum (e.g. prepare called directly), the reader fails cleanly."""
    raw = tmp_path / "raw"
    write_cifar10(raw)
    archive = raw / "cifar-10-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[:5000])
    out = tmp_path / "out.pt"
    with pytest.raises(DataError, match="not a readable tar archive"):
        cifar10.prepare(raw, "train", out)
    assert not out.exists()


def test_fetch_from_file_url_verifies_and_places_the_file(tmp_path):
    src = tmp_path / "mirror" / "thing.tar"
    src.parent.mkdir()
    src.write_bytes(b"official bytes" * 1000)
    raw = RawFile(src.as_uri(), "thing.tar", digest(src))
    dest = fetch_file(raw, tmp_path / "raw")
    assert dest == tmp_path / "raw" / "thing.tar" and dest.read_bytes() == src.read_bytes()
    assert fetch_file(raw, tmp_path / "raw") == dest  # in place: verified, not re-downloaded


def test_fetch_of_a_bad_download_keeps_nothing(tmp_path):
    src = tmp_path / "thing.tar"
    src.write_bytes(b"not the official bytes")
    raw = RawFile(src.as_uri(), "thing.tar", "0" * 32)
    with pytest.raises(DataError, match="fails its md5 check.*place the official file thing.tar"):
        fetch_file(raw, tmp_path / "raw")
    assert list((tmp_path / "raw").iterdir()) == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/cifar.tar.gz", "file:///no/such/file.tgz"])
def test_unreachable_url_says_which_file_to_place_where(tmp_path, url):
    raw = RawFile(url, "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")
    with pytest.raises(DataError) as e:
        fetch_file(raw, tmp_path / "raw" / "cifar10", timeout=5)
    msg = str(e.value)
    assert "place the official file cifar-10-python.tar.gz" in msg
    assert f"at {tmp_path / 'raw' / 'cifar10' / 'cifar-10-python.tar.gz'}" in msg
    assert "c58f30108f718f92721af3b95e74349a" in msg
    assert not (tmp_path / "raw" / "cifar10" / "cifar-10-python.tar.gz").exists()


def test_data_fetch_downloads_every_raw_file_of_a_dataset(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    write_svhn(mirror, "train")
    write_svhn(mirror, "test")
    files = tuple(
        dataclasses.replace(
            r, url=(mirror / r.filename).as_uri(), checksum=digest(mirror / r.filename)
        )
        for r in svhn.RAW_FILES[:2]
    )
    monkeypatch.setattr(svhn, "RAW_FILES", files)
    got = data.fetch("svhn", tmp_path / "data", "test_32x32.mat")
    assert got == [tmp_path / "data" / "raw" / "svhn" / "test_32x32.mat"]
    assert len(data.fetch("svhn", tmp_path / "data")) == 2


def test_save_split_refuses_labels_outside_the_classes(tmp_path):
    x = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    with pytest.raises(DataError, match=r"labels must lie in 0..1"):
        save_split(tmp_path / "s.pt", x, torch.tensor([0, 2]), ["a", "b"])
    assert not (tmp_path / "s.pt").exists()


# --- digits (embedded) ----------------------------------------------------------------------


def test_digits_fixed_1347_450_split(tmp_path):
    train, test = (data.prepare("digits", tmp_path, s) for s in digits.SPLITS)
    a = data.load("digits", "train", tmp_path)
    b = data.load("digits", "test", tmp_path)
    assert len(a) == 1347 and len(b) == 450 and a.x.shape[1:] == (1, 8, 8)
    assert a.x.min() >= 0.0 and a.x.max() == 1.0 and a.x.dtype == torch.float32
    assert sorted(set(b.y.tolist())) == list(range(10)) and a.classes == [str(i) for i in range(10)]
    first = _prepared(tmp_path, "digits", "train")
    data.prepare("digits", tmp_path, "train")  # the same split every time
    again = _prepared(tmp_path, "digits", "train")
    assert torch.equal(first["x"], again["x"]) and torch.equal(first["y"], again["y"])


def test_digits_resize_and_channels(tmp_path):
    data.prepare("digits", tmp_path, "test")
    d = data.load("digits", "test", tmp_path, size=32, channels=3)
    assert d.x.shape == (450, 3, 32, 32) and d.x.min() >= 0.0 and d.x.max() <= 1.0
    assert torch.equal(d.x[:, 0], d.x[:, 2])


def test_unknown_dataset_and_split_are_refused(tmp_path):
    with pytest.raises(DataError, match="known datasets: digits, cifar10"):
        data.prepare("mnist", tmp_path, "train")
    with pytest.raises(DataError, match="splits: gaussian_noise-1"):
        data.prepare("cifar10c", tmp_path, "fog-6")


# --- CLI and Snakemake ----------------------------------------------------------------------


def test_cli_prepares_all_splits(cifar10_root):
    root, _ = cifar10_root
    assert cli.main(["data", "prepare", "cifar10", "--root", str(root)]) == 0
    assert data.load("cifar10", "train", root).x.shape == (15, 3, 32, 32)
    assert data.load("cifar10", "test", root).x.shape == (3, 3, 32, 32)


def test_cli_refuses_a_corrupted_archive_with_one_line(cifar10_root, capsys):
    root, _ = cifar10_root
    archive = root / "raw" / "cifar10" / "cifar-10-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[:-1] + b"!")
    assert cli.main(["data", "prepare", "cifar10", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reprise: error: ") and "md5" in err[0]
    assert _leftovers(root) == []


def test_cli_data_list_and_missing_dataset(capsys):
    assert cli.main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in out
    assert "svhn: splits train, test, extra" in out
    assert cli.main(["data", "prepare"]) == 2
    assert "needs a DATASET" in capsys.readouterr().err


@pytest.mark.parametrize(
    "target, raw, absent",
    [
        ("cifar10/train", "cifar10/cifar-10-python.tar.gz", "test.pt"),
        ("svhn/test", "svhn/test_32x32.mat", "train_32x32.mat"),  # not the other SVHN files
        ("cifar10c/fog-5", "cifar10c/CIFAR-10-C.tar", "fog-4"),
    ],
)
def test_snakemake_plans_fetch_then_prepare(project_copy, target, raw, absent):
    from tests.conftest import run

    plan = run(["snakemake", "-n", f"data/prepared/{target}.pt"], cwd=project_copy).stdout
    jobs = [line.split()[1] for line in plan.splitlines() if line.startswith("rule ")]
    assert jobs == ["fetch_dataset:", "prepare_dataset:"], plan
    assert f"output: data/raw/{raw}" in plan and absent not in plan
