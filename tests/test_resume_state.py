"""Resumable steps: state beside the outputs, resumed bit-identically, never from another run."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from reprise import cli
from reprise.data.digits import prepare
from reprise.errors import CheckpointError
from reprise.io import load_checkpoint, read_table
from reprise.resume import Resume, fingerprint, resume_dir
from tests.test_io import RunsCode
from tests.tiny_runs import train_args


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """The digits' train and test splits, prepared."""
    root = tmp_path_factory.mktemp("digits")
    for split in ("train", "test"):
        prepare(root, split, root / f"{split}.pt")
    return root


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_state_of_another_run_is_ignored(tmp_path, caplog):
    Resume(tmp_path, key="lr=0.5").save({"epoch": 3})
    assert Resume(tmp_path, key="lr=0.5").load() == {"epoch": 3}
    assert Resume(tmp_path, key="lr=0.1").load() is None
    assert "saved for other params, seed or inputs" in caplog.text


@pytest.mark.parametrize(
    "state, message",
    [
        (b"half a checkpoint", "is not a resume state: not a zip or pickle file"),
        (None, "resume state .* was refused"),
    ],
)
def test_untrusted_state_stops_the_step(tmp_path, state, message):
    """One behaviour for resume state that cannot be trusted: stop, name it, say what to
    delete; never start over silently (see reprise.resume)."""
    path = tmp_path / "state.pt"
    if state is None:
        torch.save({"fingerprint": "k", "state": {"x": RunsCode(tmp_path / "ran")}}, path)
    else:
        path.write_bytes(state)
    with pytest.raises(CheckpointError, match=message) as e:
        Resume(tmp_path, key="k").load()
    assert f"delete {tmp_path} to start the step over" in str(e.value)
    assert path.exists() and not (tmp_path / "ran").exists()


def test_fingerprint_follows_params_seed_and_inputs(tmp_path):
    data = tmp_path / "x.pt"
    data.write_bytes(b"1")
    key = fingerprint({"lr": 0.5}, 0, [data])
    assert key == fingerprint({"lr": 0.5}, 0, [data])
    assert key != fingerprint({"lr": 0.1}, 0, [data])
    assert key != fingerprint({"lr": 0.5}, 1, [data])
    data.write_bytes(b"22")  # a rebuilt input
    assert key != fingerprint({"lr": 0.5}, 0, [data])


def test_cli_keeps_state_beside_outputs_and_clears_it_on_success(tmp_path, splits):
    assert resume_dir(tmp_path / "model.pt") == tmp_path / "model.pt.resume"
    assert cli.main(train_args(tmp_path, splits, epochs=2)) == 0
    assert (tmp_path / "model.pt").is_file()
    assert not (tmp_path / "model.pt.resume").exists()


@pytest.mark.slow
def test_killed_step_resumes_when_run_again(tmp_path, splits):
    """A real kill (SIGKILL, as a node loss would) mid-training, then the same command again."""
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    reprise = [sys.executable, "-m", "reprise"]
    run = [*reprise, *train_args(killed, splits, epochs=40)]  # ~0.1 s an epoch
    proc = subprocess.Popen(run, stderr=subprocess.DEVNULL)
    last = resume_dir(killed / "model.pt") / "state.pt"
    deadline = time.monotonic() + 120
    while not (last.is_file() and load_checkpoint(last)["state"]["epoch"] >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, "training ended unkilled"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.pt").exists()

    again = subprocess.run(run, capture_output=True, text=True, check=True)
    assert re.search(r"resumed from \S+ after epoch \d+", again.stderr), again.stderr
    reprise_train = [*reprise, *train_args(reference, splits, epochs=40)]
    subprocess.run(reprise_train, capture_output=True, check=True)
    weights = load_checkpoint(killed / "model.pt")["state_dict"]
    assert_same_weights(weights, load_checkpoint(reference / "model.pt")["state_dict"])
    history = "history.parquet"
    assert read_table(killed / history).equals(read_table(reference / history))
    assert not resume_dir(killed / "model.pt").exists()
