"""Shared fixtures: tests run from the project root, with tiny configs in temp dirs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = (
    "Snakefile",
    "rules",
    "src",
    "workflow",
    "config",
    "profiles",
    "dvc.yaml",
    ".dvc",
    ".dvcignore",
    ".gitignore",
    "environment.yml",
    "pyproject.toml",
)


IGNORE = shutil.ignore_patterns("cache", "tmp", "config.local", "__pycache__", "*.egg-info")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """In-process torch work on one thread: on a shared 2-core machine two OpenMP threads
    measured up to 30x slower than one for the tiny test models (barrier waits)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _project_cwd(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture
def project_copy(tmp_path):
    """A copy of the workflow files (not results or data) to run Snakemake/DVC in."""
    return copy_project(tmp_path / "project")


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_symlink():
            os.symlink(os.readlink(src), dest / name)
        elif src.is_dir():
            shutil.copytree(src, dest / name, ignore=IGNORE)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def run(cmd, cwd, check=True, merge=False, **kw):
    """Run a command, returning the CompletedProcess; show its output when it fails.
    merge=True folds stderr into stdout (snakemake logs to both)."""
    err = subprocess.STDOUT if merge else subprocess.PIPE
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def build_tiny_paper(project: Path, paper: str, smoke: dict) -> Path:
    """`snakemake <paper> report` in a project copy with only `paper` enabled and `smoke`
    merged over its smoke config; returns the paper's results folder."""
    tiny = tiny_configfile(project, paper, smoke)
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(tiny)]
    p = subprocess.run(
        [*cmd, "--", paper, "report"], cwd=project, env=env, capture_output=True, text=True
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return project / "results" / "smoke" / paper


def use_tiny_speech_zoo(project: Path, model: dict, models: dict | None = None) -> None:
    """Make the project copy's speech zoo tiny: a 20-utterance corpus, and every zoo model
    (its own overrides kept, then `models`' merged in) built from `model` ({"model": ...})
    trained for one epoch."""
    from reprise.yamlconf import deep_merge

    path = project / "config" / "speech.yaml"
    speech = yaml.safe_load(path.read_text())
    speech["smoke"] = {
        "seed": 0,
        "sizes": {"train": {"command": 4, "dictation": 2}, "test": {"command": 3, "dictation": 2}},
        "synth": {"dictation_words": [10, 11]},
        "recipe": {
            "model": {k: v for k, v in model["model"].items() if k != "domain_vector"},
            "train": {"epochs": 1, "batch_size": 2},
        },
        "models": deep_merge(speech["smoke"]["models"], models or {}),
    }
    path.write_text(yaml.safe_dump(speech))


def refuses_bad_smoke(project: Path, paper: str, smoke: dict, says: str) -> None:
    """`snakemake -n <paper>` with `smoke` merged over the paper's smoke section stops with
    one clear line containing `says` (no traceback)."""
    tiny = project / "bad.yaml"
    tiny.write_text(yaml.safe_dump({"papers": [paper], "overrides": {paper: {"smoke": smoke}}}))
    p = run(
        ["snakemake", "-n", "--configfile", str(tiny), "--", paper],
        project,
        check=False,
        merge=True,
    )
    assert p.returncode != 0
    assert says in p.stdout, p.stdout[-2000:]
    assert "Traceback" not in p.stdout


def tiny_configfile(project: Path, paper: str, smoke: dict) -> Path:
    """A configfile enabling only `paper`, with `smoke` merged over its smoke section
    (--configfile keeps the numbers' types, unlike --config)."""
    tiny = project / "tiny.yaml"
    tiny.write_text(yaml.safe_dump({"papers": [paper], "overrides": {paper: {"smoke": smoke}}}))
    return tiny
