"""Seeds, threads, device and step logging: what every step sets up before it works."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, NoReturn

from reprise.resume import Resume

log = logging.getLogger("reprise")


def loaded_torch():
    """torch if this process has imported it, else None. The CLI imports torch before the
    runtime is set up exactly when the step is registered with `torch=True`; other steps
    (the ARPES analysis, evaluate and figure steps) skip ~2.5 s of import."""
    return sys.modules.get("torch")


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and (when loaded) torch; with `deterministic`, torch's eager
    kernels are restricted to deterministic ones (CPU runs)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch = loaded_torch()
    if torch is None:
        return
    torch.manual_seed(seed)
    if deterministic:
        # torch.use_deterministic_algorithms also imports torch._inductor (~2 s in every step
        # process) only to set the same flag for compiled graphs; reprise runs eager.
        set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
        if set_flag is None:
            torch.use_deterministic_algorithms(True, warn_only=True)
        else:
            set_flag(True, warn_only=True)


def end_process(code: int) -> NoReturn:
    """Exit a command-line process with `code`, skipping the interpreter's teardown.

    With torch loaded, freeing every module and libtorch's static registrations at exit
    takes 0.3-0.7 s, paid by each of the main job's ~130 step processes (~2 s of start and
    stop each). Everything a normal exit does for the program still happens first: worker
    threads are joined (as at interpreter shutdown), exit handlers run (temporary files,
    child processes, log handlers), standard streams are flushed. Outputs are already
    closed: steps write them atomically."""
    shutdown = getattr(threading, "_shutdown", None)  # what Py_Finalize runs first
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()  # logging registered its shutdown (flushing handlers) here
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken pipe
            stream.flush()
    os._exit(code)


def set_threads(threads: int) -> None:
    """The rule's `threads:` reaches torch (and BLAS through the environment)."""
    threads = max(1, int(threads))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if (torch := loaded_torch()) is not None:
        torch.set_num_threads(threads)


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
    kwargs.setdefault("delay", 2.0)  # no bar for a loop that ends (or fails) at once
    return tqdm(iterable, **kwargs)


@dataclass(frozen=True)
class Accel:
    """How models and batches meet the device: bf16 autocast and the channels_last layout.

    Both pay off on a GPU; channels_last also measured 1.15-1.4x faster on this project's CPU
    for every model family (benchmarks/bench_core.py), so `auto` turns it on everywhere and
    bf16 only on CUDA (CPU runs stay fp32 and bit-reproducible). `compile` (torch.compile,
    inductor) stays off unless a config asks: on CPU, PGD-10 gained only 1.03-1.05x in CPU
    time over eager channels_last (bench_core.py, 1 thread; deterministic, equal to eager),
    which does not pay for a cold compile in every step process."""

    device: Any
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False  # torch.compile (inductor) the model's forward; off by default

    @classmethod
    def cpu(cls) -> Accel:
        """Plain fp32 CPU in the default layout: the reference path."""
        import torch

        return cls(torch.device("cpu"))

    def model(self, model):
        """Move a model to the device (in place, as nn.Module.to does) and return it."""
        import torch

        fmt = torch.channels_last if self.channels_last else torch.preserve_format
        model = model.to(self.device, memory_format=fmt)
        if self.compile:
            # in place (nn.Module.compile): state_dict keys and checkpoints stay unchanged
            model.compile()
        return model

    def batch(self, x):
        """An image batch on the device, in the model's memory layout."""
        import torch

        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def batches(self, data, batch_size: int):
        """(x, y) batches of an ImageData, on the device and in the model's layout."""
        for i in range(0, len(data), batch_size):
            yield (
                self.batch(data.x[i : i + batch_size]),
                data.y[i : i + batch_size].to(self.device, non_blocking=True),
            )

    def autocast(self):
        import torch

        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)


@dataclass
class Runtime:
    """What a step gets besides its config and files: threads, seed, device, resume state."""

    threads: int = 1
    seed: int = 0
    device_name: str = "auto"
    resume: Resume = field(default_factory=Resume)

    def setup(self) -> Runtime:
        set_threads(self.threads)
        if loaded_torch() is None:
            seed_everything(self.seed)
            return self
        seed_everything(self.seed, deterministic=self.device.type == "cpu")
        # Subnormal floats take a slow microcode path on x86: flushing them to zero made a
        # smoke speech model train 25% faster (its late epochs most) with bit-identical
        # weights. Set before torch starts its worker threads, which inherit it.
        loaded_torch().set_flush_denormal(True)
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

    def accel(
        self, bf16: bool | str = "auto", channels_last: bool | str = "auto", compile: bool = False
    ) -> Accel:
        """The config's `bf16`/`channels_last` (true, false or "auto") for this device, and
        `compile` (off unless asked: on CPU it did not pay, see benchmarks/bench_core.py)."""
        device = self.device
        return Accel(
            device,
            bf16=device.type == "cuda" if bf16 == "auto" else bool(bf16),
            channels_last=True if channels_last == "auto" else bool(channels_last),
            compile=bool(compile),
        )


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
