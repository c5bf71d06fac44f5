"""Load and validate the workflow config and the per-paper configs.

The Snakefile and the CLI both go through `resolve`, so a bad value gives the same single
message (key, value, what is allowed) before any job runs, whichever entry point read it.
This module is part of the base: it knows no paper. The caller passes the implemented papers
(`reprise.papers.available()`), and `reprise.claims.check_claims` checks that each claim reads
a metric its paper declares.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from reprise.errors import ConfigError
from reprise.yamlconf import deep_merge, load_yaml

SCHEMA_DIR = Path("workflow/schemas")
SCALES = ("smoke", "paper")


def schema(name: str, project_dir: Path = Path(".")) -> dict:
    return load_yaml(project_dir / SCHEMA_DIR / name)


def registry(project_dir: Path = Path(".")):
    """The top-level schemas by file name, so a paper schema can say
    `$ref: "core.schema.yaml#/$defs/train"` (shared fragments, no copies)."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    return Registry().with_resources(
        (p.name, Resource.from_contents(load_yaml(p), default_specification=DRAFT202012))
        for p in sorted((project_dir / SCHEMA_DIR).glob("*.schema.yaml"))
    )


def _allowed(err: jsonschema.ValidationError) -> str:
    s, v = err.schema, err.validator
    if v == "enum":
        return "one of " + ", ".join(map(repr, s["enum"]))
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        bounds = [f"{op[k]} {s[k]}" for k in op if k in s]
        return f"{s.get('type', 'number')} " + " and ".join(bounds)
    if v == "type":
        return f"a value of type {s['type']}"
    if v == "additionalProperties":
        return "only the keys " + ", ".join(sorted(s.get("properties", {})))
    if v == "required":
        return "the keys " + ", ".join(s["required"])
    if v in ("minItems", "maxItems", "uniqueItems", "minLength", "pattern", "minProperties"):
        return f"a value with {v} {s[v]!r}"
    if v == "not" and "description" in s:  # a key a schema rules out says why
        return s["description"]
    return err.message


def check(
    instance: Any, schema_: dict, where: str, project_dir: Path = Path("."), prefix: str = ""
) -> None:
    """Validate `instance`; raise one ConfigError naming the key (under `prefix`, e.g. the
    scale section), the value and what is allowed."""
    validator = jsonschema.Draft202012Validator(schema_, registry=registry(project_dir))
    err = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if err is None:
        return
    path = [prefix] if prefix else []
    key = ".".join([*path, *map(str, err.absolute_path)]) or "(top level)"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        key = ".".join([*path, *map(str, err.absolute_path), extra[0]]) if extra else key
        raise ConfigError(f"{where}: unknown key {key!r}; allowed here: {_allowed(err)}")
    if err.validator == "required":
        raise ConfigError(f"{where}: {err.message} (at {key})")
    value = json.dumps(err.instance) if not isinstance(err.instance, dict) else "{...}"
    raise ConfigError(f"{where}: {key} = {value} is not allowed; expected {_allowed(err)}")


def check_names(section: dict, schema_: dict, where: str, prefix: str) -> None:
    """Names that must be keys of another part of the same scale section: a schema property
    with `x-keys-of: <dotted path from the section>` (and `x-also: [extra names]`) holds a
    name or a list of names, each a key there (a run naming a missing model, a detector
    naming a missing method). One ConfigError naming the key, the value and the names."""

    def walk(node, sub: dict, path: list[str]) -> None:
        if "x-keys-of" in sub:
            target: Any = section
            for part in sub["x-keys-of"].split("."):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            allowed = [*target, *sub.get("x-also", [])]
            items = node if isinstance(node, list) else [node]
            for i, name in enumerate(items):
                if name not in allowed:
                    key = ".".join([prefix, *path, *([str(i)] if isinstance(node, list) else [])])
                    raise ConfigError(
                        f"{where}: {key} = {json.dumps(name)} is not allowed; expected a key "
                        f"of {prefix}.{sub['x-keys-of']}: {', '.join(map(str, allowed))}"
                    )
        if isinstance(node, dict):
            for key, child in sub.get("properties", {}).items():
                if key in node:
                    walk(node[key], child, [*path, key])

    walk(section, schema_, [])


def fill_defaults(instance: dict, schema_: dict) -> dict:
    """Fill `default` values of object properties, recursively (as snakemake's validate does)."""
    for key, sub in schema_.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), dict) and sub.get("type") == "object":
            fill_defaults(instance[key], sub)
    return instance


@dataclass(frozen=True)
class Config:
    """The validated workflow config plus every implemented paper's config."""

    main: dict
    papers: dict[str, dict]

    @property
    def scale(self) -> str:
        return self.main["scale"]

    @property
    def enabled(self) -> list[str]:
        return list(self.main["papers"])

    def paper(self, slug: str) -> dict:
        if slug not in self.papers:
            raise ConfigError(
                f"unknown paper {slug!r}: configured papers are {sorted(self.papers)}"
            )
        return self.papers[slug]

    def scale_section(self, slug: str, scale: str | None = None) -> dict:
        return self.paper(slug)[scale or self.scale]


def check_paper(
    slug: str, cfg: dict, project_dir: Path = Path("."), where: str | None = None
) -> None:
    """Validate a paper config: its shape, and each scale section against the paper's schema.
    `where` names the file in messages (default config/papers/<slug>.yaml)."""
    where = where or f"config/papers/{slug}.yaml"
    check(cfg, schema("paper.schema.yaml", project_dir), where)
    scale_schema = schema(f"papers/{slug}.schema.yaml", project_dir)
    for scale in SCALES:
        check(cfg[scale], scale_schema, where, project_dir, prefix=scale)
        check_names(cfg[scale], scale_schema, where, scale)
    ids = [c["id"] for c in cfg["claims"]]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}: claim ids must be unique, got {ids}")


def override_origins(sources: Sequence[tuple[str, dict]]) -> dict[str, str]:
    """Paper -> the last config source (a file, `--set`, ...) that sets `overrides.<paper>`,
    from the sources in the order they were merged, so a bad override names its file."""
    origins: dict[str, str] = {}
    for name, raw in sources:
        overrides = (raw or {}).get("overrides") if isinstance(raw, dict) else None
        for slug in overrides if isinstance(overrides, dict) else ():
            origins[slug] = name
    return origins


def _merged(slug: str, path: Path, override: dict, origin: str, project_dir: Path) -> dict:
    """The paper file merged with its override, validated; a bad value names the override's
    source when the file alone passes (or fails differently)."""
    own = load_yaml(path) or {}
    if not isinstance(own, dict):
        raise ConfigError(f"{path}: expected a mapping of title, smoke, paper and claims")
    cfg = deep_merge(own, override)
    try:
        check_paper(slug, cfg, project_dir, str(path))
    except ConfigError as merged:
        if not override:
            raise
        try:
            check_paper(slug, own, project_dir, str(path))
        except ConfigError as alone:
            if str(alone) == str(merged):
                raise merged from None
        message = str(merged).removeprefix(f"{path}: ")
        raise ConfigError(f"{origin} (overrides.{slug}) over {path}: {message}") from None
    return cfg


def resolve(
    raw: dict,
    implemented: Sequence[str],
    project_dir: str | Path = ".",
    origins: dict[str, str] | None = None,
) -> Config:
    """Validate the workflow config (filling defaults) and load the config of every
    implemented paper (`reprise.papers.available()`). `origins` names where each paper's
    `overrides` came from (`override_origins`), for the messages."""
    project_dir = Path(project_dir)
    listed = raw.get("papers") if isinstance(raw, dict) else None
    for slug in listed if isinstance(listed, list) else ():
        if isinstance(slug, str) and slug not in implemented:  # before the schema's list
            raise ConfigError(
                f"config: papers contains {slug!r}, which is not implemented in this checkout; "
                f"implemented: {', '.join(implemented)}"
            )
    main = fill_defaults(copy.deepcopy(raw), schema("config.schema.yaml", project_dir))
    check(main, schema("config.schema.yaml", project_dir), "config")
    unknown = set(main["overrides"]) - set(implemented)
    if unknown:
        raise ConfigError(
            f"config: overrides names unknown paper(s) {sorted(unknown)}; "
            f"implemented: {', '.join(implemented)}"
        )
    paper_cfgs = {}
    for slug in implemented:
        path = project_dir / main["paper_config_dir"] / f"{slug}.yaml"
        override = main["overrides"].get(slug, {})
        origin = (origins or {}).get(slug, "the workflow config")
        paper_cfgs[slug] = _merged(slug, path, override, origin, project_dir)
    return Config(main=main, papers=paper_cfgs)


def check_step_params(
    slug: str, params: dict, sections: Sequence[str], project_dir: Path = Path(".")
) -> None:
    """Validate the config sections a rule hands to one step: exactly the sections the step
    declares (those the paper's schema requires must be there), each against its schema."""
    scale_schema = schema(f"papers/{slug}.schema.yaml", project_dir)
    reads = ", ".join(sections) or "no section"
    for name in params:
        if name not in sections:
            raise ConfigError(f"--params: this step does not read {name!r}; it reads {reads}")
    for name in sections:
        if name not in params and (name == "plot" or name in scale_schema.get("required", ())):
            raise ConfigError(f"--params lacks section {name!r}; this step reads {reads}")
    params = dict(params)
    if "plot" in params:  # figure steps also get the workflow-wide plot options
        plot_schema = schema("config.schema.yaml", project_dir)["properties"]["plot"]
        check(params.pop("plot"), plot_schema, "--params plot")
    properties = scale_schema.get("properties", {})
    for name, value in params.items():
        if name not in properties:
            raise ConfigError(
                f"--params: unknown section {name!r} for {slug}; allowed: {', '.join(properties)}"
            )
        section = {**properties[name], "$defs": scale_schema.get("$defs", {})}
        check(value, section, f"--params {name}", project_dir)
