"""scikit-learn's handwritten digits (1797 real 8×8 greyscale scans): the smoke dataset.

It ships with a dependency, so smoke runs need no download. Fixed stratified split:
1347 train / 450 test.
"""

from __future__ import annotations

from pathlib import Path

# Heavy imports stay inside prepare(): the Snakefile reads SPLITS and RAW_FILES at parse time.
SPLITS = ("train", "test")
RAW_FILES: tuple = ()  # embedded in scikit-learn
SPLIT_SEED = 20210601


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from reprise.data.prepared import save_split

    d = load_digits()
    # 0..16 intensities -> 0..255 bytes, the same storage as CIFAR
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    idx_train, idx_test = train_test_split(
        np.arange(len(x)), test_size=450, stratify=d.target, random_state=SPLIT_SEED
    )
    idx = np.sort(idx_train if split == "train" else idx_test)
    classes = [str(c) for c in range(10)]
    save_split(out, torch.from_numpy(x[idx]), torch.from_numpy(d.target[idx]), classes)
