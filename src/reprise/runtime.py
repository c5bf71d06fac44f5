"""Seeds, threads, device and step logging: what every step sets up before it works."""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from dataclasses import dataclass, field

from reprise.resume import Resume

log = logging.getLogger("reprise")


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch; on CPU also ask torch for deterministic kernels."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def set_threads(threads: int) -> None:
    """The rule's `threads:` reaches torch (and BLAS through the environment)."""
    import torch

    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)


def pick_device(requested: str = "auto"):
    """CUDA when present (and not refused), else CPU."""
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        from reprise.errors import ReproError

        raise ReproError(f"device {requested!r} was requested but CUDA is not available")
    return torch.device(requested)


def progress(iterable=None, **kwargs):
    """tqdm into stderr (the rule's log); quiet ticks when stderr is not a terminal."""
    from tqdm.auto import tqdm

    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("mininterval", 1.0 if sys.stderr.isatty() else 10.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


@dataclass
class Runtime:
    """What a step gets besides its config and files: threads, seed, device, resume state."""

    threads: int = 1
    seed: int = 0
    device_name: str = "auto"
    resume: Resume = field(default_factory=Resume)

    def __post_init__(self):
        self._start = time.perf_counter()

    def setup(self) -> Runtime:
        set_threads(self.threads)
        seed_everything(self.seed, deterministic=self.device.type == "cpu")
        # A scheduler (SLURM) that allocated a GPU sets CUDA_VISIBLE_DEVICES; say so when this
        # torch cannot use it, since the step then silently runs on the CPU.
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
        if gpus and self.device_name == "auto" and self.device.type == "cpu":
            log.warning(
                "GPU %s was allocated (CUDA_VISIBLE_DEVICES) but torch has no CUDA: "
                "running on the CPU",
                gpus,
            )
        return self

    @property
    def device(self):
        return pick_device(self.device_name)

    def elapsed(self) -> float:
        return time.perf_counter() - self._start


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
