# Exploring Memorization in Adversarial Training (arXiv:2106.01606), two experiments:
#   random labels: train_labels (method x labels x dataset) -> complexity (per dataset)
#   temporal ensembling: train_te (run x dataset) -> attack_te (per dataset)
# -> evaluate (metrics.json, summary tables) -> one figure job per figure.

MEM = CFG.scale_section("memorization")
MEM_LABELS = MEM["random_labels"]
MEM_TE = MEM["te"]


def mem_path(kind, *parts):
    return result("memorization", kind, *parts)


def mem_job_params(section, *narrow, others=("data", "accel")):
    """step_params with `section`'s lists narrowed to this job's wildcards (e.g. datasets ->
    [wildcards.dataset]): editing one run's entry re-runs only its jobs."""

    def params(wildcards):
        cfg = json.loads(step_params("memorization", section, *others))
        for key, wildcard in narrow:
            cfg[section][key] = [wildcards[wildcard]]
        return json.dumps(cfg, sort_keys=True)

    return params


def mem_label_files(dataset, folder, ext):
    """The random-label experiment's models (folder "models", ext "pt") or per-epoch tables
    ("tables", "parquet") of one dataset."""
    return [
        mem_path(folder, "labels", dataset, f"{m}-{k}.{ext}")
        for m in MEM_LABELS["methods"]
        for k in MEM_LABELS["labels"]
    ]


def mem_te_files(dataset, folder, suffix):
    """One file per TE run of a dataset: models "{run}.pt" / "{run}-best.pt", or tables."""
    return [mem_path(folder, "te", dataset, f"{r}{suffix}") for r in MEM_TE["runs"]]


MEM_LABEL_HISTORIES = [
    f for d in MEM_LABELS["datasets"] for f in mem_label_files(d, "tables", "parquet")
]
MEM_TE_HISTORIES = [f for d in MEM_TE["datasets"] for f in mem_te_files(d, "tables", ".parquet")]
MEM_SUMMARY = {
    name: mem_path("tables", f"{name}.parquet")
    for name in ("random_labels", "complexity", "best_final")
}
# figure -> the tables it reads
MEM_FIGURES = {
    "accuracy_curves": MEM_LABEL_HISTORIES,
    "grad_norm": MEM_LABEL_HISTORIES,
    "complexity": [MEM_SUMMARY["complexity"]],
    "te_curves": MEM_TE_HISTORIES,
    "best_final": [MEM_SUMMARY["best_final"]],
}

PAPER_DATA["memorization"] = sorted(
    {prepared(d, s) for d in MEM_LABELS["datasets"] + MEM_TE["datasets"] for s in ("train", "test")}
)


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
        cfg=mem_job_params(
            "random_labels", ("datasets", "dataset"), ("methods", "method"), ("labels", "labels")
        ),
        io=io_args,
    log:
        log_file("memorization", "train_labels-{dataset}-{method}-{labels}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("memorization", "train-labels")


rule memorization_complexity:
    input:
        models=lambda wc: mem_label_files(wc.dataset, "models", "pt"),
        train=prepared("{dataset}", "train"),
    output:
        table=mem_path("tables", "complexity", "{dataset}.parquet"),
    params:
        cfg=mem_job_params(
            "random_labels", ("datasets", "dataset"), others=("complexity", "data", "accel")
        ),
        io=io_args,
    log:
        log_file("memorization", "complexity-{dataset}"),
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
        cfg=mem_job_params("te", ("datasets", "dataset"), ("runs", "run")),
        io=io_args,
    log:
        log_file("memorization", "train_te-{dataset}-{run}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("memorization", "train-te")


rule memorization_attack_te:
    input:
        models=lambda wc: mem_te_files(wc.dataset, "models", "-best.pt")
        + mem_te_files(wc.dataset, "models", ".pt"),
        test=prepared("{dataset}", "test"),
    output:
        table=mem_path("tables", "te_eval", "{dataset}.parquet"),
    params:
        cfg=mem_job_params("te", ("datasets", "dataset")),
        io=io_args,
    log:
        log_file("memorization", "attack_te-{dataset}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("memorization", "attack-te")


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
        cfg=step_params("memorization"),
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
        cfg=step_params("memorization", plot=True),
        io=io_args,
        step=lambda wc: "figure-" + wc.figure.replace("_", "-"),
    log:
        log_file("memorization", "figure-{figure}"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("memorization", "{params.step}")


rule memorization:
    input:
        rules.memorization_evaluate.output,
        [f for name in MEM_FIGURES for f in figure("memorization", name)],
