# The claims report: every enabled paper's claims beside the reproduced numbers.


rule report:
    input:
        [metrics_json(p) for p in ENABLED],
    output:
        parquet=f"{RESULTS}/claims.parquet",
        markdown=REPORT,
    params:
        config=report_config(),
        figures=report_figures(),
    log:
        f"{RESULTS}/logs/report.log",
    conda:
        CONDA_ENV
    shell:
        "reprise report --config-json {params.config:q} --results results "
        "--parquet {output.parquet} --markdown {output.markdown} --figures {params.figures:q} "
        "> {log} 2>&1"
