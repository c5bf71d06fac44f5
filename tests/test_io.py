"""Atomic outputs and untrusted checkpoints."""

import json
import os
import pickle

import pandas as pd
import pytest
import torch

from reprise import io
from reprise.errors import CheckpointError


class RunsCode:
    """A pickle payload that would create a file when unpickled by plain pickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "payload": RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match="refused"):
        io.load_checkpoint(path)
    assert not marker.exists()


def test_payload_really_runs_under_plain_unpickling(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(RunsCode(marker)))
    assert marker.exists()


def test_checkpoint_round_trip(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "epoch": 3, "rng": torch.get_rng_state()}
    io.save_checkpoint(tmp_path / "c.pt", state)
    back = io.load_checkpoint(tmp_path / "c.pt")
    assert back["epoch"] == 3 and torch.equal(back["model"]["w"], state["model"]["w"])


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "c.pt"
    io.save_checkpoint(path, {"w": torch.randn(1000)})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="unreadable"):
        io.load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        io.load_checkpoint(tmp_path / "none.pt")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "file.txt"
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_path_replaces_whole(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    io.write_text(target, "new")
    assert target.read_text() == "new"


def test_json_turns_nan_into_null(tmp_path):
    io.write_json(tmp_path / "m.json", {"a": float("nan"), "b": torch.tensor(0.5), "c": [1, 2]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": None, "b": 0.5, "c": [1, 2]}


def test_table_writes_parquet_and_csv(tmp_path):
    df = pd.DataFrame({"epoch": [1, 2], "loss": [0.5, 0.25]})
    io.write_table(tmp_path / "t.parquet", df)
    pd.testing.assert_frame_equal(io.read_table(tmp_path / "t.parquet"), df)
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == "epoch,loss"
