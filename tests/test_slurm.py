"""Cluster submission through profiles/slurm-gpu.

Fast: what the slurm profiles turn the rules' resources into (a dry run). System: against a real
single-node SLURM (tests/slurm/cluster.sh, root on Debian), a paper (memorization, tiny) submitted
through the profile equals a local run, and a training job cancelled mid-run resumes from its
checkpoint.
Both need the cluster extra (pip install -e ".[dev,cluster]"); .ci/run installs it.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

from reprise.io import load_checkpoint, read_table
from reprise.resume import resume_dir
from reprise.yamlconf import deep_merge
from tests.conftest import ROOT, run
from tests.tiny_runs import PAPER, TINY, TRAIN_RULE, tiny_config

if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
    pytest.skip('needs the cluster extra: pip install -e ".[dev,cluster]"', allow_module_level=True)

CLUSTER = ROOT / "tests/slurm/cluster.sh"
PROFILES = ("--profile", "profiles/slurm-gpu", "--profile", str(ROOT / "tests/slurm/profile"))
PARTITION = "reprise"  # cluster.sh's partition; not the default, so it must come from the env
GPU_RULES = {f"{PAPER}_{step}" for step in ("train_labels", "complexity", "train_te", "attack_te")}


class Training(NamedTuple):
    """A training rule to interrupt: its name, first output, per-epoch table and log, and a
    config override that makes it run long enough (~0.1 s an epoch) for a cancel to land
    mid-run."""

    rule: str
    output: str
    history: str
    log: str
    slow: dict


LABELS_RUN = "digits/pgd_at-true-seed0"
TRAININGS = [
    Training(
        TRAIN_RULE,
        f"results/smoke/{PAPER}/models/labels/{LABELS_RUN}.pt",
        f"results/smoke/{PAPER}/tables/labels/{LABELS_RUN}.parquet",
        f"results/smoke/{PAPER}/logs/train_labels-{LABELS_RUN.replace('/', '-')}.log",
        deep_merge(TINY, {"random_labels": {"train_size": 64, "train": {"epochs": 60}}}),
    ),
]


def snakemake(project, *args, env=None, check=True):
    return run(["snakemake", *args], cwd=project, env=env, check=check, merge=True)


def job_resources(dry_run: str) -> dict[str, str]:
    """rule -> its 'resources:' line, from a dry run's job listing."""
    found = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", dry_run, re.M)
    return dict(found)


@pytest.mark.parametrize(
    "layers, gpu", [((), "gpu=1, cpus_per_gpu=1"), (("--profile", "profiles/slurm-cpu"), "gpu=0")]
)
def test_profiles_give_training_a_gpu_and_every_job_the_partition(project_copy, layers, gpu):
    env = {**os.environ, "REPRISE_SLURM_PARTITION": "gpu-a100", "REPRISE_SLURM_ACCOUNT": "p1"}
    env.pop("SLURM_CONF", None)
    out = snakemake(
        project_copy, "-n", PAPER, "--profile", "profiles/slurm-gpu", *layers, env=env
    ).stdout
    resources = job_resources(out)
    assert resources, out
    for rule, line in resources.items():
        assert "slurm_partition=gpu-a100, slurm_account=p1" in line, (rule, line)
        assert ("gpu=" in line) == (rule in GPU_RULES), (rule, line)
    assert gpu in resources[TRAIN_RULE]
    assert "slurm_extra" not in out  # the plugin refuses sbatch flags it manages; we set none


# --- against a real SLURM ------------------------------------------------------------------


class Cluster(NamedTuple):
    env: dict  # what reaches the test cluster: SLURM_CONF, the partition
    jobcomp: Path  # SLURM's job-completion log (no accounting daemon here)

    def jobs(self, project: Path) -> list[dict]:
        """Finished jobs that ran in `project`, from the job-completion log."""
        records = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in self.read_jobcomp()]
        return [r for r in records if r.get("WorkDir") == str(project)]

    def read_jobcomp(self) -> list[str]:
        return self.jobcomp.read_text().splitlines() if self.jobcomp.exists() else []

    def queue(self, project: Path) -> list[dict]:
        """Jobs of `project` that squeue still knows (MinJobAge=300 s), with the plugin's
        comment (rule_<rule>) and the GPUs each asked for."""
        fields = ("JobID", "Comment", "tres-per-job", "State", "WorkDir")
        fmt = ",".join(f"{f}:400" for f in fields)
        out = subprocess.run(
            ["squeue", "-h", "-t", "all", "-O", fmt],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = [dict(zip(fields, line.split(), strict=True)) for line in out.splitlines()]
        return [r for r in rows if r["WorkDir"] == str(project)]


def rule_of(job: dict) -> str:
    """The rule of a queued job, from the plugin's comment rule_<rule>[_wildcards_<values>]."""
    return job["Comment"].split("_wildcards_")[0].removeprefix("rule_")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the test cluster runs munged, slurmctld and slurmd as root")
    if not Path("/etc/debian_version").is_file():
        pytest.skip("the test cluster is installed from Debian packages")
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "REPRISE_SLURM_DIR": str(state)}
    subprocess.run(["bash", str(CLUSTER), "start"], env=env, check=True)
    try:
        env |= {"SLURM_CONF": str(state / "slurm.conf"), "REPRISE_SLURM_PARTITION": PARTITION}
        yield Cluster(env, state / "log/jobcomp.txt")
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop"], env=env, check=False)


def twin(project: Path, name: str) -> Path:
    dest = project.parent / name
    shutil.copytree(project, dest, symlinks=True)
    return dest


def same(a, b) -> bool:
    """Equal checkpoint contents: tensors bit for bit, containers item by item."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return a == b


def assert_same_outputs(a: Path, b: Path):
    """Two result folders hold the same checkpoints (same contents) and tables (same rows)."""
    for pattern, read, equal in (("*.pt", load_checkpoint, same), ("*.parquet", read_table, None)):
        names = sorted(f.relative_to(a) for f in a.rglob(pattern))
        assert names == sorted(f.relative_to(b) for f in b.rglob(pattern)), pattern
        for name in names:
            x, y = read(a / name), read(b / name)
            assert same(x, y) if equal else x.equals(y), name


@pytest.mark.system
def test_paper_through_slurm_equals_local_run(slurm, project_copy):
    tiny_config(project_copy)
    local, cluster = project_copy, twin(project_copy, "cluster")
    submitted = subprocess.Popen(
        ["snakemake", PAPER, *PROFILES],
        cwd=cluster,
        env=slurm.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    snakemake(local, PAPER)  # meanwhile, the reference
    log = submitted.communicate(timeout=480)[0]
    assert submitted.returncode == 0, log

    # Every job went through SLURM, in the partition named by the environment.
    jobs = slurm.jobs(cluster)
    rules = ["prepare_dataset"] * 2 + [TRAIN_RULE] * 2 + [f"{PAPER}_figure"] * 5
    rules += [f"{PAPER}_{step}" for step in ("complexity", "train_te", "attack_te", "evaluate")]
    assert len(jobs) == len(rules), log
    assert {(j["JobState"], j["Partition"]) for j in jobs} == {("COMPLETED", PARTITION)}
    gpus = {}  # rule -> the GPU requests of its jobs
    for job in slurm.queue(cluster):
        gpus.setdefault(rule_of(job), []).append(job["tres-per-job"])
    assert sorted(r for r, g in gpus.items() for _ in g) == sorted(rules)
    for rule, requests in gpus.items():
        assert set(requests) == {"gres:gpu:1" if rule in GPU_RULES else "N/A"}, rule

    # The training step saw the GPU SLURM gave it (no CUDA torch here: it says so and runs on
    # the CPU); a CPU step got none.
    logs = cluster / f"results/smoke/{PAPER}/logs"
    train_log = (cluster / TRAININGS[0].log).read_text()
    assert "GPU 0 was allocated" in train_log or "device=cuda" in train_log, train_log
    assert "was allocated" not in (logs / "evaluate.log").read_text()

    # Same outputs as the local run.
    result = Path(f"results/smoke/{PAPER}")
    assert (cluster / result / "metrics.json").read_bytes() == (
        local / result / "metrics.json"
    ).read_bytes()
    assert_same_outputs(cluster / result, local / result)


def wait_for_epochs(last: Path, epochs: int, job: subprocess.Popen, timeout=240):
    deadline = time.monotonic() + timeout
    while True:
        if last.is_file() and load_checkpoint(last)["state"]["epoch"] >= epochs:
            return
        assert job.poll() is None, job.communicate()[0]
        assert time.monotonic() < deadline, f"no epoch {epochs} in {last} after {timeout} s"
        time.sleep(0.1)


@pytest.mark.system
@pytest.mark.parametrize("training", TRAININGS, ids=lambda t: t.rule)
def test_cancelled_training_resumes_from_its_checkpoint(slurm, project_copy, training):
    project = project_copy
    tiny_config(project, training.slow)
    model = project / training.output
    snakemake(project, training.output)  # the uninterrupted reference, locally
    reference = project.parent / "reference"
    reference.mkdir()
    history = project / training.history
    for f in (model, history):
        shutil.move(f, reference / f.name)

    submitted = subprocess.Popen(
        ["snakemake", training.output, *PROFILES],
        cwd=project,
        env=slurm.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_epochs(resume_dir(model) / "state.pt", 3, submitted)
    running = [r for r in slurm.queue(project) if r["State"] == "RUNNING"]
    assert [rule_of(r) for r in running] == [training.rule], running
    cancelled = running[0]["JobID"]
    subprocess.run(["scancel", cancelled], env=slurm.env, check=True)
    log = submitted.communicate(timeout=480)[0]
    assert submitted.returncode == 0, log

    # SLURM cancelled the first job; snakemake's retry resubmitted it and it resumed.
    states = {r["JobID"]: r["State"] for r in slurm.queue(project)}
    assert states.pop(cancelled) == "CANCELLED", states
    assert list(states.values()) == ["COMPLETED"], states
    train_log = (project / training.log).read_text()
    resumed = re.search(r"resumed from \S+ after epoch (\d+)", train_log)
    epochs = training.slow["random_labels"]["train"]["epochs"]
    assert resumed and 3 <= int(resumed[1]) < epochs, train_log
    assert same(load_checkpoint(model), load_checkpoint(reference / model.name))
    assert read_table(history).equals(read_table(reference / history.name))
    assert not resume_dir(model).exists()
    print(json.dumps({"cancelled": cancelled, "resumed_from_epoch": int(resumed[1])}))
