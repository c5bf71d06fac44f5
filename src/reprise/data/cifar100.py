"""CIFAR-100 (Krizhevsky 2009): 50000 train / 10000 test 32×32 colour images.

Labelled with the 100 fine classes (the usual benchmark); the 20 coarse superclasses in the
same files are not used.
"""

from __future__ import annotations

from pathlib import Path

from reprise.data.download import RawFile

SPLITS = ("train", "test")
RAW_FILES = (
    RawFile(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
    ),
)
FOLDER = "cifar-100-python"


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    from reprise.data.cifar import convert

    convert(
        Path(raw_dir) / RAW_FILES[0].filename,
        [f"{FOLDER}/{split}"],
        meta=f"{FOLDER}/meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        out=out,
    )
