"""The smoke-time benchmark's log parsing and critical path, on a hand-built run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "bench_smoke", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_smoke.py"
)
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

# step -> (wall seconds, inputs made by other steps); a diamond a -> (b | c) -> d, plus e
STEPS = {"a": (5.0, []), "b": (2.0, ["a"]), "c": (7.0, ["a"]), "d": (1.0, ["b", "c"]),
         "e": (9.0, [])}  # fmt: skip


def _write_run(root: Path) -> str:
    head = ["output_file", "date", "rule", "log-file(s)", "input-file(s)", "shellcmd"]
    lines = ["\t".join(head)]
    for i, (name, (wall, before)) in enumerate(STEPS.items()):
        log = root / "results/smoke/p/logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        stamp = "2026-12-07 10:00:{:02d},000 INFO reprise: p"
        log.write_text(
            f"{stamp.format(i)} {name}: params={{}}\n"
            f"{stamp.format(i + 1)} {name} done in {wall} s (cpu 1.0 s)\n"
        )
        inputs = ",".join(f"results/smoke/p/{b}.out" for b in before) or "-"
        rel = f"results/smoke/p/logs/{name}.log"
        lines.append("\t".join([f"results/smoke/p/{name}.out", "x", name, rel, inputs, "cmd"]))
    return "\n".join(lines) + "\n"


def test_critical_path_is_the_longest_chain_of_dependent_steps(tmp_path):
    summary = _write_run(tmp_path)
    rows = bench.steps(tmp_path / "results" / "smoke")
    assert sorted(r["step"] for r in rows) == sorted(STEPS)
    length, chain = bench.critical_path(rows, summary)
    assert length == pytest.approx(13.0)  # a 5 + c 7 + d 1 beats e 9 and a-b-d 8
    assert chain == ["p/a", "p/c", "p/d"]
