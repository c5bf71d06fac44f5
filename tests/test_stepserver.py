"""The warm step server (reprise.stepserver): a command run through it behaves as the same
command run by itself (outputs, exit status, errors); a signal to the command reaches its
step, and a step whose command is killed dies with it."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reprise import stepserver
from reprise.data.digits import prepare
from tests.conftest import ROOT, run
from tests.tiny_runs import train_args


@pytest.fixture(scope="module")
def server():
    srv = stepserver.Server()
    path = srv.start()
    deadline = time.monotonic() + 120
    while not os.path.exists(path):  # it listens once its imports are done
        assert srv.proc.poll() is None, (srv.dir / "server.log").read_text()
        assert time.monotonic() < deadline, "the step server did not start listening"
        time.sleep(0.1)
    yield srv, path
    srv.stop()
    assert srv.proc.poll() is not None and not srv.dir.exists()


def _env(path=None, **extra):
    env = {k: v for k, v in os.environ.items() if k != stepserver.ENV}
    if path:
        env[stepserver.ENV] = path
    return {**env, **extra}


def reprise(args, path=None):
    return run([sys.executable, "-m", "reprise", *args], ROOT, check=False, env=_env(path))


def _served(srv) -> str:
    return (srv.dir / "server.log").read_text()


def _digits(tmp_path):
    for split in ("train", "test"):
        prepare(tmp_path, split, tmp_path / f"{split}.pt")
    return tmp_path


def test_a_step_in_the_server_writes_what_it_writes_alone(server, tmp_path):
    srv, path = server
    data = _digits(tmp_path)
    alone = reprise(train_args(tmp_path / "alone", data, epochs=2))
    served = reprise(train_args(tmp_path / "served", data, epochs=2), path)
    assert alone.returncode == served.returncode == 0, served.stderr
    assert "memorization train_labels" in _served(srv)
    alone, served = ((tmp_path / run / "model.pt").read_bytes() for run in ("alone", "served"))
    assert alone == served  # checkpoints are byte-stable: the same weights, the same bytes


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_the_server_runs_with_the_malloc_that_keeps_freed_memory(server):
    srv, _ = server
    env = Path(f"/proc/{srv.proc.pid}/environ").read_bytes()  # glibc splits its tunables
    for tunable in stepserver.MALLOC_TUNABLES.split(":"):  # on ':' in place, with NULs
        assert b"\0" + tunable.encode() + b"\0" in env or b"=" + tunable.encode() in env


@pytest.mark.parametrize(
    "args",
    [["validate", "--set", "scale=huge"], ["memorization", "train_labels", "--bogus"]],
)
def test_errors_and_exit_status_are_the_commands_own(server, args):
    srv, path = server
    alone, served = reprise(args), reprise(args, path)
    assert served.returncode == alone.returncode == 2
    assert served.stderr == alone.stderr and served.stdout == alone.stdout
    assert " ".join(args[:2]) in _served(srv)


def _step_of(srv, timeout=60.0) -> int:
    """The pid of the step the server is running now."""
    children = f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = Path(children).read_text().split()
        if pids:
            return int(pids[0])
        time.sleep(0.05)
    raise AssertionError("the server started no step")


def _gone(pid, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_signal_or_kill_of_the_command_ends_its_step(server, tmp_path, signum):
    srv, path = server
    args = train_args(tmp_path / "out", _digits(tmp_path), epochs=100_000)
    command = subprocess.Popen(
        [sys.executable, "-m", "reprise", *args],
        env=_env(path),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        step = _step_of(srv)
        command.send_signal(signum)  # at once: the step may be starting still
        # SIGTERM is passed on (the command exits as its step did: 128 + 15); after a SIGKILL
        # the server sees the command's connection close and kills the step
        assert command.wait(timeout=60) == (143 if signum == signal.SIGTERM else -signum)
        assert _gone(step), f"step {step} still runs after its command got signal {signum}"
        assert not (tmp_path / "out" / "model.pt").exists()
    finally:  # a failure here must not leave the step to the next test
        command.kill()
        with contextlib.suppress(NameError, ProcessLookupError):
            os.killpg(step, signal.SIGKILL)


def test_without_a_server_the_command_runs_itself(tmp_path):
    missing = str(tmp_path / "none.sock")
    done = reprise(["validate"], missing)
    assert done.returncode == 0 and "config OK" in done.stdout


def test_a_slurm_job_does_not_use_the_server(server, monkeypatch):
    """A step in a SLURM allocation must run there, not in a server beside snakemake."""
    _, path = server
    monkeypatch.setenv(stepserver.ENV, path)
    monkeypatch.setenv("SLURM_JOB_ID", "1")
    assert stepserver.run_remote("reprise.cli", ["validate"]) is None
    monkeypatch.delenv("SLURM_JOB_ID")
    assert stepserver.run_remote("reprise.cli", ["validate"]) == 0, _served(server[0])


def test_a_command_of_another_python_environment_runs_itself(server, monkeypatch):
    """With `--sdm conda` a rule's command runs in its own environment, not the server's."""
    srv, path = server
    monkeypatch.setenv(stepserver.ENV, path)
    monkeypatch.setattr(sys, "prefix", "/another/environment")
    assert stepserver.run_remote("reprise.cli", ["validate"]) is None
    assert srv.proc.poll() is None  # and the server goes on


@pytest.mark.parametrize("own_dir", [False, True])
def test_an_idle_server_exits_and_removes_its_socket(tmp_path, own_dir):
    path = tmp_path / "server" / "s.sock"
    path.parent.mkdir()
    done = reprise(
        ["serve", "--socket", str(path), "--idle", "0", *(["--own-dir"] if own_dir else [])]
    )
    assert done.returncode == 0, done.stderr
    assert not path.exists() and path.parent.exists() != own_dir


def test_a_server_whose_starter_dies_while_it_imports_exits():
    """A snakemake that ends before its server has finished importing (a lock error, a
    Ctrl-C at once) leaves no server behind for the idle timeout's 300 s."""
    starter = "from reprise import stepserver; s = stepserver.Server(); s.start(); print(s.dir)"
    own_dir = Path(run([sys.executable, "-c", starter], ROOT, env=_env()).stdout.split()[-1])
    deadline = time.monotonic() + 60  # its imports take a few seconds, then it must go
    while own_dir.exists():  # the server removes its folder as it exits
        assert time.monotonic() < deadline, "the orphaned server is still running"
        time.sleep(0.1)
