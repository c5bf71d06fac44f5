"""A warm step server: torch, pandas and every paper's steps imported once, each step a fork.

A step process spends ~2 s of CPU importing torch, pandas and pyarrow before it works, and the
main job runs ~130 of them. A local Snakemake run (its `onstart`, rules/common.smk) starts
`reprise serve`, which imports all that once and listens on a Unix socket named by
$REPRISE_STEP_SERVER. `reprise ...` and `python -m reprise.speech ...` then hand their
arguments, working directory, environment and standard streams to the server, which forks a
child that runs the program's `main` as the command would have (then the same fast exit), and
relay its exit status.

The command stays the job's process, so Snakemake sees it as before: a signal it gets is
passed to the step's process group, and if the command dies (SIGKILL) the server kills the
step. Without a reachable server (tests, a server still importing, inside a SLURM job, whose
step must run in its own allocation), or from another Python environment than the server's
(a rule's conda environment under `--sdm conda`), the command runs the step itself. The
socket lives in a private (0700) directory: only its owner can start steps through it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ENV = "REPRISE_STEP_SERVER"
PROGRAMS = {"reprise.cli": "reprise", "reprise.speech.__main__": "python -m reprise.speech"}
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_HEADER = struct.Struct("!I")  # the request's length, then the request (JSON)


# --- the command's side ------------------------------------------------------------------


def run_remote(program: str, argv: list[str]) -> int | None:
    """Run `program`'s `main(argv)` (a module: reprise.cli, reprise.speech.__main__) in the
    server's fork; its exit status, or None when no server answers (the caller then runs
    it itself)."""
    path = os.environ.get(ENV)
    if not path or os.environ.get("SLURM_JOB_ID"):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    step: dict = {"pid": None, "pending": []}

    def forward(signum, _frame):
        if step["pid"] is None:  # still starting: passed on as soon as the step has a pid
            step["pending"].append(signum)
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(step["pid"], signum)

    before = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    try:
        with sock, sock.makefile("r") as replies:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            request = json.dumps(
                {
                    "program": program,
                    "argv": argv,
                    "cwd": os.getcwd(),
                    "env": dict(os.environ),
                    "prefix": sys.prefix,  # a rule in another environment (--sdm conda)
                }
            )
            data = _HEADER.pack(len(request.encode())) + request.encode()
            sent = socket.send_fds(sock, [data], [0, 1, 2])
            if sent < len(data):  # (not after a whole send: a refusing server may have closed)
                sock.sendall(data[sent:])
            step["pid"] = _reply(replies, "pid")
            if step["pid"] is None:  # the server runs another Python environment
                return None
            for signum in step["pending"]:
                forward(signum, None)
            code = _reply(replies, "exit")
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        for signum in step["pending"] if step["pid"] is None else ():
            os.kill(os.getpid(), signum)  # refused or failed: the signal is the command's own
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says


def _reply(replies, kind: str) -> int | None:
    line = replies.readline().split()
    if kind == "pid" and line == ["refused"]:
        return None
    if len(line) != 2 or line[0] != kind:
        raise RuntimeError(f"the step server ({os.environ[ENV]}) ended before the step did")
    return int(line[1])


# --- the server ----------------------------------------------------------------------------


def warm() -> None:
    """Import what the steps import, so that a fork starts with it. No torch op runs here:
    a parallel region would start OpenMP threads, which a fork does not carry."""
    import pyarrow.parquet  # noqa: F401
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401  (every optimizer's constructor imports it: ~1 CPU-s)

    import reprise.plots  # noqa: F401  (matplotlib, seaborn)
    from reprise import papers

    for slug in papers.available():
        papers.steps(slug)
    importlib.import_module("reprise.speech.__main__")
    import reprise.speech.train  # noqa: F401
    from reprise.speech import lattice_cpu

    lattice_cpu.warm()  # compiled, or loaded from numba's cache, once for every step


def serve(path: str, idle: float = 300.0, own_dir: bool = False, parent: int | None = None) -> None:
    """Answer step requests on `path` until SIGTERM, or until no step has run for `idle`
    seconds, or the process that started the server (`parent`, by default the one it was
    forked from) has gone and no step is running. With `own_dir` the socket's directory was
    made for this server and goes with it (a snakemake killed outright leaves nothing behind
    in /tmp)."""
    # the starter names itself: one that ended before this line ran was not seen as gone
    parent = os.getppid() if parent is None else parent
    warm()
    stop = False

    def on_term(_signum, _frame):
        nonlocal stop
        stop = True

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = f"{path}.{os.getpid()}.tmp"
    listener.bind(tmp)
    listener.listen(64)
    os.replace(tmp, path)  # clients that connect find a server that is ready
    wake_r, wake_w = socket.socketpair()
    for s in (wake_r, wake_w):
        s.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())  # SIGCHLD and SIGTERM end the select at once
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, on_term)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    steps: dict[int, socket.socket] = {}  # running step's pid -> its command's connection
    last = time.monotonic()
    try:
        while not stop:
            for key, _ in sel.select(timeout=1.0):
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    keep = [listener, wake_r, wake_w, *steps.values()]
                    pid = None
                    with contextlib.suppress(OSError, ValueError):  # a command that gave up
                        pid = _start(conn, keep, sel)
                    if pid is None:
                        conn.close()
                        continue
                    steps[pid] = conn
                    sel.register(conn, selectors.EVENT_READ, pid)
                elif key.fileobj is wake_r:
                    with contextlib.suppress(BlockingIOError):
                        wake_r.recv(4096)
                elif not _alive(key.fileobj):  # the command died before its step ended
                    sel.unregister(key.fileobj)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(key.data, signal.SIGKILL)
            for pid, code in _reaped():
                print(f"step {pid}: exit {code}", file=sys.stderr, flush=True)
                conn = steps.pop(pid, None)
                if conn is not None:
                    with contextlib.suppress(OSError):
                        conn.sendall(f"exit {code}\n".encode())
                    with contextlib.suppress(KeyError, ValueError):
                        sel.unregister(conn)
                    conn.close()
                last = time.monotonic()
            orphaned = os.getppid() != parent
            if not steps and (orphaned or time.monotonic() - last > idle):
                break
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        for pid in steps:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        if own_dir:
            shutil.rmtree(Path(path).parent, ignore_errors=True)


def _alive(conn: socket.socket) -> bool:
    """False once the command's end of the connection has closed (it sends nothing more)."""
    try:
        return bool(conn.recv(1))
    except OSError:
        return False


def _reaped():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, os.waitstatus_to_exitcode(status)


def _start(conn: socket.socket, keep: list, sel) -> int | None:
    """Read one request (its streams come as file descriptors) and fork its step; None when
    the command runs in another Python environment than this server's (it then runs itself)."""
    conn.settimeout(10.0)
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    try:
        if len(fds) != 3 or len(data) < _HEADER.size:
            raise ValueError("a request carries three streams and a length")
        (size,) = _HEADER.unpack_from(data)
        body = data[_HEADER.size :]
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                raise ValueError("the request ended early")
            body += chunk
        request = json.loads(body)
        if request.get("prefix") != sys.prefix:
            conn.sendall(b"refused\n")
            return None
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        # A signal that reached the fork before it reset the server's handlers would be lost
        # (SIGTERM would only set the server's stop flag): blocked until it has.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        try:
            pid = os.fork()
            if pid == 0:
                _child(request, fds, [conn, *keep], sel, mask)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        with contextlib.suppress(OSError):  # as the child does: the group exists either way
            os.setpgid(pid, pid)
    finally:
        for fd in fds:
            os.close(fd)
    conn.settimeout(None)
    with contextlib.suppress(OSError):  # a command gone already: the loop sees it, kills the step
        conn.sendall(f"pid {pid}\n".encode())
    print(
        f"step {pid}: {PROGRAMS.get(request['program'])} {' '.join(request['argv'][:2])}",
        file=sys.stderr,
        flush=True,
    )  # the server's log: which commands it ran
    return pid


def _child(request: dict, fds: list[int], sockets: list, sel, mask) -> None:
    """In the fork: become the command's process (streams, directory, environment, signal
    dispositions) in a process group of its own, run the step, exit. Never returns."""
    code = 1
    try:
        os.setpgid(0, 0)  # the server kills the step and its children as one
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal held back arrives now
        sel.close()
        for s in sockets:
            s.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)  # now 0, 1 and 2
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        program = request["program"]
        if program not in PROGRAMS:
            raise ValueError(f"the step server runs {', '.join(PROGRAMS)}, not {program!r}")
        sys.argv = [PROGRAMS[program], *request["argv"]]
        logging.root.handlers.clear()  # the server's; the program configures its own
        from reprise.runtime import end_process

        try:
            code = importlib.import_module(program).main(request["argv"])
        except SystemExit as e:  # argparse's usage errors (2) and --help (0)
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
        end_process(code)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stderr.flush()
        os._exit(code or 1)


# --- starting and stopping it (the workflow's onstart, onsuccess and onerror) -------------


# glibc's malloc gives large freed blocks (128 KiB up to 32 MiB as it adapts) back to the
# kernel, and the next one faults its pages in again: training frees and reallocates its
# lattices thousands of times. Forks inherit the server's malloc settings, so its steps keep
# what they free: `snakemake flexit` 5.2 -> 2.2 million page faults, 18 -> 11 s of system time.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824"


class Server:
    """A `reprise serve` process in its own private directory, started in the background."""

    def __init__(self):
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        """Start importing in the background; the socket's path. Steps run themselves until
        it listens."""
        self.dir = Path(tempfile.mkdtemp(prefix="reprise-steps-"))  # mode 0700
        path = str(self.dir / "steps.sock")
        # the user's own malloc settings come last and win
        tunables = ":".join(filter(None, (MALLOC_TUNABLES, os.environ.get("GLIBC_TUNABLES"))))
        serve = [sys.executable, "-m", "reprise", "serve", "--socket", path, "--own-dir"]
        with open(self.dir / "server.log", "wb") as log:
            self.proc = subprocess.Popen(
                [*serve, "--parent", str(os.getpid())],
                env=dict(os.environ, GLIBC_TUNABLES=tunables),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # a Ctrl-C reaches the commands, which pass it on
            )
        return path

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
