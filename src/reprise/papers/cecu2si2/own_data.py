"""Own data through the workflow: `snakemake cecu2si2 --config cecu2si2_data=mydata.yaml`.

mydata.yaml names the measured files (paths relative to it) and, optionally, analysis
sections that replace the config's (crystal, bands, calibration, dispersion, fermi_surface,
kz; a section given is merged key by key into the config's, a list replaces it):

    name: mysample                 # results go to results/<scale>/cecu2si2-mysample/
    files: {gold: gold.nc, cut: cut.nc, map: map.nc, hvscan: hvscan.nc}
    bands:
      - {name: x, center: X, branches: [-1], q_range: [0.1, 0.55], width_guess: 0.02}

gold is required (every file is calibrated with it); then a cut, or a map with a
photon-energy scan, or both. This module imports no xarray or pandas at the top: snakemake
reads it at every start.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from reprise.errors import ConfigError
from reprise.yamlconf import deep_merge

KINDS = ("gold", "cut", "map", "hvscan")
SECTIONS = ("crystal", "bands", "calibration", "dispersion", "fermi_surface", "kz")
FIT_COLUMNS = ("V", "eps_f", "e0", "b", "k_F", "v_F", "m_star")


def read_spec(path: str | Path) -> dict:
    """{name, files: {kind: path}, sections: {...}} from mydata.yaml, or one ConfigError line
    naming the file and what is wrong."""
    path = Path(path)
    where = f"cecu2si2_data={path}"
    if not path.is_file():
        raise ConfigError(f"{where}: no such file (expected a YAML naming your files)")
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping with name, files and analysis sections")
    unknown = sorted(set(spec) - {"name", "files", *SECTIONS})
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: name, files, {SECTIONS}")
    name = str(spec.get("name", ""))
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError(f"{where}: name {name!r} must be letters, digits, '_', '.' or '-'")
    files = spec.get("files") or {}
    bad = sorted(set(files) - set(KINDS))
    if bad:
        raise ConfigError(f"{where}: files: unknown kind {bad[0]!r}; expected some of {KINDS}")
    if "gold" not in files:
        raise ConfigError(f"{where}: files needs a gold file (the Fermi-level calibration)")
    if ("map" in files) != ("hvscan" in files):
        raise ConfigError(f"{where}: files: a map and an hvscan go together (V0 labels the map)")
    if "cut" not in files and "map" not in files:
        raise ConfigError(f"{where}: files needs a cut, or a map with an hvscan")
    resolved = {k: (path.parent / str(v)).resolve() for k, v in files.items()}
    for kind, p in resolved.items():
        if not p.is_file():
            raise ConfigError(f"{where}: files.{kind}: {p} does not exist")
    sections = {s: spec[s] for s in SECTIONS if s in spec}
    return {
        "name": name,
        "files": {k: str(p) for k, p in resolved.items()},
        "sections": sections,
        "where": where,
    }


def params(scale_cfg: dict, spec: dict, sections) -> dict:
    """A step's config sections: the scale's, with the user's merged in."""
    out = {}
    for s in sections:
        base, own = scale_cfg.get(s), spec["sections"].get(s)
        if own is None:
            if base is not None:
                out[s] = base
        elif isinstance(base, dict) and isinstance(own, dict):
            out[s] = deep_merge(base, own)
        else:
            out[s] = own
    return out


def check_sections(scale_cfg: dict, spec: dict, project_dir: Path = Path(".")) -> None:
    """The scale section with the user's sections merged in must pass the paper's schema:
    a malformed section stops the workflow with one line naming mydata.yaml, not a step."""
    from reprise.config import check, schema

    merged = {**scale_cfg, **params(scale_cfg, spec, SECTIONS)}
    check(merged, schema("papers/cecu2si2.schema.yaml", project_dir), spec["where"])


def step_params(scale_cfg: dict, spec: dict, steps, plot: dict) -> dict[str, str]:
    """{step: its --params JSON} for the own-data rules: params() of each step's sections,
    and the workflow's plot options for figure steps (after check_sections)."""
    check_sections(scale_cfg, spec)
    out = {}
    for name, step in steps.items():
        chosen = params(scale_cfg, spec, [s for s in step.sections if s != "plot"])
        if "plot" in step.sections:
            chosen["plot"] = plot
        out[name] = json.dumps(chosen, sort_keys=True)
    return out


def fitted_values(bands, v0):
    """One table of what was fitted, value ± error, no verdicts: per band the cut fit
    (V, ε_f in eV, bare band e0 + b q², k_F, v_F, m*), then the inner potential V0.
    bands, v0: the analyse and maps steps' tables (pandas), either None."""
    import pandas as pd

    rows = []
    for r in [] if bands is None else bands.to_dict("records"):
        for q in FIT_COLUMNS:
            rows.append(_row(r["band"], q, r.get(q), r.get(f"{q}_err"), r["fit_ok"]))
    for r in [] if v0 is None else v0.to_dict("records"):
        rows.append(_row("hv scan", "V0", r.get("V0"), r.get("V0_err"), r.get("fit_ok", True)))
    return pd.DataFrame(rows, columns=["band", "quantity", "value", "error", "fit_ok"])


def _row(band, quantity, value, error, ok) -> dict:
    return {"band": band, "quantity": quantity, "value": value, "error": error, "fit_ok": ok}
