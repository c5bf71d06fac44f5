"""A training process killed (SIGKILL) in the middle of an epoch and started again ends with
the same weights and the same metrics table, bit for bit, as one that was never killed."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import torch

from reprise.io import load_checkpoint, read_table
from reprise.models import load_model
from tests.core_data import digits_root

SCRIPT = '''
import pathlib, sys, time
import torch
from reprise import data
from reprise.attacks import PGD
from reprise.models import build_model, save_model
from reprise.runtime import Runtime, seed_everything, set_threads
from reprise.resume import Resume
from reprise.training import PGDAT, Hook, TrainConfig, fit

root, ckpt, history, final, marker = sys.argv[1:]
resume = Resume(pathlib.Path(ckpt))


class PauseInSecondEpoch(Hook):
    """At the 4th batch of the 2nd epoch: leave a marker, then wait there to be killed."""

    def __init__(self):
        self.batches = 0

    def start_batch(self, model, batch):
        self.batches += batch.epoch == 1
        if self.batches == 4 and marker != "-" and not pathlib.Path(marker).exists():
            pathlib.Path(marker).touch()
            time.sleep(60)


rt = Runtime(threads=1, seed=3)
set_threads(rt.threads)
# Runtime.setup() minus torch.use_deterministic_algorithms, which imports torch._inductor
# (~5 s a process, three processes here); the CPU kernels used here are deterministic anyway.
seed_everything(rt.seed, deterministic=False)
train = data.load("digits", "train", root).subset(256)
test = data.load("digits", "test", root).subset(64)
model = build_model("small_cnn", 10, width=0.25, in_channels=1)
attack = PGD(eps=0.1, step_size=0.04, steps=2)
cfg = TrainConfig.from_config({
    "epochs": 3, "batch_size": 32, "lr": 0.05, "weight_decay": 5e-4,
    "schedule": {"kind": "multistep", "milestones": [2]}, "augment": {"crop": 1, "flip": True},
    "monitor": {"grad_norm": True, "train_size": 64, "best_by": "test_robust_acc"},
})
fit(model, PGDAT(attack, hooks=[PauseInSecondEpoch()]), train, cfg, resume=resume,
    history_path=history, test=test, attack=attack, accel=rt.accel(), seed=rt.seed)
save_model(final, model)
'''


def command(tmp_path, name, marker="-"):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    paths = [tmp_path / f"{name}.ckpt", tmp_path / f"{name}.parquet", tmp_path / f"{name}.pt"]
    return [sys.executable, str(script), digits_root(), *map(str, paths), str(marker)]


def start(cmd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def finish(proc):
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()


def test_killed_mid_epoch_resumes_to_identical_result(tmp_path):
    whole = start(command(tmp_path, "whole"))  # the uninterrupted run, alongside

    marker = tmp_path / "in-epoch-2"
    cmd = command(tmp_path, "killed", marker)
    proc = start(cmd)
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the training never reached its second epoch"
        time.sleep(0.05)
    assert load_checkpoint(tmp_path / "killed.ckpt" / "state.pt")["state"]["epoch"] == 1
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert len(read_table(tmp_path / "killed.parquet")) == 1
    assert not (tmp_path / "killed.pt").exists()

    finish(start(cmd))  # the marker exists now: no pause, runs to the end from state.pt
    finish(whole)

    whole, _ = load_model(tmp_path / "whole.pt")
    resumed, _ = load_model(tmp_path / "killed.pt")
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    table = read_table(tmp_path / "whole.parquet")
    assert len(table) == 3
    pd.testing.assert_frame_equal(table, read_table(tmp_path / "killed.parquet"), check_exact=True)
    best_whole, best_resumed = (
        load_checkpoint(tmp_path / f"{n}.ckpt" / "state.pt")["state"]["best"]
        for n in ("whole", "killed")
    )
    assert best_whole["epoch"] == best_resumed["epoch"]
