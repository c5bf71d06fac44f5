# Dissecting user-perceived latency (arXiv:2104.02207): zoo models (rules/speech.smk) ->
# decode per run (a model at one chunk size, every endpointer) -> evaluate -> figures.

from reprise.speech.zoo import check_models

UPL = CFG.scale_section("upl")
UPL_RUNS = UPL["runs"]
PAPER_DATA["upl"] = [SPEECH_CORPUS]

try:
    check_models("config/papers/upl.yaml", UPL_RUNS, SPEECH_MODELS, SCALE)
except ConfigError as e:
    raise WorkflowError(str(e)) from None


wildcard_constraints:
    upl_run="|".join(UPL_RUNS),


rule upl_decode:
    input:
        model=lambda w: speech_model(UPL_RUNS[w.upl_run]["model"]),
        corpus=SPEECH_CORPUS,
    output:
        table=result("upl", "decode", "{upl_run}.parquet"),
    params:
        cfg=step_params("upl", "decode", only={"runs": "upl_run"}),
        io=io_args,
    log:
        log_file("upl", "decode", "{upl_run}"),
    threads: 1  # compute per chunk is measured on one thread, as on a device
    conda:
        CONDA_ENV
    shell:
        reprise_step("upl", "decode")


rule upl_evaluate:
    input:
        tables=expand(rules.upl_decode.output.table, upl_run=UPL_RUNS),
    output:
        metrics=metrics_json("upl"),
        configs=result("upl", "tables", "configurations.parquet"),
        correlations=result("upl", "tables", "correlations.parquet"),
        upl=result("upl", "tables", "utterances.parquet"),
    params:
        cfg=step_params("upl", "evaluate"),
        io=io_args,
    log:
        log_file("upl", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("upl", "evaluate")


rule upl_figures:
    input:
        configs=rules.upl_evaluate.output.configs,
        correlations=rules.upl_evaluate.output.correlations,
        upl=rules.upl_evaluate.output.upl,
    output:
        scatter=figure("upl", "scatter"),
        cdf=figure("upl", "cdf"),
        tradeoff=figure("upl", "tradeoff"),
        correlations=figure("upl", "correlations"),
    params:
        cfg=step_params("upl", "figures"),
        io=io_args,
    log:
        log_file("upl", "figures"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("upl", "figures")


rule upl:
    input:
        rules.upl_evaluate.output,
        rules.upl_figures.output,
