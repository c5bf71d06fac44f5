"""CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019): the CIFAR-10 test set under corruptions.

CIFAR-10-C.tar holds CIFAR-10-C/<corruption>.npy, uint8 50000×32×32×3: severity 1 in the
first 10000 rows up to severity 5 in the last, plus labels.npy for those rows. One split per
corruption and severity, `<corruption>-<severity>`; preparing one reads only its 10000 rows
(the archive is 2.9 GB; the 19 arrays are never loaded whole).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from reprise.data.download import RawFile
from reprise.errors import DataError

# The 15 benchmark corruptions, then the 4 held-out extras.
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
    "elastic_transform", "pixelate", "jpeg_compression",
    "speckle_noise", "gaussian_blur", "spatter", "saturate",
)  # fmt: skip
SEVERITIES = (1, 2, 3, 4, 5)
SPLITS = tuple(f"{c}-{s}" for c in CORRUPTIONS for s in SEVERITIES)
RAW_FILES = (
    RawFile(
        "https://zenodo.org/records/2535967/files/CIFAR-10-C.tar?download=1",
        "CIFAR-10-C.tar",
        "56bf5dcef84df0e2308c6dcbcbbd8499",
    ),
)
FOLDER = "CIFAR-10-C"


def read_rows(f: IO[bytes], severity: int, what: str, row_shape: tuple[int, ...]):
    """The rows of `severity` from an .npy file object, reading only those bytes."""
    import numpy as np
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(f)
        headers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
        if version not in headers:
            raise ValueError(f"unsupported .npy version {version}")
        shape, fortran_order, dtype = headers[version](f)
    except ValueError as e:
        raise DataError(f"{what} is not a .npy array ({e})") from None
    n, rest = divmod(shape[0], len(SEVERITIES)) if shape else (0, 1)
    if fortran_order or dtype.hasobject or rest or not n or shape[1:] != row_shape:
        raise DataError(
            f"{what} is a {'Fortran-order ' if fortran_order else ''}{dtype} array of shape "
            f"{shape}, expected {len(SEVERITIES)}·N×{'×'.join(map(str, row_shape)) or '1'}"
        )
    row_bytes = dtype.itemsize * int(np.prod(row_shape, dtype=np.int64))
    f.seek((severity - 1) * n * row_bytes, 1)  # from the end of the header
    data = f.read(n * row_bytes)
    if len(data) != n * row_bytes:
        raise DataError(f"{what} ends early: expected {shape[0]} rows of {row_bytes} bytes")
    return np.frombuffer(data, dtype=dtype).reshape(n, *row_shape)


def prepare(raw_dir: Path, split: str, out: Path) -> None:
    import numpy as np
    import torch

    from reprise.data.archives import open_member
    from reprise.data.cifar10 import CLASSES
    from reprise.data.prepared import save_split

    corruption, _, severity = split.rpartition("-")
    archive = Path(raw_dir) / RAW_FILES[0].filename
    arrays = {}
    for name, row_shape in ((corruption, (32, 32, 3)), ("labels", ())):
        member = f"{FOLDER}/{name}.npy"
        with open_member(archive, member) as f:
            arrays[name] = read_rows(f, int(severity), f"{archive}:{member}", row_shape)
    x, y = arrays[corruption], arrays["labels"]
    if x.dtype != np.uint8 or not np.issubdtype(y.dtype, np.integer) or len(x) != len(y):
        raise DataError(
            f"{archive}: expected uint8 images and as many integer labels, got {len(x)} "
            f"{x.dtype} images and {len(y)} {y.dtype} labels"
        )
    images = torch.from_numpy(x.copy()).permute(0, 3, 1, 2)  # N×H×W×C -> N×C×H×W
    save_split(out, images, torch.from_numpy(y.astype(np.int64)), list(CLASSES))
