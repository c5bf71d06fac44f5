# The one place for config access, scale/paper helpers and path functions.
import copy
import json
import os
import shlex
from pathlib import Path

from snakemake.utils import validate

from reprise import claims as reprise_claims
from reprise import papers as reprise_papers
from reprise import steps as reprise_steps
from reprise import stepserver as reprise_stepserver
from reprise import data as reprise_data
from reprise.speech import zoo as reprise_zoo
from reprise.errors import ConfigError
from reprise.yamlconf import load_yaml

def config_origins(workflow):
    """Which configfile (or --config) set each paper's overrides, for error messages."""
    from reprise.config import override_origins
    from reprise.yamlconf import load_yaml

    files = [(str(f), load_yaml(f)) for f in workflow.configfiles]
    return override_origins([*files, ("--config", workflow.config_settings.config)])


# One clear message (key, value, what is allowed) before any job runs; then snakemake's own
# schema validation fills the defaults.
try:
    CFG = reprise_claims.validated_config(config, origins=config_origins(workflow))
except ConfigError as e:
    raise WorkflowError(f"invalid configuration: {e}") from None
validate(config, "../workflow/schemas/config.schema.yaml")

# Every rule runs in the project's one environment (`--sdm conda` builds it from here).
CONDA_ENV = "../environment.yml"
SCALE = CFG.scale
ENABLED = CFG.enabled
SEEDS = CFG.main["seeds"]
DATA = CFG.main["data_root"]
PLOT = CFG.main["plot"]
RESULTS = f"results/{SCALE}"
REPORT = f"{RESULTS}/REPORT.md"


def result(paper, *parts):
    """results/<scale>/<paper>/<parts...>"""
    return "/".join([RESULTS, paper, *parts])


def metrics_json(paper):
    return result(paper, "metrics.json")


def figure(paper, name):
    """A figure in every configured format: results/<scale>/<paper>/figures/<name>.<fmt>.
    The PNG goes into the Snakemake report (`snakemake --report`), under the paper and the
    figure's experiment, with the caption from the paper config's `figures:` section; `name`
    may be a wildcard ("{figure}")."""
    paths = [result(paper, "figures", f"{name}.{fmt}") for fmt in PLOT["formats"]]
    if "{" not in name:
        figure_info(paper, name)  # a figure without a caption stops the workflow here
    if "png" in PLOT["formats"]:
        i = PLOT["formats"].index("png")
        info = lambda wc: figure_info(paper, name.format(**wc))
        paths[i] = report(
            paths[i],
            caption="../workflow/report/figure.rst",
            category=paper,
            subcategory=lambda wc: info(wc)["experiment"],
            labels=lambda wc: {
                "figure": name.format(**wc),
                "regenerates": info(wc)["paper"] or "—",
            },
        )
    return paths


def figure_info(paper, name):
    """The `figures: <name>` entry of the paper's config (experiment, paper, caption)."""
    figures = CFG.paper(paper)["figures"]
    if name not in figures:
        raise WorkflowError(
            f"config/papers/{paper}.yaml: figures has no entry {name!r} (experiment, paper, "
            f"caption); it has {', '.join(figures)}"
        )
    return figures[name]


# The figure captions' template reads them from the workflow config (report_config() leaves
# them out of what the claims report is judged by).
config["figure_captions"] = {p: CFG.paper(p)["figures"] for p in reprise_papers.available()}


def log_file(paper, step, *wildcards):
    """results/<scale>/<paper>/logs/<step>[-<wildcard>...].log"""
    return result(paper, "logs", "-".join([step, *wildcards]) + ".log")


def paper_target(paper):
    """Everything `snakemake <paper>` builds: the paper rule's inputs."""
    return getattr(rules, paper).input


def prepared(dataset, split):
    return f"{DATA}/prepared/{dataset}/{split}.pt"


def step_params(paper, step, only=None):
    """The config sections the step declares (the registry), at the current scale, as JSON
    for --params. Editing a section re-runs only the rules whose steps read it (snakemake's
    params trigger). `only` ({"runs": "run"} or {"te.datasets": "dataset"}: a dotted path in
    the config -> a wildcard name) narrows that list or mapping to the job's wildcard, so
    editing one run's settings re-runs only that run's jobs."""
    sections = reprise_papers.steps(paper)[step].sections
    scale_cfg = CFG.scale_section(paper)
    chosen = {s: scale_cfg[s] for s in sections if s in scale_cfg}
    if "plot" in sections:
        chosen["plot"] = PLOT
    if not only:
        return json.dumps(chosen, sort_keys=True)

    def narrowed(wildcards):
        job = {path: wildcards[name] for path, name in only.items()}
        return json.dumps(reprise_steps.narrow(copy.deepcopy(chosen), job), sort_keys=True)

    return narrowed


def io_args(wildcards, input, output):
    """--input NAME=PATH ... --output NAME=PATH ... from a rule's named inputs and outputs."""
    args = []
    for flag, files in (("--input", input), ("--output", output)):
        for name, value in files.items():
            for path in [value] if isinstance(value, str) else value:
                args.append(f"{flag} {shlex.quote(f'{name}={path}')}")
    return " ".join(args)


# Local runs start every step as a fork of one warm `reprise serve` (reprise.stepserver):
# ~2 CPU-s of imports saved per step. Not for cluster executors, whose jobs must run inside
# their allocations, nor with --sdm (conda, apptainer, modules), whose jobs must run in their
# own environment; dry runs and up-to-date targets start nothing.
STEP_SERVER = reprise_stepserver.Server()


onstart:
    if workflow.local_exec and not workflow.deployment_settings.deployment_method:
        os.environ[reprise_stepserver.ENV] = STEP_SERVER.start()


onsuccess:
    STEP_SERVER.stop()


onerror:
    STEP_SERVER.stop()


def reprise_step(paper, step):
    """The shell command of <paper>_<step> rules, `reprise <paper> <step>` with its params
    and files."""
    return (
        f"reprise {paper} {step} --params {{params.cfg:q}} {{params.io}} "
        f"--threads {{threads}} > {{log}} 2>&1"
    )


# --- speech core ---------------------------------------------------------------------------
# config/speech.yaml: the synthesised corpus and the model zoo, per scale (rules/speech.smk).
SPEECH_CFG = load_yaml(Path(workflow.basedir) / "config" / "speech.yaml")[SCALE]
SPEECH_CORPUS = f"{DATA}/prepared/speech-{SCALE}"
SPEECH_MODELS = SPEECH_CFG["models"]


def speech_model(name):
    """The checkpoint of zoo model `name` (config/speech.yaml `models:`); a paper lists the
    names it decodes, and papers that name the same model share one training job."""
    if "{" not in name and name not in SPEECH_MODELS:
        raise WorkflowError(
            f"config/speech.yaml ({SCALE}): no model {name!r} in models; it has "
            f"{', '.join(SPEECH_MODELS)}"
        )
    return f"{RESULTS}/speech/models/{name}.pt"


def speech_model_config(name):
    """The zoo model's speech config: the scale's `recipe`, section by section updated by the
    model's own entries (JSON, for --config)."""
    cfg = copy.deepcopy(SPEECH_CFG["recipe"])
    for section, values in SPEECH_MODELS[name].items():
        cfg.setdefault(section, {}).update(values)
    return json.dumps(cfg, sort_keys=True)


# {model: warm-up}: models that differ only in their transducer loss run the same CTC-only
# first epochs; one job (rule speech_warmup) runs them, and each such model continues from it.
SPEECH_WARMUPS = reprise_zoo.shared_warmups(
    {name: json.loads(speech_model_config(name)) for name in SPEECH_MODELS}
)


def speech_warmup(name):
    """The shared warm-up named after zoo model `name` (rule speech_warmup)."""
    return f"{RESULTS}/speech/warmups/{name}.pt"


def speech_model_inputs(wildcards):
    """The corpus, and the shared warm-up the model continues from, if it has one."""
    shared = SPEECH_WARMUPS.get(wildcards.speech_model)
    return {"corpus": SPEECH_CORPUS} | ({"start": speech_warmup(shared)} if shared else {})


# --- cluster resources ----------------------------------------------------------------------
# Training and attack steps declare `threads` and `resources: **GPU_STEP`; all others take the
# profile's default-resources. Locally these only annotate the job (no --resources gpu limit is
# set); the slurm-gpu profile turns them into `sbatch --gpus=1 --cpus-per-gpu=<threads>`, and
# the slurm-cpu layer caps gpu at 0 so the same job runs on CPUs.

GPU_STEP = {
    "gpu": 1,
    "cpus_per_gpu": lambda wildcards, threads: threads,
    "mem_mb": {"smoke": 4000, "paper": 32000}[SCALE],
    # One attempt's wall time; a step that runs out is retried and resumes (see README).
    "runtime": {"smoke": 30, "paper": 12 * 60}[SCALE],
}


# --- data ---------------------------------------------------------------------------------


def data_root_of(wildcards, output):
    """<root> of <root>/{raw,prepared}/<dataset>/<file>."""
    return str(Path(output[0]).parents[2])


def raw_files(wildcards):
    """The official raw files a prepared split is converted from."""
    raws = reprise_data.raw_files(wildcards.dataset, wildcards.split)
    return [f"{DATA}/raw/{wildcards.dataset}/{r.filename}" for r in raws]


# --- report -------------------------------------------------------------------------------


def report_figures():
    """{paper: figure paths} to link from REPORT.md (params, not inputs: a changed plot
    option re-runs figure rules only, never the report)."""
    return json.dumps({p: [f for f in paper_target(p) if "/figures/" in f] for p in ENABLED})


def report_config():
    """The workflow config the report judges by (plot options left out on purpose)."""
    left_out = ("plot", "figure_captions")
    return json.dumps({k: v for k, v in config.items() if k not in left_out}, sort_keys=True)


# --- datasets each paper reads (the `datasets` target, and DVC's data stage) ---------------

PAPER_DATA = {}  # paper -> prepared files; each rules/<paper>.smk registers its own


# --- the rule <-> step contract -------------------------------------------------------------


def check_contract():
    """Stop before any job runs when a rule <paper>_<step> differs from its step's
    declaration in the registry (named inputs, outputs, GPU resources)."""
    views = [
        reprise_steps.RuleView(
            r.name, tuple(r.input.keys()), tuple(r.output.keys()), "gpu" in r.resources
        )
        for r in workflow.rules
    ]
    registries = {p: reprise_papers.steps(p) for p in reprise_papers.available()}
    errors = reprise_steps.contract_errors(views, registries)
    if errors:
        raise WorkflowError("rules differ from their steps' declarations:\n" + "\n".join(errors))
