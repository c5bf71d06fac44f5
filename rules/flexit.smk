# Flexi-Transducer (arXiv:2104.02232): zoo models (rules/speech.smk) -> decode per run (a
# model and its per-domain segment sizes at inference) -> evaluate -> figures.

from reprise.papers.flexit.runs import check_runs as check_flexit_runs

FLEXIT = CFG.scale_section("flexit")
FLEXIT_RUNS = FLEXIT["runs"]
PAPER_DATA["flexit"] = [SPEECH_CORPUS]

try:
    check_flexit_runs(FLEXIT, SPEECH_MODELS, SCALE)
except ConfigError as e:
    raise WorkflowError(str(e)) from None


wildcard_constraints:
    flexit_run="|".join(FLEXIT_RUNS),


rule flexit_decode:
    input:
        model=lambda w: speech_model(FLEXIT_RUNS[w.flexit_run]["model"]),
        corpus=SPEECH_CORPUS,
    output:
        table=result("flexit", "decode", "{flexit_run}.parquet"),
    params:
        cfg=step_params("flexit", "decode", only={"runs": "flexit_run"}),
        io=io_args,
    log:
        log_file("flexit", "decode", "{flexit_run}"),
    threads: 1  # RTF is measured on one thread
    conda:
        CONDA_ENV
    shell:
        reprise_step("flexit", "decode")


rule flexit_evaluate:
    input:
        tables=expand(rules.flexit_decode.output.table, flexit_run=FLEXIT_RUNS),
    output:
        metrics=metrics_json("flexit"),
        scores=result("flexit", "tables", "scores.parquet"),
        sweeps=result("flexit", "tables", "sweeps.parquet"),
    params:
        cfg=step_params("flexit", "evaluate"),
        io=io_args,
    log:
        log_file("flexit", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("flexit", "evaluate")


rule flexit_figures:
    input:
        scores=rules.flexit_evaluate.output.scores,
        sweeps=rules.flexit_evaluate.output.sweeps,
        tables=rules.flexit_evaluate.input.tables,
    output:
        table=figure("flexit", "table"),
        tradeoff=figure("flexit", "tradeoff"),
        emission=figure("flexit", "emission"),
    params:
        cfg=step_params("flexit", "figures"),
        io=io_args,
    log:
        log_file("flexit", "figures"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("flexit", "figures")


rule flexit:
    input:
        rules.flexit_evaluate.output,
        rules.flexit_figures.output,
