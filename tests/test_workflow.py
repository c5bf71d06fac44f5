"""The Snakemake workflow: plans at both scales, runs end to end, re-runs only what changed,
and DVC restores data and models in a fresh clone without retraining."""

import json
import os
import re
import time

import pytest

from tests.conftest import run
from tests.tiny_runs import PAPER, TRAIN_RULE, tiny_config


def jobs(stdout: str) -> dict[str, int]:
    """Job counts from snakemake's 'Job stats' table."""
    table = stdout.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def files(folder) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes)."""
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def snakemake(project, *args, check=True):
    return run(["snakemake", "--cores", "2", *args], cwd=project, check=check, merge=True)


@pytest.mark.parametrize("scale", ["smoke", "paper"])
def test_dag_plans_at_both_scales(project_copy, scale):
    p = snakemake(project_copy, "-n", "--config", f"scale={scale}")
    assert "report" in jobs(p.stdout)


def test_bad_config_stops_before_any_job(project_copy):
    p = snakemake(project_copy, "-n", "--config", "scale=huge", check=False)
    assert p.returncode != 0
    assert "scale = \"huge\" is not allowed; expected one of 'smoke', 'paper'" in p.stdout
    assert "Job stats" not in p.stdout


@pytest.mark.slow
def test_pipeline_runs_then_noop_then_only_figures_rerun(project_copy):
    tiny_config(project_copy)
    snakemake(project_copy)
    report = (project_copy / "results/smoke/REPORT.md").read_text()
    assert f"| [{PAPER}](#{PAPER}) |" in report  # its row of the summary table
    assert (project_copy / "results/smoke/claims.parquet").is_file()

    t0 = time.perf_counter()
    p = snakemake(project_copy)
    assert "Nothing to be done" in p.stdout, p.stdout
    print(f"no-op snakemake: {time.perf_counter() - t0:.2f} s")

    tiny_config(project_copy, plot={"dpi": 90})
    p = snakemake(project_copy)
    ran = set(jobs(p.stdout))
    assert ran and all(r.endswith("_figure") or r in ("all", PAPER) for r in ran), ran


def only_paper_stages(project, paper: str) -> None:
    """The project copy's dvc.yaml with the data stage and `paper`'s stage only: `dvc repro`
    runs every stage of dvc.yaml whatever config.yaml enables, and the other papers' stages
    (the speech zoo included) would build them all at smoke scale."""
    import yaml

    path = project / "dvc.yaml"
    dvc = yaml.safe_load(path.read_text())
    foreach = dvc["stages"]["paper"]["foreach"]
    dvc["stages"]["paper"]["foreach"] = {paper: foreach[paper]}
    dvc["stages"] = {k: v for k, v in dvc["stages"].items() if k in ("data", "paper")}
    path.write_text(yaml.safe_dump(dvc, sort_keys=False))


@pytest.mark.slow
def test_dvc_round_trip_restores_without_retraining(project_copy, tmp_path):
    remote = tmp_path / "remote"
    tiny_config(project_copy)
    only_paper_stages(project_copy, PAPER)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run(["git", "init", "-q"], cwd=project_copy)
    run(["dvc", "remote", "add", "-f", "-d", "--local", "ci", str(remote)], cwd=project_copy)
    run([*git, "add", "-A"], cwd=project_copy)
    run([*git, "commit", "-qm", "project"], cwd=project_copy)
    run(["dvc", "repro"], cwd=project_copy)
    run(["dvc", "push"], cwd=project_copy)
    run([*git, "add", "dvc.lock"], cwd=project_copy)
    run([*git, "commit", "-qm", "lock"], cwd=project_copy)
    trained = files(project_copy / f"results/smoke/{PAPER}/models")
    metrics = json.loads((project_copy / f"results/smoke/{PAPER}/metrics.json").read_text())

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project_copy), str(clone)], cwd=tmp_path)
    run(["dvc", "remote", "add", "-f", "-d", "--local", "ci", str(remote)], cwd=clone)
    run(["dvc", "pull"], cwd=clone)
    restored = clone / f"results/smoke/{PAPER}/models"
    assert files(restored) == trained
    # DVC's checkout order is arbitrary: make the worst case explicit (models older than data)
    past = time.time() - 3600
    for f in restored.rglob("*"):
        os.utime(f, (past, past))
    assert TRAIN_RULE in jobs(snakemake(clone, "-n").stdout)  # plain snakemake would retrain

    snakemake(clone, "--touch")
    p = snakemake(clone)
    assert TRAIN_RULE not in jobs(p.stdout), p.stdout
    assert files(restored) == trained
    assert json.loads((clone / f"results/smoke/{PAPER}/metrics.json").read_text()) == metrics
