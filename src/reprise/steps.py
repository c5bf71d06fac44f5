"""Step registry: a paper's `steps` module declares each step's named inputs and outputs.

A step is a function (params, inputs, outputs, runtime) -> None that reads the named input
files and writes every named output atomically. The CLI checks the names and the files
before the step runs, so a wrong call fails with one message and touches nothing.

A step declared with `torch=True` gets torch imported before the runtime is set up (seed,
threads, deterministic kernels, device); the others skip the ~2.5 s import unless their
module imports torch itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reprise.errors import ReproError


@dataclass(frozen=True)
class Step:
    fn: Callable
    inputs: tuple[str, ...]  # a name ending in "*" takes a list of files
    outputs: tuple[str, ...]
    help: str
    torch: bool = False

    def bind(self, kind: str, given: dict[str, list[str]]) -> dict[str, Path | list[Path]]:
        declared = self.inputs if kind == "input" else self.outputs
        names = {d.rstrip("*"): d.endswith("*") for d in declared}
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ReproError(
                f"unknown --{kind} {unknown[0]!r}; this step takes --{kind} "
                + ", ".join(f"{n}=PATH" for n in names)
            )
        missing = sorted(set(names) - set(given))
        if missing:
            raise ReproError(f"missing --{kind} {missing[0]}=PATH")
        bound: dict[str, Path | list[Path]] = {}
        for name, many in names.items():
            paths = [Path(p) for p in given[name]]
            if not many and len(paths) != 1:
                raise ReproError(f"--{kind} {name} takes one path, got {len(paths)}")
            bound[name] = paths if many else paths[0]
        if kind == "input":
            for name, p in bound.items():
                for path in p if isinstance(p, list) else [p]:
                    if not path.exists():
                        raise ReproError(f"--input {name}: {path} does not exist")
        return bound


class Steps(dict[str, Step]):
    """`STEPS = Steps()` then `@STEPS.register(inputs=(...), outputs=(...))`."""

    def register(
        self, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = (), torch: bool = False
    ):
        def deco(fn):
            name = fn.__name__.rstrip("_").replace("_", "-")
            doc = (fn.__doc__ or "").strip()
            self[name] = Step(fn, tuple(inputs), tuple(outputs), doc, torch)
            return fn

        return deco
