"""CIFAR-10 (Krizhevsky 2009): 50000 train / 10000 test 32×32 colour images, 10 classes."""

from __future__ import annotations

from pathlib import Path

from reprise.data.download import RawFile

SPLITS = ("train", "test")
RAW_FILES = (
    RawFile(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
    ),
)
FOLDER = "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
# The names in batches.meta, in label order (CIFAR-10-C ships labels only and reuses them).
CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    from reprise.data.cifar import convert

    convert(
        Path(raw_dir) / RAW_FILES[0].filename,
        [f"{FOLDER}/{b}" for b in BATCHES[split]],
        meta=f"{FOLDER}/batches.meta",
        label_key="labels",
        names_key="label_names",
        out=out,
    )
