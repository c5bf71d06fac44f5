"""Resumable steps: state beside the outputs, resumed bit-identically, never from another run."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from reprise import cli
from reprise.data.digits import prepare
from reprise.io import load_checkpoint, read_table
from reprise.papers.example import steps
from reprise.resume import Resume, fingerprint, resume_dir
from reprise.runtime import Runtime


@pytest.fixture(scope="module")
def train_split(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits") / "train.pt"
    prepare(path.parent, "train", path)
    return path


def train(tmp_path, train_split, epochs, resume):
    """The example train step in-process; returns its model weights and loss history."""
    outputs = {"model": tmp_path / "model.pt", "history": tmp_path / "history.parquet"}
    params = {"data": {"dataset": "digits"}, "train": {"epochs": epochs, "lr": 0.5}}
    steps.train(params, {"train": train_split}, outputs, Runtime(resume=resume).setup())
    return load_checkpoint(outputs["model"])["model"], read_table(outputs["history"])


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resumed_training_equals_uninterrupted(tmp_path, train_split, caplog):
    full_model, full_history = train(tmp_path, train_split, 6, Resume())
    # An attempt cut off after epoch 3 left its state (only the CLI clears it, on success).
    state = Resume(tmp_path / "resume", key="this run")
    train(tmp_path, train_split, 3, state)
    assert len(state.load()["history"]) == 3
    with caplog.at_level(logging.INFO, logger="reprise"):
        model, history = train(tmp_path, train_split, 6, state)
    assert "resumed from epoch 3 of 6" in caplog.text
    assert_same_weights(model, full_model)
    assert history.equals(full_history)


def test_state_of_another_run_is_ignored(tmp_path, caplog):
    Resume(tmp_path, key="lr=0.5").save({"epoch": 3})
    assert Resume(tmp_path, key="lr=0.5").load() == {"epoch": 3}
    assert Resume(tmp_path, key="lr=0.1").load() is None
    assert "saved for other params, seed or inputs" in caplog.text


def test_unreadable_state_starts_over(tmp_path, caplog):
    (tmp_path / "state.pt").write_bytes(b"half a checkpoint")
    assert Resume(tmp_path, key="k").load() is None
    assert "starting over" in caplog.text and "unreadable" in caplog.text


def test_fingerprint_follows_params_seed_and_inputs(tmp_path):
    data = tmp_path / "x.pt"
    data.write_bytes(b"1")
    key = fingerprint({"lr": 0.5}, 0, [data])
    assert key == fingerprint({"lr": 0.5}, 0, [data])
    assert key != fingerprint({"lr": 0.1}, 0, [data])
    assert key != fingerprint({"lr": 0.5}, 1, [data])
    data.write_bytes(b"22")  # a rebuilt input
    assert key != fingerprint({"lr": 0.5}, 0, [data])


def train_command(tmp_path, train_split, epochs, size=None):
    data = {"dataset": "digits", **({"size": size} if size else {})}
    params = {"data": data, "train": {"epochs": epochs, "lr": 0.01}}
    return [
        *("example", "train", "--params", json.dumps(params)),
        *("--input", f"train={train_split}"),
        *("--output", f"model={tmp_path}/model.pt", "--output", f"history={tmp_path}/h.parquet"),
    ]


def test_cli_keeps_state_beside_outputs_and_clears_it_on_success(tmp_path, train_split):
    assert resume_dir(tmp_path / "model.pt") == tmp_path / "model.pt.resume"
    assert cli.main(train_command(tmp_path, train_split, 2)) == 0
    assert (tmp_path / "model.pt").is_file()
    assert not (tmp_path / "model.pt.resume").exists()


@pytest.mark.slow
def test_killed_step_resumes_when_run_again(tmp_path, train_split):
    """A real kill (SIGKILL, as a node loss would) mid-training, then the same command again."""
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    reprise = [sys.executable, "-m", "reprise"]
    # 96×96 inputs make an epoch ~0.1 s, so the kill lands mid-run
    run = [*reprise, *train_command(killed, train_split, 60, size=96)]
    proc = subprocess.Popen(run, stderr=subprocess.DEVNULL)
    state = Resume(resume_dir(killed / "model.pt"), key="").path
    deadline = time.monotonic() + 120
    while not (state.is_file() and len(load_checkpoint(state)["state"]["history"]) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, "training ended unkilled"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.pt").exists()

    again = subprocess.run(run, capture_output=True, text=True, check=True)
    assert "resumed from epoch" in again.stderr, again.stderr
    subprocess.run(
        [*reprise, *train_command(reference, train_split, 60, size=96)],
        capture_output=True,
        check=True,
    )
    weights = load_checkpoint(killed / "model.pt")["model"]
    assert_same_weights(weights, load_checkpoint(reference / "model.pt")["model"])
    assert read_table(killed / "h.parquet").equals(read_table(reference / "h.parquet"))
    assert not resume_dir(killed / "model.pt").exists()
