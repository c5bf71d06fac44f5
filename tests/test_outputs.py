"""Outputs are byte-stable across runs, durable (synced before and after the rename) and
readable by collaborators (the umask's mode, not mkstemp's 0600)."""

import json
import os
import time

import pandas as pd
import pytest

from reprise import cli, io

PLOT = {"formats": ["png", "pdf", "svg"], "dpi": 60, "context": "paper"}


def _figure_step(folder):
    """`reprise memorization figure` (best_final) on a hand-made table, into `folder`."""
    rows = [
        {"dataset": "digits", "run": run, "checkpoint": ck, "natural": 0.9, "pgd20": p, "cw20": p}
        for run in ("pgd_at", "pgd_at_te")
        for ck, p in (("best", 0.5), ("final", 0.4))
    ]
    table = folder / "best_final.parquet"
    io.write_table(table, pd.DataFrame(rows))
    argv = ["memorization", "figure", "--params", json.dumps({"plot": PLOT})]
    argv += ["--input", f"tables={table}"]
    for fmt in PLOT["formats"]:
        argv += ["--output", f"figure={folder}/figures/best_final.{fmt}"]
    assert cli.main(argv) == 0
    return {fmt: (folder / "figures" / f"best_final.{fmt}").read_bytes() for fmt in PLOT["formats"]}


def test_figure_step_is_byte_identical_across_runs(tmp_path):
    first = _figure_step(tmp_path / "a")
    time.sleep(1.1)  # a PDF CreationDate has one-second resolution
    second = _figure_step(tmp_path / "b")
    for fmt in PLOT["formats"]:
        assert first[fmt] == second[fmt], f"{fmt} differs between two identical runs"
    assert b"CreationDate" not in first["pdf"] and b"Software" not in first["png"]


def test_atomic_path_syncs_file_before_rename_and_folder_after(tmp_path, monkeypatch):
    calls = []
    fsync, replace = os.fsync, os.replace

    def record_fsync(fd):
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def record_replace(src, dst):
        calls.append(("replace", str(dst)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", record_fsync)
    monkeypatch.setattr(os, "replace", record_replace)
    out = tmp_path / "sub" / "out.json"
    io.write_json(out, {"a": 1})
    (kind0, tmp), *rest = calls
    assert kind0 == "fsync" and os.path.basename(tmp).startswith(".out.json.")
    assert rest == [("replace", str(out)), ("fsync", str(out.parent))]


def test_a_failed_write_syncs_and_renames_nothing(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fsync", calls.append)
    with pytest.raises(RuntimeError), io.atomic_path(tmp_path / "x") as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert calls == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_umask_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        io.write_text(tmp_path / "t.txt", "x")
        io.write_text(tmp_path / "t.txt", "y")  # replacing keeps the mode too
    finally:
        os.umask(old)
    assert (tmp_path / "t.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_checkpoints_are_byte_identical_across_saves(tmp_path):
    import torch

    state = {"w": torch.arange(6.0).reshape(2, 3), "epoch": 2, "name": "run"}
    io.save_checkpoint(tmp_path / "a.pt", state)
    io.save_checkpoint(tmp_path / "b.pt", state)  # another temporary name, same bytes
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_a_step_removes_temporaries_a_killed_attempt_left(tmp_path):
    stale = tmp_path / "figures" / ".best_final.png.k1ll3d.tmp"  # SIGKILL skips the cleanup
    stale.parent.mkdir()
    stale.write_bytes(b"half")
    _figure_step(tmp_path)
    assert not stale.exists()
