"""Runtime: threads reach torch, seeds make runs repeatable, the device falls back to CPU."""

import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from reprise.errors import ReproError
from reprise.runtime import Runtime, pick_device, seed_everything


def test_threads_reach_torch():
    before = torch.get_num_threads()
    try:
        Runtime(threads=2).setup()
        assert torch.get_num_threads() == 2
        Runtime(threads=1).setup()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def draw():
    return random.random(), np.random.rand(), torch.rand(3).tolist()


def test_seeding_repeats_every_generator():
    seed_everything(7)
    a = draw()
    seed_everything(7)
    assert draw() == a
    seed_everything(8)
    assert draw() != a


def test_device_falls_back_to_cpu():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert pick_device("auto").type == "cpu"
    with pytest.raises(ReproError, match="CUDA is not available"):
        pick_device("cuda")


def test_allocated_gpu_without_cuda_is_reported(monkeypatch, caplog):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # what SLURM sets for --gpus=1
    rt = Runtime().setup()
    assert rt.device.type == "cpu"
    assert "GPU 0 was allocated (CUDA_VISIBLE_DEVICES) but torch has no CUDA" in caplog.text


def test_subnormal_floats_are_flushed_in_every_torch_thread():
    """Subnormals are slow on x86; setup flushes them to zero, also in the worker threads
    (a fresh process: the flag is per thread and would leak into this test session)."""
    code = (
        "import torch; from reprise.runtime import Runtime; Runtime(threads=2).setup(); "
        "x = torch.full((1 << 22,), 1e-30) * 1e-10; print(int((x != 0).sum()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"  # 1e-40 is subnormal in fp32: without the flag, kept


def test_end_process_keeps_what_a_normal_exit_does(tmp_path):
    """The fast exit still joins worker threads, runs exit handlers and flushes logs and
    standard streams, and exits with the given code."""
    code = f"""
import atexit, concurrent.futures, logging, logging.handlers, pathlib, sys, time
from reprise.runtime import end_process
d = pathlib.Path({str(tmp_path)!r})
# a buffering handler: the record reaches the file only when logging shuts down
buffered = logging.handlers.MemoryHandler(100, target=logging.FileHandler(d / "log.txt"))
logging.getLogger("x").addHandler(buffered)
logging.getLogger("x").warning("logged")
atexit.register(lambda: (d / "atexit.txt").write_text("ran"))
pool = concurrent.futures.ThreadPoolExecutor(1)  # never shut down: joined at exit
pool.submit(lambda: (time.sleep(0.3), (d / "thread.txt").write_text("done")))
sys.stdout.write("unflushed")
end_process(3)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 3, out.stderr
    assert out.stdout == "unflushed"
    assert (tmp_path / "atexit.txt").read_text() == "ran"
    assert (tmp_path / "thread.txt").read_text() == "done"
    assert "logged" in (tmp_path / "log.txt").read_text()


def test_cpu_runs_use_deterministic_kernels():
    before = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(False)
        Runtime(device_name="cpu").setup()
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)
