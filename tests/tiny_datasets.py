"""Tiny files in the real published formats (a few images each), for the data tests.

CIFAR batches are written the way the official files were (Python 2 cPickle, protocol 2:
strings as byte-string opcodes, numpy arrays via numpy.core.multiarray._reconstruct), so
the loader is tested against what it will meet, not against a Python 3 re-pickling.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from reprise.data.cifar10 import CLASSES
from reprise.data.download import digest


class Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 `str` opcodes, and numpy's array rebuild function
    under its numpy 1 module name, as in the files published in 2009."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", None) == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith((".gz", ".tgz")) else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def replace_members(path: Path, replacements: dict[str, bytes]) -> None:
    """Rewrite a tar archive with some members' contents replaced."""
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    write_tar(path, members | replacements)


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar10(raw_dir: Path, n: int = 3) -> dict[str, tuple[np.ndarray, list[int]]]:
    """cifar-10-python.tar.gz with n images a batch; returns {batch: (rows, labels)}."""
    batches = {f"data_batch_{i}": i for i in range(1, 6)} | {"test_batch": 6}
    content = {
        b: (cifar_rows(n, seed), [(seed + j) % 10 for j in range(n)]) for b, seed in batches.items()
    }
    members = {
        f"cifar-10-batches-py/{b}": py2_pickle(
            {
                "batch_label": f"{b} of 5",
                "labels": labels,
                "data": rows,
                "filenames": [f"img_{j}.png" for j in range(n)],
            }
        )
        for b, (rows, labels) in content.items()
    }
    members["cifar-10-batches-py/batches.meta"] = py2_pickle(
        {"num_cases_per_batch": n, "label_names": list(CLASSES), "num_vis": 3072}
    )
    raw_dir.mkdir(parents=True, exist_ok=True)
    write_tar(raw_dir / "cifar-10-python.tar.gz", members)
    return content


def write_cifar100(raw_dir: Path, n: int = 4) -> dict[str, tuple[np.ndarray, list[int]]]:
    """cifar-100-python.tar.gz; returns {split: (rows, fine labels)}."""
    content = {
        "train": (cifar_rows(n, 1), [97, 3, 50, 0][:n]),
        "test": (cifar_rows(n, 2), [99, 1, 2, 3][:n]),
    }
    members = {
        f"cifar-100-python/{split}": py2_pickle(
            {
                "filenames": ["x.png"] * n,
                "batch_label": split,
                "data": rows,
                "fine_labels": fine,
                "coarse_labels": [f // 5 for f in fine],
            }
        )
        for split, (rows, fine) in content.items()
    }
    members["cifar-100-python/meta"] = py2_pickle(
        {
            "fine_label_names": [f"fine{i}" for i in range(100)],
            "coarse_label_names": [f"coarse{i}" for i in range(20)],
        }
    )
    raw_dir.mkdir(parents=True, exist_ok=True)
    write_tar(raw_dir / "cifar-100-python.tar.gz", members)
    return content


def write_cifar10c(raw_dir: Path, corruptions: list[str], n: int = 4) -> dict[str, np.ndarray]:
    """CIFAR-10-C.tar with n images a severity; returns {member stem: array}."""
    rng = np.random.default_rng(0)
    arrays = {c: rng.integers(0, 256, (5 * n, 32, 32, 3), dtype=np.uint8) for c in corruptions}
    arrays["labels"] = np.tile(np.arange(n) % 10, 5).astype(np.uint8)
    raw_dir.mkdir(parents=True, exist_ok=True)
    write_tar(
        raw_dir / "CIFAR-10-C.tar", {f"CIFAR-10-C/{k}.npy": npy_bytes(a) for k, a in arrays.items()}
    )
    return arrays


def write_svhn(raw_dir: Path, split: str, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """<split>_32x32.mat (MATLAB v5, X 32×32×3×N, y N×1 in 1..10); returns (X, y)."""
    from scipy.io import savemat

    x = np.random.default_rng(3).integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(n, 1)  # 1..10, 10 is the digit 0
    raw_dir.mkdir(parents=True, exist_ok=True)
    savemat(raw_dir / f"{split}_32x32.mat", {"X": x, "y": y})
    return x, y


def trust_files_in(monkeypatch, module, raw_dir: Path) -> None:
    """Make the module's published checksums those of the tiny files now in raw_dir."""
    raws = tuple(
        dataclasses.replace(r, checksum=digest(raw_dir / r.filename))
        if (raw_dir / r.filename).is_file()
        else r
        for r in module.RAW_FILES
    )
    monkeypatch.setattr(module, "RAW_FILES", raws)


def jpeg_bytes(colour, size=(300, 260)) -> bytes:
    """A solid-colour JPEG of size (width, height)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, tuple(colour)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def imagenet_wnids(n: int = 1000) -> list[str]:
    return [f"n{1440764 + 7 * i:08d}" for i in range(n)]


def write_imagenet_devkit(raw_dir: Path, truth: list[int]) -> dict[int, str]:
    """ILSVRC2012_devkit_t12.tar.gz as published: data/meta.mat (a synsets struct array: the
    1000 leaves, numbered in an order other than their WordNet ids', then inner nodes) and
    data/ILSVRC2012_validation_ground_truth.txt (one ILSVRC2012_ID per validation image).
    Returns ILSVRC2012_ID -> WordNet id."""
    import scipy.io

    wnids = imagenet_wnids()
    by_id = {i + 1: wnids[(i * 389) % 1000] for i in range(1000)}  # 389 is prime to 1000
    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
              "wordnet_height", "num_train_images"]  # fmt: skip
    rows = [(i, w, f"class {i}", "a leaf", 0, np.zeros(0), 0, 1300) for i, w in by_id.items()]
    rows += [(1001, "n00001740", "entity", "the root", 2, np.array([1, 2]), 18, 0)]
    synsets = np.empty((len(rows), 1), dtype=[(f, "O") for f in fields])
    for k, row in enumerate(rows):
        synsets[k, 0] = row
    meta = io.BytesIO()
    scipy.io.savemat(meta, {"synsets": synsets})
    text = "".join(f"{t}\n" for t in truth).encode()
    write_tar(
        raw_dir / "ILSVRC2012_devkit_t12.tar.gz",
        {
            "ILSVRC2012_devkit_t12/data/meta.mat": meta.getvalue(),
            "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt": text,
            "ILSVRC2012_devkit_t12/readme.txt": b"devkit",
        },
    )
    return by_id


def imagenet_colour(class_index: int) -> tuple[int, int, int]:
    return (class_index % 251, (7 * class_index) % 256, 255 - class_index % 200)


def write_imagenet(raw_dir: Path, val_ids: list[int], train_per_class: dict[str, int]):
    """The devkit, ILSVRC2012_img_val.tar (ILSVRC2012_val_<n>.JPEG, solid images in the
    colour of their class) and ILSVRC2012_img_train.tar (one <wnid>.tar per class holding
    <wnid>_<k>.JPEG). Returns ILSVRC2012_ID -> WordNet id."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    by_id = write_imagenet_devkit(raw_dir, val_ids)
    rank = {w: i for i, w in enumerate(sorted(by_id.values()))}
    sizes = [(300, 260), (260, 400), (224, 224), (500, 333)]
    val = {
        f"ILSVRC2012_val_{n:08d}.JPEG": jpeg_bytes(
            imagenet_colour(rank[by_id[t]]), sizes[n % len(sizes)]
        )
        for n, t in enumerate(val_ids, start=1)
    }
    write_tar(raw_dir / "ILSVRC2012_img_val.tar", val)
    inner = {}
    for wnid in sorted(by_id.values()):  # every class has its tar, maybe empty
        count = train_per_class.get(wnid, 0)
        images = {f"{wnid}_{k}.JPEG": jpeg_bytes(imagenet_colour(rank[wnid])) for k in range(count)}
        class_tar = write_tar(raw_dir / f"{wnid}.tar", images)
        inner[class_tar.name] = class_tar.read_bytes()
        class_tar.unlink()
    write_tar(raw_dir / "ILSVRC2012_img_train.tar", inner)
    return by_id
