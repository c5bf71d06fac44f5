"""Read the pickles inside official dataset archives without running their code.

CIFAR's python batches are pickles of dicts of numpy arrays, byte strings and lists. A bare
pickle.load calls whatever function the file names, so a tampered archive could run code.
This unpickler resolves only the numpy globals that rebuild a plain array, and refuses
object dtypes (whose elements would be arbitrary pickled objects).
"""

from __future__ import annotations

import io
import pickle

from reprise.errors import DataError


def _plain_dtype(*args):
    import numpy as np

    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"dtype {dtype} holds Python objects")
    return dtype


def _allowed_globals() -> dict[tuple[str, str], object]:
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return {
        # numpy 1 (the name in the official files) and numpy 2 spellings of the same function
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _plain_dtype,
    }


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        allowed = _allowed_globals()
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"it names the global {module}.{name}")
        return allowed[module, name]


def loads(blob: bytes, what: str):
    """Unpickle `blob` (Python 2 strings come back as bytes); `what` names it in errors."""
    try:
        return _ArrayUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as e:  # any failure means the file is not what the dataset publishes
        raise DataError(
            f"{what} was refused as a dataset pickle ({e}); only plain numpy arrays, numbers, "
            "strings, lists and dicts are read"
        ) from None
