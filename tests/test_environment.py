"""environment.yml (conda users) lists the same packages as pyproject.toml (pip users)."""

import re
import tomllib

import yaml

from tests.conftest import ROOT


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _spec(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement.split(";")[0])


def pyproject_requirements() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    return {_name(r): _spec(r) for r in reqs}


def environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        for req in dep["pip"] if isinstance(dep, dict) else [dep]:
            if req.startswith("-e") or _name(req) in ("python", "pip"):
                continue
            out[_name(req)] = _spec(req)  # conda and pip share the >=,< / == syntax used here
    return out


def test_same_packages_and_versions():
    assert environment_requirements() == pyproject_requirements()


def test_torch_is_pinned_exactly():
    assert pyproject_requirements()["torch"] == "torch==2.13.0"
