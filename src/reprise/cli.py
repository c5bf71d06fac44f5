"""`reprise`: the command every Snakemake rule calls.

    reprise validate [--config FILE] [--set KEY=VALUE ...]
    reprise report   [--config FILE] [--set KEY=VALUE ...] [--parquet P --markdown M]
    reprise data     {fetch,prepare} DATASET [--root DIR] [--split S] [--file F]
    reprise data     list
    reprise <paper>  <step> --params JSON --input NAME=PATH ... --output NAME=PATH ...
                     [--threads N] [--seed N] [--device auto|cpu|cuda]
    reprise serve    --socket PATH [--idle S] [--own-dir] [--parent PID]   (the warm step server)

Bad input stops with one line `reprise: error: ...` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path

import yaml

from reprise import papers
from reprise.errors import ReproError

log = logging.getLogger("reprise")
CPU_OF = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)  # a step's CPU time, its children's too


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return key, value


def _overrides(pairs: list[tuple[str, str]]) -> dict:
    """`--set a.b=1` -> {"a": {"b": 1}}, values parsed as YAML like snakemake's --config."""
    out: dict = {}
    for key, value in pairs:
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return out


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="config/config.yaml", help="workflow config file")
    p.add_argument(
        "--set",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (repeatable), e.g. --set scale=paper",
    )
    p.add_argument("--config-json", help="the whole workflow config as JSON (used by rules)")


def _load_config(args):
    from reprise.claims import validated_config
    from reprise.config import override_origins
    from reprise.yamlconf import deep_merge, load_yaml

    if args.config_json:
        source = "--config-json"
        try:
            raw = json.loads(args.config_json)
        except json.JSONDecodeError as e:
            raise ReproError(f"--config-json is not valid JSON: {e}") from None
    else:
        source, raw = args.config, load_yaml(args.config) or {}
    sets = _overrides(args.set)
    origins = override_origins([(source, raw), ("--set", sets)])
    return validated_config(deep_merge(raw, sets), origins=origins)


def cmd_validate(args) -> int:
    cfg = _load_config(args)
    print(f"config OK: scale={cfg.scale}, papers={', '.join(cfg.enabled)}")
    return 0


def cmd_report(args) -> int:
    from reprise import claims, report
    from reprise.io import atomic_path, write_text

    cfg = _load_config(args)
    df = claims.claims_table(cfg, args.results)
    if args.parquet:
        with atomic_path(args.parquet) as tmp:
            df.to_parquet(tmp, index=False)
    if args.markdown:
        figures = json.loads(args.figures) if args.figures else {}
        md = Path(args.markdown)
        seconds = {p: report.step_seconds(args.results, cfg.scale, p) for p in cfg.enabled}
        write_text(md, report.to_markdown(df, cfg, figures, md.parent, seconds))
    if args.html:
        write_text(args.html, report.to_html(df, cfg.scale))
    for column, wanted in (("paper", args.paper), ("verdict", args.verdict)):
        if wanted:
            if wanted not in set(df[column]):
                known = ", ".join(sorted(set(df[column])))
                raise ReproError(f"--{column} {wanted!r}: the claims table has {known}")
            df = df[df[column] == wanted]
    print(report.to_terminal(df, colour=sys.stdout.isatty()))
    return 0


def cmd_serve(args) -> int:
    from reprise import stepserver

    stepserver.serve(args.socket, args.idle, args.own_dir, args.parent)
    return 0


def cmd_data(args) -> int:
    from reprise import data

    if args.action == "list":
        print(data.describe())
    elif args.dataset is None:
        raise ReproError(
            f"`reprise data {args.action}` needs a DATASET: {', '.join(data.DATASETS)}"
        )
    elif args.action == "prepare":
        data.prepare_splits(args.dataset, args.root, args.split)
    else:
        data.fetch(args.dataset, args.root, args.file)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reprise", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("validate", help="validate config/config.yaml and every paper config")
    _config_args(p)
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("report", help="print the claims table (and write REPORT.md)")
    _config_args(p)
    p.add_argument("--results", default="results", help="results root")
    p.add_argument("--parquet", help="write the claims table here")
    p.add_argument("--markdown", help="write REPORT.md here")
    p.add_argument("--html", help="write the claims table as HTML here")
    p.add_argument("--figures", help="JSON {paper: [figure paths]} to show in REPORT.md")
    p.add_argument("--paper", help="print only this paper's claims")
    p.add_argument(
        "--verdict", choices=["reproduced", "not reproduced", "not run"], help="only these"
    )
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("data", help="fetch or prepare a dataset, or list them")
    p.add_argument("action", choices=["fetch", "prepare", "list"])
    p.add_argument("dataset", nargs="?")
    p.add_argument("--root", default="data", help="data root (config: data_root)")
    p.add_argument("--split", action="append", help="prepare only this split (repeatable)")
    p.add_argument("--file", help="fetch only this official file")
    p.set_defaults(func=cmd_data)
    p = sub.add_parser("serve", help="run steps as forks of one warm process (local runs)")
    p.add_argument("--socket", required=True, help="the Unix socket to listen on")
    p.add_argument("--idle", type=float, default=300.0, help="exit after this many idle seconds")
    p.add_argument(
        "--own-dir", action="store_true", help="remove the socket's folder at exit (made for it)"
    )
    p.add_argument("--parent", type=int, help="exit once this process has gone (its starter)")
    p.set_defaults(func=cmd_serve)
    for slug in papers.available():
        sub.add_parser(slug, help=f"run a step of the {slug} paper", add_help=False)
    return parser


def build_step_parser(slug: str, steps) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"reprise {slug}", description=f"steps of {slug}")
    sub = parser.add_subparsers(dest="step", metavar="STEP", required=True)
    for name, step in steps.items():
        p = sub.add_parser(
            name, help=step.help.splitlines()[0] if step.help else name, description=step.help
        )
        p.add_argument(
            "--params",
            default="{}",
            help="JSON: the sections of the paper's scale config this step reads: "
            + (", ".join(step.sections) or "none"),
        )
        p.add_argument(
            "--input",
            type=_key_value,
            action="append",
            default=[],
            metavar="NAME=PATH",
            help="inputs: " + ", ".join(step.inputs),
        )
        p.add_argument(
            "--output",
            type=_key_value,
            action="append",
            default=[],
            metavar="NAME=PATH",
            help="outputs: " + ", ".join(step.outputs),
        )
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    return parser


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


def run_step(slug: str, argv: list[str]) -> int:
    from reprise import config
    from reprise.io import check_writable
    from reprise.resume import Resume, fingerprint, resume_dir
    from reprise.runtime import Runtime, loaded_torch

    steps = papers.steps(slug)
    args = build_step_parser(slug, steps).parse_args(argv)
    step = steps[args.step]
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as e:
        raise ReproError(f"--params is not valid JSON: {e}") from None
    if not isinstance(params, dict):
        raise ReproError("--params must be a JSON object of config sections")
    config.check_step_params(slug, params, step.sections)
    inputs = step.bind("input", _grouped(args.input))
    outputs = step.bind("output", _grouped(args.output))
    for path in _flat(outputs):  # before the step spends its time, not at its first write
        check_writable(path)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed attempt
            stale.unlink()
    resume = Resume(resume_dir(_flat(outputs)[0]), fingerprint(params, args.seed, _flat(inputs)))
    if step.torch:
        import torch  # noqa: F401  (before setup: it seeds and configures a loaded torch)
    rt = Runtime(args.threads, args.seed, args.device, resume).setup()
    log.info(
        "%s %s: params=%s threads=%d seed=%d device=%s",
        slug,
        args.step,
        json.dumps(params, sort_keys=True),
        rt.threads,
        rt.seed,
        rt.device if loaded_torch() else "cpu (torch-free step)",
    )
    t0 = time.perf_counter()
    try:
        step.fn(params, inputs, outputs, rt)
    except BaseException:
        for p in _flat(outputs):  # no partial set of outputs survives a failed step
            if p.is_file():
                p.unlink()
        raise
    missing = [str(p) for p in _flat(outputs) if not p.exists()]
    if missing:
        raise RuntimeError(f"step {slug} {args.step} did not write {missing}")
    rt.resume.clear()
    cpu = sum(
        getattr(resource.getrusage(who), f) for who in CPU_OF for f in ("ru_utime", "ru_stime")
    )
    log.info("%s %s done in %.1f s (cpu %.1f s)", slug, args.step, time.perf_counter() - t0, cpu)
    return 0


def _flat(bound: dict) -> list[Path]:
    return [p for v in bound.values() for p in (v if isinstance(v, list) else [v])]


def entry() -> None:
    """The `reprise` command (and `python -m reprise`): `main`, then a fast exit. A command
    runs in the warm step server when one is running (reprise.stepserver)."""
    from reprise.runtime import end_process

    argv = sys.argv[1:]
    if argv and argv[0] != "serve":
        from reprise.stepserver import run_remote

        code = run_remote(__name__, argv)
        if code is not None:
            end_process(code)
    end_process(main(argv))


def main(argv: list[str] | None = None) -> int:
    from reprise.runtime import configure_logging

    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        if argv and argv[0] in papers.available():
            configure_logging()
            return run_step(argv[0], argv[1:])
        args = parser.parse_args(argv)
        configure_logging(args.verbose)
        if args.command is None:
            parser.print_help()
            return 2
        return args.func(args)
    except ReproError as e:
        print(f"reprise: error: {e}", file=sys.stderr)
        return 2
