# Exploring Memorization in Adversarial Training (arXiv:2106.01606), two experiments:
#   random labels: train_labels (method x labels x dataset) -> complexity (per dataset)
#   temporal ensembling: train_te (run x dataset) -> attack_te (per dataset)
# -> evaluate (metrics.json, summary tables) -> one figure job per figure.


include: "memorization_common.smk"


wildcard_constraints:
    dataset="|".join(reprise_data.DATASETS),
    method="pgd_at|trades",
    labels="true|random",
    run="pgd_at|pgd_at_te|trades|trades_te",
    figure="|".join(MEM_FIGURES),


rule memorization_train_labels:
    input:
        train=prepared("{dataset}", "train"),
        test=prepared("{dataset}", "test"),
    output:
        model=mem_path("models", "labels", "{dataset}", "{method}-{labels}.pt"),
        history=mem_path("tables", "labels", "{dataset}", "{method}-{labels}.parquet"),
    params:
        cfg=step_params(
            "memorization",
            "train_labels",
            only={
                "random_labels.datasets": "dataset",
                "random_labels.methods": "method",
                "random_labels.labels": "labels",
            },
        ),
        io=io_args,
    log:
        log_file("memorization", "train_labels", "{dataset}", "{method}", "{labels}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("memorization", "train_labels")


rule memorization_complexity:
    input:
        models=lambda wc: mem_label_files(wc.dataset, "models", "pt"),
        train=prepared("{dataset}", "train"),
    output:
        table=mem_path("tables", "complexity", "{dataset}.parquet"),
    params:
        cfg=step_params(
            "memorization", "complexity", only={"random_labels.datasets": "dataset"}
        ),
        io=io_args,
    log:
        log_file("memorization", "complexity", "{dataset}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("memorization", "complexity")


rule memorization_train_te:
    input:
        train=prepared("{dataset}", "train"),
        test=prepared("{dataset}", "test"),
    output:
        model=mem_path("models", "te", "{dataset}", "{run}.pt"),
        best=mem_path("models", "te", "{dataset}", "{run}-best.pt"),
        history=mem_path("tables", "te", "{dataset}", "{run}.parquet"),
    params:
        cfg=step_params(
            "memorization", "train_te", only={"te.datasets": "dataset", "te.runs": "run"}
        ),
        io=io_args,
    log:
        log_file("memorization", "train_te", "{dataset}", "{run}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("memorization", "train_te")


rule memorization_attack_te:
    input:
        models=mem_te_models,
        test=prepared("{dataset}", "test"),
    output:
        table=mem_path("tables", "te_eval", "{dataset}.parquet"),
    params:
        cfg=step_params("memorization", "attack_te", only={"te.datasets": "dataset"}),
        io=io_args,
    log:
        log_file("memorization", "attack_te", "{dataset}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("memorization", "attack_te")


rule memorization_evaluate:
    input:
        label_histories=MEM_LABEL_HISTORIES,
        complexity=[mem_path("tables", "complexity", f"{d}.parquet") for d in MEM_LABELS["datasets"]],
        te_histories=MEM_TE_HISTORIES,
        te_tables=[mem_path("tables", "te_eval", f"{d}.parquet") for d in MEM_TE["datasets"]],
    output:
        metrics=metrics_json("memorization"),
        **MEM_SUMMARY,
    params:
        cfg=step_params("memorization", "evaluate"),
        io=io_args,
    log:
        log_file("memorization", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("memorization", "evaluate")


rule memorization_figure:
    input:
        tables=lambda wc: MEM_FIGURES[wc.figure],
    output:
        figure=figure("memorization", "{figure}"),
    params:
        cfg=step_params("memorization", "figure"),
        io=io_args,
    log:
        log_file("memorization", "figure", "{figure}"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("memorization", "figure")


rule memorization:
    input:
        rules.memorization_evaluate.output,
        [f for name in MEM_FIGURES for f in figure("memorization", name)],
