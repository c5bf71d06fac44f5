"""The whole workflow SIGKILLed during a long step resumes to the same metrics.

For each paper with a long loop: `snakemake` builds the paper's metrics at a tiny size in a
project copy, and the whole process group is SIGKILLed at a seeded random moment while a
long step runs (after a seeded number of its saves, plus a seeded fraction of one). Then
`snakemake --unlock` and the same command again must give a metrics.json identical to an
uninterrupted run's (built alongside), leave no truncated output that Snakemake considers
complete, and the long step's log must say where it resumed. A paper joins with one entry
in LONG_LOOPS: its tiny smoke overrides, how many saves its long steps make, and (for a
paper whose long step is a speech zoo model) the tiny zoo's model overrides.

A save is counted as a new version of a step's `<output>.resume/state.pt` (each save
replaces the file atomically), whatever counter the state holds (epochs, rounds, steps,
the online loop's (run, t), B3D's phases): one mechanism for every paper's loop.
"""

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest

from reprise import papers
from reprise.io import load_checkpoint
from reprise.yamlconf import deep_merge, load_yaml
from tests.conftest import ROOT, copy_project, tiny_configfile, use_tiny_speech_zoo
from tests.test_autoda import TINY as AUTODA
from tests.test_b3d import TINY as B3D
from tests.test_flexit import TINY_MODEL
from tests.test_libre import TINY as LIBRE
from tests.test_partseg import TINY as PARTSEG
from tests.test_poisoning import TINY as POISONING
from tests.test_rejection import TINY as REJECTION
from tests.tiny_runs import SMALLEST

FLEXIT_RUNS = load_yaml(ROOT / "config/papers/flexit.yaml")["smoke"]["runs"]


class Loop(NamedTuple):
    smoke: dict  # the paper's tiny smoke overrides
    saves: int  # the saves its long step makes (epochs, rounds, steps, online steps, ...)
    speech: dict | None = None  # for a zoo model's loop: its tiny zoo's model overrides


MEM_LOOPS = ("random_labels", "te")  # memorization's sections with a training loop
# The first step whose saves reach the seeded count is the one killed; the comments name it
# (the other steps save fewer times at these sizes).
LONG_LOOPS = {
    "memorization": Loop(deep_merge(SMALLEST, {s: {"train": {"epochs": 4}} for s in MEM_LOOPS}), 4),
    "rejection": Loop(deep_merge(REJECTION, {"runs": ["pgd_at_rr"], "train": {"epochs": 3}}), 3),
    # the online and federated poisoning loops: 1 + 3 + 3 saves over the runs of one loop at
    # two steps (rounds); five such loops, whichever runs first is killed
    "poisoning": Loop(POISONING, 7),
    # NES reverse-engineering (B3D), a save every 25 of its 100 steps; training: 1 epoch
    "b3d": Loop(
        deep_merge(B3D, {"train": {"epochs": 1}, "methods": {"b3d": {"reverse": {"steps": 100}}}}),
        4,
    ),
    # the program search: 6 rounds of 2000 programs (killed after the 5th save: the models'
    # training makes 4, and the search model needs them to give starting points)
    "autoda": Loop(deep_merge(AUTODA, {"search": {"batch": 2000, "max_programs": 12000}}), 6),
    # training: 8 steps, a save every 2
    "partseg": Loop(deep_merge(PARTSEG, {"train": {"steps": 8}}), 4),
    # fine-tuning: 3 epochs
    "libre": Loop(deep_merge(LIBRE, {"finetune": {"epochs": 3}}), 3),
    # the speech zoo's training (`python -m reprise.speech train`): every run decodes zoo
    # model base (the only one trained), 3 epochs
    "flexit": Loop(
        {"runs": {run: {"model": "base"} for run in FLEXIT_RUNS}, "evaluation": {"bootstrap": 200}},
        3,
        {"base": {"train": {"epochs": 3}}},
    ),
}
TRIALS = (0,)  # seeds of the kill moment; one trial per paper keeps the test within budget


def _copy(dest: Path, paper: str, loop: Loop) -> list[str]:
    """A project copy with only `paper` enabled; returns the snakemake command for its
    metrics (one core: the uninterrupted twin runs alongside on the other)."""
    tiny = tiny_configfile(copy_project(dest), paper, loop.smoke)
    if loop.speech is not None:
        use_tiny_speech_zoo(dest, TINY_MODEL, loop.speech)
    snakemake = [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(tiny)]
    return [*snakemake, "--", f"results/smoke/{paper}/metrics.json"]


def _start(cmd, cwd):
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: snakemake and every job it runs
    )


def _finish(proc, what):
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{what} failed:\n{out[-3000:]}"


def _version(state: Path) -> tuple[int, int] | None:
    """Which save `state` holds now (a save replaces the file: a new inode and mtime)."""
    try:
        s = state.stat()
    except FileNotFoundError:  # not there yet, or being replaced
        return None
    return s.st_ino, s.st_mtime_ns


def _kill_during_long_step(proc, results: Path, saves: int, rng: random.Random) -> Path:
    """SIGKILL the process group once a long step has made a seeded number (2..saves-1) of
    its saves, a seeded fraction of a save's interval later; return that step's resume state.
    A step whose saves went by too fast to see is passed over for the next one."""
    target, fraction = rng.randint(2, saves - 1), rng.uniform(0.0, 0.5)
    deadline = time.monotonic() + 500
    seen: dict[Path, dict[tuple, float]] = {}  # state -> each version seen -> when
    while True:
        assert proc.poll() is None, "snakemake ended before a long step was seen mid-loop"
        assert time.monotonic() < deadline, "no long step was seen mid-loop in time"
        for state in results.rglob("*.resume/state.pt"):
            version = _version(state)
            if version is None:
                continue
            times = seen.setdefault(state, {})
            times.setdefault(version, time.monotonic())
            count = len(times)
            if target <= count < saves:
                first, last = min(times.values()), times[version]
                time.sleep(fraction * (last - first) / (count - 1))
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                print(f"killed after {count} saves of {state} (-s shows this)")
                return state
        time.sleep(0.01)


def _without(metrics: Path, timed: set[str]) -> str:
    """metrics.json as written, less the lines of its timed metrics (one key a line)."""
    lines = metrics.read_text().splitlines()
    return "\n".join(x for x in lines if x.strip().split(":")[0].strip('"') not in timed)


def _incomplete(project: Path) -> set[Path]:
    marks = project / ".snakemake" / "incomplete"
    names = [p.name for p in marks.iterdir()] if marks.is_dir() else []
    return {project / base64.b64decode(n.replace("_", "/")).decode() for n in names}


def _readable(path: Path) -> None:
    """Raises if `path` (an output Snakemake considers complete) is cut off."""
    suffix = path.suffix
    if suffix == ".json":
        json.loads(path.read_text())
    elif suffix == ".parquet":
        pd.read_parquet(path)
    elif suffix == ".csv":
        pd.read_csv(path)
    elif suffix == ".pt":
        load_checkpoint(path)
    assert path.stat().st_size > 0, path


@pytest.mark.slow
@pytest.mark.parametrize("seed", TRIALS)
@pytest.mark.parametrize("paper", sorted(LONG_LOOPS))
def test_workflow_killed_during_a_long_step_resumes_to_identical_metrics(tmp_path, paper, seed):
    loop = LONG_LOOPS[paper]
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    whole_cmd, cmd = _copy(whole_dir, paper, loop), _copy(killed_dir, paper, loop)
    whole = _start(whole_cmd, whole_dir)  # the uninterrupted run, alongside

    results = killed_dir / "results" / "smoke"  # the paper's and the shared (speech) steps'
    state = _kill_during_long_step(
        _start(cmd, killed_dir), results, loop.saves, random.Random(seed)
    )
    assert state.exists(), "the kill did not land during the long step"
    incomplete = _incomplete(killed_dir)
    for path in results.rglob("*"):
        skip = ".resume" in str(path) or path.suffix == ".log" or path.name.startswith(".")
        if path.is_file() and not skip and path not in incomplete:
            _readable(path)

    unlock = _start([*cmd[:-2], "--unlock"], killed_dir)
    _finish(unlock, "snakemake --unlock")
    _finish(_start(cmd, killed_dir), "the re-run after the kill")
    _finish(whole, "the uninterrupted run")

    metrics = f"results/smoke/{paper}/metrics.json"
    killed, whole = (json.loads((d / metrics).read_text()) for d in (killed_dir, whole_dir))
    timed = papers.timed_metrics(paper)  # wall-clock measures: measured in both, not equal
    assert {k for k in timed if killed[k] is None} == {k for k in timed if whole[k] is None}
    assert _without(killed_dir / metrics, timed) == _without(whole_dir / metrics, timed)
    resumed = f"resumed from {state.relative_to(killed_dir)}"
    logs = [p.read_text() for p in results.rglob("logs/**/*.log")]
    assert any(resumed in text for text in logs), f"no step log says {resumed!r}"
    assert not state.parent.exists(), "the resume state outlived its step"
