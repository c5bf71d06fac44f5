"""Steps of the flexit paper.

zoo models (rule speech_model) -> decode (per run: a model and its per-domain segment sizes at
inference) -> evaluate (metrics.json, the per-domain table, the sweeps) -> figures.
"""

from __future__ import annotations

import logging

from reprise.io import read_table, write_json, write_table
from reprise.steps import Steps

STEPS = Steps()
log = logging.getLogger("reprise")


def run_settings(bundle_cfg: dict, segments: dict, domain: str) -> dict:
    """What a run decodes `domain` with, in ms: the segment size (the run's per-domain
    segment, else the one the model was trained with) and the Ar-RNNT buffers it was trained
    with (None for plain RNN-T)."""
    model, train = bundle_cfg["model"], bundle_cfg["train"]
    frame_ms = 10 * model["reduction"]
    seg = segments.get(domain) or train["segments"].get(domain) or model["segment"]
    buffers = train["buffers"].get(domain) if train["loss"] == "ar_rnnt" else None
    return {
        "segment_ms": seg * frame_ms,
        "b_l_ms": None if buffers is None else buffers[0] * frame_ms,
        "b_r_ms": None if buffers is None else buffers[1] * frame_ms,
        "domain_vector": bool(model["domain_vector"]),
    }


@STEPS.register(
    inputs=("model", "corpus"),
    outputs=("table",),
    sections=("runs", "decode"),
    torch=True,
)
def decode(params, inputs, outputs, rt):
    """Stream the test utterances of one run through its zoo model on one thread (for RTF):
    one row per utterance with hypotheses, word availability times and per-chunk compute."""
    from reprise.speech import train as asr
    from reprise.steps import one

    name, run = one(params, "runs")
    bundle = asr.load_file(inputs["model"])
    segments = run.get("segments") or {}
    table = asr.decode(
        bundle,
        inputs["corpus"],
        split=params["decode"]["split"],
        domains=run.get("domains"),
        segments={**bundle.cfg["train"]["segments"], **segments},
        threads=1,
    )
    settings = {d: run_settings(bundle.cfg, segments, d) for d in set(table["domain"])}
    for col in ("segment_ms", "b_l_ms", "b_r_ms", "domain_vector"):
        table[col] = [settings[d][col] for d in table["domain"]]
    table.insert(0, "model", run["model"])
    table.insert(0, "run", name)
    write_table(outputs["table"], table)
    log.info("%s: %d utterances decoded", name, len(table))


@STEPS.register(
    inputs=("tables*",),
    outputs=("metrics", "scores", "sweeps"),
    sections=("sweeps", "evaluation"),
)
def evaluate(params, inputs, outputs, rt):
    """metrics.json, the per-run per-domain table (WER, RTF, P50/P90 emission delay) and the
    sweep curves."""
    import pandas as pd

    from reprise.papers.flexit import summary
    from reprise.papers.flexit.metrics import METRICS

    table = pd.concat([read_table(p) for p in inputs["tables"]], ignore_index=True)
    scores = summary.scores(table)
    ev = params["evaluation"]
    dictation = table[table["domain"] == "dictation"]
    gain = summary.paired_wer_gain(
        dictation[dictation["run"] == "baseline"],
        dictation[dictation["run"] == "flexit"],
        ev["bootstrap"],
        ev["seed"],
    )
    sweeps = {
        name: summary.sweep(scores, s["runs"], s["domain"], s["x"])
        for name, s in params["sweeps"].items()
    }
    write_table(outputs["scores"], scores)
    write_table(
        outputs["sweeps"],
        pd.concat([t.assign(sweep=name) for name, t in sweeps.items()], ignore_index=True),
    )
    write_json(
        outputs["metrics"], METRICS.compute({"scores": scores, "wer_gain": gain, "sweeps": sweeps})
    )
    log.info("per-domain scores:\n%s", scores.to_string())


@STEPS.register(
    inputs=("scores", "sweeps", "tables*"),
    outputs=("table*", "tradeoff*", "emission*"),
    sections=("plot",),
)
def figures(params, inputs, outputs, rt):
    """The per-domain table, the latency-WER curves of the sweeps and the emission-delay
    histograms per domain."""
    import pandas as pd

    from reprise.papers.flexit import figures as fig
    from reprise.papers.flexit.summary import word_delays
    from reprise.plots import save_figure, use_style

    opts = use_style(params["plot"])
    table = pd.concat([read_table(p) for p in inputs["tables"]], ignore_index=True)
    made = {
        "table": fig.per_domain_table(read_table(inputs["scores"])),
        "tradeoff": fig.tradeoff(read_table(inputs["sweeps"])),
        "emission": fig.emission(word_delays(table[table["run"].isin(["baseline", "flexit"])])),
    }
    for name, figure in made.items():
        save_figure(figure, outputs[name], opts)
