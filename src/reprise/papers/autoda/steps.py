"""Steps of autoda: train (search model, held-out normal and PGD-AT models) -> search (pruned,
and random search without pruning) -> attack (every method in lockstep on each held-out
model) -> evaluate (metrics) and figures.

`train` gets `models` narrowed to one model, `search` gets `searches` narrowed to one
variant, `attack` gets `targets` narrowed to one held-out model.
"""

from __future__ import annotations

import logging

from reprise.errors import ConfigError
from reprise.io import read_json, read_table, write_json, write_table, write_text
from reprise.steps import Steps, one

STEPS = Steps()
log = logging.getLogger("reprise")
BUILD_KEYS = ("arch", "width", "norm", "in_channels", "mean", "std")


def _split(path, data: dict, classes=None):
    """A prepared split; with `classes` [a, b] only those, relabelled 0 and 1."""
    import torch

    from reprise.data.prepared import ImageData
    from reprise.training.recipe import load_data

    d = load_data(path, data)
    if classes is None:
        return d
    keep = (d.y == classes[0]) | (d.y == classes[1])
    return ImageData(d.x[keep], (d.y[keep] == classes[1]).to(torch.long), [str(c) for c in classes])


def _correct(model, data, device):
    """Indices of the images `model` classifies correctly."""
    import torch

    with torch.no_grad():
        pred = torch.cat([model(x.to(device)).argmax(1).cpu() for x in data.x.split(1024)])
    return torch.nonzero(pred == data.y).flatten()


@STEPS.register(
    inputs=("train", "test"),
    outputs=("model", "history"),
    sections=("models", "data", "train", "attack"),
    torch=True,
    gpu=True,
)
def train(params, inputs, outputs, rt):
    """Train one model: the small binary search model (`classes`), or a held-out one by the
    core's standard or PGD-AT training."""
    from reprise.models import build_model, save_model
    from reprise.training import TrainConfig, fit
    from reprise.training.recipe import build_method

    name, spec = one(params, "models")
    classes = spec.get("classes")
    train_data = _split(inputs["train"], params["data"], classes)
    test = _split(inputs["test"], params["data"], classes)
    build = {k: v for k, v in spec.items() if k in BUILD_KEYS}
    model = build_model(**build, num_classes=train_data.num_classes)
    method = build_method(spec.get("method", "standard"), params["attack"])
    fit(
        model,
        method,
        train_data,
        TrainConfig.from_config(params["train"]),
        resume=rt.resume,
        history_path=outputs["history"],
        test=test,
        accel=rt.accel(),
        seed=rt.seed,
    )
    save_model(outputs["model"], model, model_name=name)


@STEPS.register(
    inputs=("model", "test"),
    outputs=("search",),
    sections=("search", "data", "models"),
    torch=True,
    gpu=True,
)
def search(params, inputs, outputs, rt):
    """The AutoDA search on the binary model: random programs through the inputs check, the
    distance test, a short attack and a long re-run of the best; resumable by rounds."""
    _search(params, inputs, outputs, rt, "pruned", params["search"])


@STEPS.register(
    inputs=("model", "test", "pruned"),
    outputs=("search",),
    sections=("search", "data", "models"),
    torch=True,
    gpu=True,
)
def random_search(params, inputs, outputs, rt):
    """Random search over programs without the two cheap checks (every program gets the
    short attack), with the query budget the pruned search used."""
    budget = read_json(inputs["pruned"])["queries"]
    log.info("query budget %d: that of the pruned search", budget)
    _search(params, inputs, outputs, rt, "random", {**params["search"], "max_queries": budget})


def _search(params, inputs, outputs, rt, variant, settings):
    import time

    import torch

    from reprise.models import load_model
    from reprise.papers.autoda.search import Evaluator, SearchConfig
    from reprise.papers.autoda.search import search as run_search

    cfg = SearchConfig.from_config({**settings, "prune": variant == "pruned"})
    dev = rt.device
    model, _ = load_model(inputs["model"])
    model = model.to(dev).eval()
    classes = params["models"]["search"]["classes"]
    data = _split(inputs["test"], params["data"], classes)
    ok = _correct(model, data, dev)
    need = cfg.short_images + cfg.rerun_images
    if len(ok) <= need:
        raise ConfigError(
            f"search: {len(ok)} correctly classified test images of classes {classes}; "
            f"short_images + rerun_images = {need} need more"
        )
    x, y = data.x[ok].to(dev), data.y[ok].to(dev)
    gen = torch.Generator(device=dev).manual_seed(rt.seed)
    pool = slice(need, None)
    a, b = slice(0, cfg.short_images), slice(cfg.short_images, need)
    short = Evaluator(model, x[a], y[a], x[pool], y[pool], gen)
    long = Evaluator(model, x[b], y[b], x[pool], y[pool], gen)
    t = time.perf_counter()
    state = run_search(cfg, short, long, rt.seed, resume=rt.resume)
    state.pop("np_rng"), state.pop("torch_rng")
    secs = time.perf_counter() - t
    log.info("%s search: %s in %.1f s", variant, state["counts"], secs)
    write_json(outputs["search"], {"variant": variant, **state, "seconds": secs})


@STEPS.register(
    inputs=("model", "found", "test"),
    outputs=("curves",),
    sections=("evaluation", "targets", "data"),
    torch=True,
    gpu=True,
)
def attack(params, inputs, outputs, rt):
    """Every method (the found program, AutoDA 1st, the baselines) on one held-out model, all
    images in lockstep: median L2 and success rate at each recorded query count."""
    import time

    import pandas as pd

    from reprise.models import load_model
    from reprise.papers.autoda.attack import Tuning
    from reprise.papers.autoda.evaluate import curves, run_baseline, run_programs
    from reprise.papers.autoda.program import AUTODA_1ST, Program

    target = one(params, "targets")
    ev = params["evaluation"]
    dev = rt.device
    model, _ = load_model(inputs["model"])
    model = model.to(dev).eval()
    data = _split(inputs["test"], params["data"])
    ok = _correct(model, data, dev)
    n = ev["images"]
    if len(ok) <= n:
        raise ConfigError(f"evaluation.images = {n}: only {len(ok)} correctly classified images")
    x, y = data.x[ok[:n]].to(dev), data.y[ok[:n]].to(dev)
    pool_x, pool_y = data.x[ok[n:]].to(dev), data.y[ok[n:]].to(dev)
    found = read_json(inputs["found"])["best"]["nodes"]
    programs = {"autoda_1st": AUTODA_1ST}
    if found:
        programs["autoda_found"] = Program.from_list(found)
    elif "autoda_found" in ev["methods"]:
        log.warning("the search found no program: autoda_found is not evaluated")
    record = sorted(set(ev["record"]) | set(range(ev["grid"], ev["budget"] + 1, ev["grid"])))
    common = dict(budget=ev["budget"], record=record, seed=rt.seed)
    wanted = [m for m in ev["methods"] if m in programs]
    t = time.perf_counter()
    runs = run_programs(
        {m: programs[m] for m in wanted},
        model,
        x,
        y,
        pool_x,
        pool_y,
        tuning=Tuning(s0_init=ev["s0_init"]),
        **common,
    )
    seconds = dict.fromkeys(wanted, (time.perf_counter() - t) / max(len(wanted), 1))
    for method in ev["methods"]:
        if method.startswith("autoda"):
            continue
        t = time.perf_counter()
        options = (ev.get("baselines") or {}).get(method)
        runs[method] = run_baseline(method, model, x, y, pool_x, pool_y, options=options, **common)
        seconds[method] = time.perf_counter() - t
    tables = []
    for method, run in runs.items():
        table = curves(run, ev["eps"], model=target, method=method)
        table["queries_per_s"] = run.queries / seconds[method]
        tables.append(table)
        last = table.iloc[-1]
        log.info(
            "%s on %s: median L2 %.4f, success %.2f at %d queries (%.0f queries/s)",
            method,
            target,
            last.median_l2,
            last.success_rate,
            last.queries,
            table.queries_per_s.iloc[0],
        )
    write_table(outputs["curves"], pd.concat(tables, ignore_index=True))


def _searches(paths) -> dict:
    out = {}
    for p in paths:
        s = read_json(p)
        out[s["variant"]] = s
    if set(out) != {"pruned", "random"}:
        raise ConfigError(f"--input searches: need a pruned and a random search, got {sorted(out)}")
    return out


def _curves(paths):
    import pandas as pd

    return pd.concat([read_table(p) for p in paths], ignore_index=True)


@STEPS.register(inputs=("searches*", "curves*"), outputs=("metrics",), sections=("evaluation",))
def evaluate(params, inputs, outputs, rt):
    """The claims' metrics from the searches and the attack curves."""
    from reprise.papers.autoda.metrics import METRICS

    metrics = METRICS.compute(
        _searches(inputs["searches"]), _curves(inputs["curves"]), params["evaluation"]
    )
    write_json(outputs["metrics"], metrics)


@STEPS.register(
    inputs=("searches*", "curves*"),
    outputs=("search_progress*", "pruning*", "curves*", "programs"),
    sections=("evaluation", "plot"),
)
def figures(params, inputs, outputs, rt):
    """Search progress, pruning statistics per stage, median L2 and success rate against
    queries per model and method; the discovered programs as text."""
    from reprise.papers.autoda import figures as draw
    from reprise.plots import save_figure, use_style

    opts = use_style(params["plot"])
    searches = _searches(inputs["searches"])
    table = _curves(inputs["curves"])
    save_figure(draw.search_progress(searches), outputs["search_progress"], opts)
    save_figure(draw.pruning(searches["pruned"]["counts"]), outputs["pruning"], opts)
    save_figure(draw.curves(table, params["evaluation"]["eps"]), outputs["curves"], opts)
    write_text(outputs["programs"], draw.programs_text(searches))
