"""Steps of the upl paper.

zoo models (rule speech_model) -> decode (per run: a model at one chunk size, every
endpointer on the same decoding) -> evaluate (per-configuration table, correlations,
metrics.json) -> figures.
"""

from __future__ import annotations

import logging

from reprise.io import read_table, write_json, write_table
from reprise.steps import Steps

STEPS = Steps()
log = logging.getLogger("reprise")


@STEPS.register(
    inputs=("model", "corpus"),
    outputs=("table",),
    sections=("runs", "endpointers", "decode"),
    torch=True,
)
def decode(params, inputs, outputs, rt):
    """Stream the test utterances through one run's zoo model at its chunk size on one
    thread, with every endpointer: one row per utterance (UPL per endpointer from the
    measured per-chunk compute) and the run's size and compute figures."""
    from reprise.papers.upl.summary import run_facts
    from reprise.speech import train as asr
    from reprise.steps import one

    name, run = one(params, "runs")
    loaded = asr.load_file(inputs["model"])
    dec = params["decode"]
    table = asr.decode(
        loaded,
        inputs["corpus"],
        split=dec["split"],
        domains=dec["domains"],
        segments=dict.fromkeys(dec["domains"], run["segment"]),
        threads=1,
        vad_endpointers=params["endpointers"],
    )
    facts = run_facts(loaded.model.c.to_dict(), loaded.cfg, run["segment"], loaded.model)
    for key, v in facts.items():
        table[key] = v
    table.insert(0, "model", run["model"])
    table.insert(0, "run", name)
    write_table(outputs["table"], table)
    log.info("%s: %d utterances decoded (%s)", name, len(table), facts)


@STEPS.register(
    inputs=("tables*",),
    outputs=("metrics", "configs", "correlations", "upl"),
    sections=("endpointers", "evaluation"),
)
def evaluate(params, inputs, outputs, rt):
    """The per-configuration table (run x endpointer), the correlation table with bootstrap
    intervals, the per-utterance UPL table and metrics.json."""
    import pandas as pd

    from reprise.papers.upl import summary
    from reprise.papers.upl.metrics import METRICS

    table = pd.concat([read_table(p) for p in inputs["tables"]], ignore_index=True)
    endpointers = summary.endpointer_names(params["endpointers"])
    ev = params["evaluation"]
    upl = summary.utterances(table, endpointers)
    configs = summary.configurations(table, upl)
    corr = summary.correlations(configs, ev["bootstrap"], ev["seed"])
    write_table(outputs["configs"], configs)
    write_table(outputs["correlations"], corr)
    write_table(outputs["upl"], upl)
    results = {
        "configs": configs,
        "correlations": corr,
        "gap": summary.latency_vs_compute_gap(configs, ev["bootstrap"], ev["seed"]),
        "tradeoff": summary.best_tradeoff(configs, ev["wer_margin"]),
    }
    write_json(outputs["metrics"], METRICS.compute(results))
    log.info("configurations:\n%s", configs.to_string())
    log.info("correlations of mean UPL:\n%s", corr.to_string())


@STEPS.register(
    inputs=("configs", "correlations", "upl"),
    outputs=("scatter*", "cdf*", "tradeoff*", "correlations*"),
    sections=("evaluation", "plot"),
)
def figures(params, inputs, outputs, rt):
    """UPL against each factor (with r), the UPL CDFs, the latency-WER trade-off and the
    correlation table."""
    from reprise.papers.upl import figures as fig
    from reprise.plots import save_figure, use_style

    opts = use_style(params["plot"])
    configs, corr = read_table(inputs["configs"]), read_table(inputs["correlations"])
    made = {
        "scatter": fig.scatter(configs, corr),
        "cdf": fig.cdf(read_table(inputs["upl"]), configs),
        "tradeoff": fig.tradeoff(configs, params["evaluation"]["wer_margin"]),
        "correlations": fig.correlation_table(corr),
    }
    for name, figure in made.items():
        save_figure(figure, outputs[name], opts)
