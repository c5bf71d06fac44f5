"""The step registry: the single contract between a rule and the code it runs.

A paper's `steps` module registers each step with its named inputs and outputs, the config
sections it reads, and whether it uses torch or a GPU:

    @STEPS.register(inputs=("train",), outputs=("model", "history"),
                    sections=("model", "train", "data"), torch=True, gpu=True)
    def train(params, inputs, outputs, rt): ...

The step's name is the function's name (a trailing `_` dropped), the same word on the CLI
(`reprise <paper> train`), in the rule's name (`<paper>_train`) and in its log. A step is a
function (params, inputs, outputs, runtime) -> None that reads the named input files and
writes every named output atomically. Its rule takes params from here (`step_params` in
rules/common.smk) and only wires paths to these names; `contract_errors` (run at every
snakemake start and by tests/test_contract.py) holds every rule to its step's declaration.

A step declared with `torch=True` gets torch imported before the runtime is set up (seed,
threads, deterministic kernels, device); the others skip the ~2.5 s import unless their
module imports torch itself. `gpu=True` marks a training or attack step: its rule declares
`resources: **GPU_STEP`, which the cluster profiles turn into a GPU request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprise.errors import ConfigError, ReproError

PLOT = "plot"  # the pseudo-section of workflow-wide figure options


@dataclass(frozen=True)
class Step:
    fn: Callable
    inputs: tuple[str, ...]  # a name ending in "*" takes a list of files
    outputs: tuple[str, ...]
    sections: tuple[str, ...]  # config sections of the paper's scale section it reads
    help: str
    torch: bool = False
    gpu: bool = False

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(n.rstrip("*") for n in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(n.rstrip("*") for n in self.outputs)

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
    """`STEPS = Steps()` then `@STEPS.register(inputs=..., outputs=..., sections=...)`."""

    def register(
        self,
        inputs: tuple[str, ...] = (),
        outputs: tuple[str, ...] = (),
        sections: tuple[str, ...] = (),
        torch: bool = False,
        gpu: bool = False,
    ):
        def deco(fn):
            name = fn.__name__.rstrip("_")
            doc = (fn.__doc__ or "").strip()
            self[name] = Step(fn, tuple(inputs), tuple(outputs), tuple(sections), doc, torch, gpu)
            return fn

        return deco


def narrow(params: dict, only: Mapping[str, str]) -> dict:
    """Keep, at each dotted path of `only` ({"runs": "bn"} or {"te.datasets": "digits"}), the
    one entry named by the value: one key of a mapping, one item of a list. A rule narrows a
    section to its job's wildcard this way, so editing one run re-runs only its jobs."""
    for path, value in only.items():
        *parents, leaf = path.split(".")
        node = params
        for p in parents:
            node = node[p]
        entries = node[leaf]
        # a wildcard is a string: it names the entry whose str() it is (a seed 1 by "1")
        match = [e for e in entries if str(e) == str(value)]
        if not match:
            raise ConfigError(
                f"{path} has no entry {value!r}; it has {', '.join(map(str, entries))}"
            )
        key = match[0]
        node[leaf] = {key: entries[key]} if isinstance(entries, dict) else [key]
    return params


def one(section: Mapping, key: str) -> Any:
    """The single entry a rule narrowed `section[key]` to: the item of a list, or the
    (name, value) pair of a mapping."""
    entries = section[key]
    if len(entries) != 1:
        raise ConfigError(
            f"this step runs one entry of {key} at a time (the rule narrows it); got {len(entries)}"
        )
    if isinstance(entries, Mapping):
        return next(iter(entries.items()))
    return entries[0]


@dataclass(frozen=True)
class RuleView:
    """What the contract checks of a snakemake rule."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    gpu: bool


def contract_errors(rules: Iterable[RuleView], registries: Mapping[str, Steps]) -> list[str]:
    """Every way a `<paper>_<step>` rule differs from its step's declaration."""
    errors = []
    for rule in rules:
        paper, _, step_name = rule.name.partition("_")
        if paper not in registries or not step_name:
            continue
        step = registries[paper].get(step_name)
        if step is None:
            steps = ", ".join(registries[paper])
            errors.append(f"rule {rule.name}: {paper} has no step {step_name!r} (steps: {steps})")
            continue
        for kind, got, want in (
            ("inputs", rule.inputs, step.input_names),
            ("outputs", rule.outputs, step.output_names),
        ):
            if set(got) != set(want):
                errors.append(
                    f"rule {rule.name}: named {kind} {sorted(got)} differ from step "
                    f"{paper} {step_name}'s {sorted(want)}"
                )
        if rule.gpu != step.gpu:
            need = "declares" if step.gpu else "does not declare"
            errors.append(
                f"rule {rule.name}: step {paper} {step_name} {need} gpu=True, so its rule "
                + ("needs" if step.gpu else "must not have")
                + " resources: **GPU_STEP"
            )
    return errors
