# The claims report: every enabled paper's claims beside the reproduced numbers.


rule report:
    input:
        [metrics_json(p) for p in ENABLED],
    output:
        parquet=f"{RESULTS}/claims.parquet",
        markdown=REPORT,
        html=report(
            f"{RESULTS}/claims.html", caption="../workflow/report/claims.rst", category="claims"
        ),
    params:
        config=report_config(),
        figures=report_figures(),
    log:
        f"{RESULTS}/logs/report.log",
    conda:
        CONDA_ENV
    shell:
        "reprise report --config-json {params.config:q} --results results "
        "--parquet {output.parquet} --markdown {output.markdown} --html {output.html} "
        "--figures {params.figures:q} "
        "> {log} 2>&1"
