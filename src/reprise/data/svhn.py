"""SVHN cropped digits (Netzer et al. 2011): 73257 train / 26032 test (+ 531131 extra).

Each split is one MATLAB v5 file: X uint8 32×32×3×N (height, width, channel, sample) and
y N×1 with labels 1..10, where 10 stands for the digit 0 (mapped to 0 here).
"""

from __future__ import annotations

from pathlib import Path

from reprise.data.download import RawFile
from reprise.errors import DataError

SPLITS = ("train", "test", "extra")
_URL = "http://ufldl.stanford.edu/housenumbers"
_MD5 = {
    "train": "e26dedcc434d2e4c54c9b2d4a06d8373",
    "test": "eb5a983be6a315427106f1b164d9cef3",
    "extra": "a93ce644f1a588dc4d68dda5feec44a7",
}
RAW_FILES = tuple(RawFile(f"{_URL}/{s}_32x32.mat", f"{s}_32x32.mat", _MD5[s]) for s in SPLITS)
# Each split reads only its own file: train/test never download the 1.3 GB extra set.
SPLIT_FILES = {s: (f"{s}_32x32.mat",) for s in SPLITS}


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    import numpy as np
    import torch
    from scipy.io import loadmat

    from reprise.data.prepared import save_split

    path = Path(raw_dir) / SPLIT_FILES[split][0]
    try:
        mat = loadmat(path, variable_names=("X", "y"))
        x, y = mat["X"], mat["y"]
    except Exception as e:  # scipy raises many types for a file that is not a v5 .mat
        raise DataError(f"{path} is not a readable MATLAB file with X and y ({e})") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: X is {x.dtype} {x.shape}, expected uint8 32×32×3×N")
    y = y.reshape(-1)
    if len(y) != x.shape[3] or not np.isin(y, np.arange(1, 11)).all():
        raise DataError(f"{path}: y is not {x.shape[3]} labels in 1..10")
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))  # N×C×H×W
    labels = torch.from_numpy((y % 10).astype(np.int64))  # label 10 is the digit 0
    save_split(out, images, labels, [str(d) for d in range(10)])
