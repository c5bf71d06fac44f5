"""The smoke-time table: run the main job from clean and say where its time goes.

    python benchmarks/bench_smoke.py               # a fresh copy of the project, from clean
    python benchmarks/bench_smoke.py --results results/smoke   # analyse an existing run only
    python benchmarks/bench_smoke.py --keep /tmp/run   # keep the copy (to time no-ops later)
    python benchmarks/bench_smoke.py --no-step-server  # each step a process of its own

From the step logs (each starts with a time stamp and ends with "done in W s (cpu C s)") it
reports, per paper: its wall time (first step start to last step end), the CPU time of its
steps, the number of steps, and each step's share of the paper's CPU time; then the main
job's total wall time, its critical path (the longest chain of dependent steps, from
`snakemake --detailed-summary`: the wall time no number of cores could beat; data jobs log
no step timing and count 0 s, and are named) and the median of three no-op `snakemake` runs.
Numbers from a shared machine are noisy: quote them with the load (`uptime`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ("Snakefile", "rules", "src", "workflow", "config", "profiles", "pyproject.toml",
        "environment.yml", "dvc.yaml")  # fmt: skip
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
DONE = re.compile(r"(\S+) (\S+) done in ([0-9.]+) s \(cpu ([0-9.]+) s\)$")


def stamp(line: str) -> float | None:
    m = STAMP.match(line)
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if m else None


def steps(results: Path) -> list[dict]:
    """One row per finished step: paper, step, start, end, wall and CPU seconds."""
    rows = []
    for log in sorted(results.glob("*/logs/*.log")):
        lines = log.read_text(errors="replace").splitlines()
        starts = [t for t in map(stamp, lines[:3]) if t is not None]
        for line in reversed(lines[-3:]):
            m = DONE.search(line)
            if m and starts:
                end = stamp(line) or starts[0] + float(m.group(3))
                rows.append(
                    {
                        "paper": m.group(1),
                        "step": m.group(2),
                        "start": starts[0],
                        "end": end,
                        "wall": float(m.group(3)),
                        "log": str(log),
                        "cpu": float(m.group(4)),
                    }
                )
                break
    return rows


def table(rows: list[dict]) -> str:
    by_paper = defaultdict(list)
    for r in rows:
        by_paper[r["paper"]].append(r)
    out = [
        "| paper | wall (s) | CPU (s) | steps | largest steps (share of CPU) |",
        "|---|---|---|---|---|",
    ]
    for paper, rs in sorted(by_paper.items()):
        wall = max(r["end"] for r in rs) - min(r["start"] for r in rs)
        cpu = sum(r["cpu"] for r in rs)
        per_step = defaultdict(float)
        for r in rs:
            per_step[r["step"]] += r["cpu"]
        top = sorted(per_step.items(), key=lambda kv: -kv[1])[:3]
        shares = ", ".join(f"{s} {100 * c / cpu:.0f}%" for s, c in top) if cpu else ""
        out.append(f"| {paper} | {wall:.0f} | {cpu:.0f} | {len(rs)} | {shares} |")
    return "\n".join(out)


def _key(log: str) -> str:
    """A step's name from its log's path: paper/logs/step.log -> paper/step."""
    parts = Path(log).parts
    return f"{parts[-3]}/{Path(parts[-1]).stem}"


def critical_path(rows: list[dict], summary: str) -> tuple[float, list[str]]:
    """The longest chain of dependent steps (by their wall times) and its steps, from the
    tab-separated `snakemake --detailed-summary` (output, date, rule, log, inputs, ...)."""
    lines = [ln.split("\t") for ln in summary.splitlines()]
    head = lines[0]
    col = {name: head.index(name) for name in ("output_file", "log-file(s)", "input-file(s)")}
    wall = {_key(r["log"]): r["wall"] for r in rows}
    job_of, inputs = {}, defaultdict(set)  # output -> its job (its log); job -> inputs
    for ln in lines[1:]:
        logs = [x for x in ln[col["log-file(s)"]].split(",") if x and x != "-"]
        if not logs:
            continue
        job = _key(logs[0])
        job_of[ln[col["output_file"]]] = job
        inputs[job] |= {x for x in ln[col["input-file(s)"]].split(",") if x and x != "-"}
    memo: dict[str, tuple[float, list[str]]] = {}

    def longest(job: str) -> tuple[float, list[str]]:
        if job not in memo:
            before = [longest(job_of[i]) for i in inputs[job] if i in job_of]
            best = max(before, default=(0.0, []))
            memo[job] = (best[0] + wall.get(job, 0.0), [*best[1], job])
        return memo[job]

    return max((longest(j) for j in inputs), default=(0.0, []))


def snakemake(project: Path, *args: str) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=project,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="analyse this results/<scale> folder only")
    parser.add_argument("--keep", type=Path, help="make the copy here (a new folder) and keep it")
    parser.add_argument(
        "--no-step-server",
        action="store_true",
        help="every step in a process of its own (snakemake --no-hooks): what the server saves",
    )
    args = parser.parse_args()
    if args.results:
        print(table(steps(args.results)))
        return 0
    if args.keep and args.keep.exists():
        parser.error(f"--keep {args.keep}: exists; name a new folder")
    with tempfile.TemporaryDirectory() as tmp:
        project = args.keep or Path(tmp) / "project"
        project.mkdir(parents=True)
        for name in COPY:
            src = ROOT / name
            if src.is_symlink():
                os.symlink(os.readlink(src), project / name)
            elif src.is_dir():
                shutil.copytree(src, project / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, project / name)
        total = snakemake(project, *(["--no-hooks"] if args.no_step_server else []))
        noop = statistics.median(snakemake(project) for _ in range(3))
        rows = steps(project / "results" / "smoke")
        summary = subprocess.run(
            [sys.executable, "-m", "snakemake", "--detailed-summary"],
            cwd=project, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        length, chain = critical_path(rows, summary)
        print(table(rows))
        print(f"\nmain job from clean: {total:.0f} s wall")
        timed = {_key(r["log"]) for r in rows}
        untimed = [j for j in chain if j not in timed]
        print(f"critical path: {length:.0f} s of steps ({' -> '.join(chain)})")
        if untimed:  # data jobs log no "done in" line: their time is not in the sum
            print(f"  not counted (no step timing in their logs): {', '.join(untimed)}")
        print(f"no-op snakemake: {noop:.2f} s (median of 3)")
        print(f"load when done: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
