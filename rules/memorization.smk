# Exploring Memorization in Adversarial Training (arXiv:2106.01606), two experiments:
#   random labels: train_labels (method x labels x dataset) -> complexity (per dataset)
#   temporal ensembling: train_te (run x dataset) -> attack_te (per dataset)
# -> evaluate (metrics.json, summary tables) -> one figure job per figure.


MEM = CFG.scale_section("memorization")
MEM_LABELS = MEM["random_labels"]
MEM_TE = MEM["te"]
# The random-label runs of one dataset: models (folder "models", ext "pt") or per-epoch tables
# ("tables", "parquet"); one file per TE run: models "{run}.pt" / "{run}-best.pt", or tables.
# Every method and label kind at the first seed; PGD-AT (the complexity models) at each seed.
MEM_SEEDS = MEM_LABELS["seeds"]
MEM_LABEL_FILES = lambda dataset, folder, ext, seeds=MEM_SEEDS[:1]: [
    result("memorization", folder, "labels", dataset, f"{m}-{k}-seed{s}.{ext}")
    for m in MEM_LABELS["methods"]
    for k in MEM_LABELS["labels"]
    for s in (seeds if m == "pgd_at" else MEM_SEEDS[:1])
]
MEM_TE_FILES = lambda dataset, folder, suffix: [
    result("memorization", folder, "te", dataset, f"{r}{suffix}") for r in MEM_TE["runs"]
]
MEM_LABEL_HISTORIES = [
    f for d in MEM_LABELS["datasets"] for f in MEM_LABEL_FILES(d, "tables", "parquet")
]
MEM_TE_HISTORIES = [f for d in MEM_TE["datasets"] for f in MEM_TE_FILES(d, "tables", ".parquet")]
MEM_SUMMARY = {
    name: result("memorization", "tables", f"{name}.parquet")
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
    run="|".join(reprise_papers.package("memorization").TE_RUNS),
    seed="\\d+",
    figure="|".join(MEM_FIGURES),


rule memorization_train_labels:
    input:
        train=prepared("{dataset}", "train"),
        test=prepared("{dataset}", "test"),
    output:
        model=result("memorization", "models", "labels", "{dataset}", "{method}-{labels}-seed{seed}.pt"),
        history=result(
            "memorization", "tables", "labels", "{dataset}", "{method}-{labels}-seed{seed}.parquet"
        ),
    params:
        cfg=step_params(
            "memorization",
            "train_labels",
            only={
                "random_labels.datasets": "dataset",
                "random_labels.methods": "method",
                "random_labels.labels": "labels",
                "random_labels.seeds": "seed",
            },
        ),
        io=io_args,
    log:
        log_file("memorization", "train_labels", "{dataset}", "{method}", "{labels}", "seed{seed}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("memorization", "train_labels")


rule memorization_complexity:
    input:
        models=lambda wc: MEM_LABEL_FILES(wc.dataset, "models", "pt", MEM_SEEDS),
        train=prepared("{dataset}", "train"),
    output:
        table=result("memorization", "tables", "complexity", "{dataset}.parquet"),
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
        model=result("memorization", "models", "te", "{dataset}", "{run}.pt"),
        best=result("memorization", "models", "te", "{dataset}", "{run}-best.pt"),
        history=result("memorization", "tables", "te", "{dataset}", "{run}.parquet"),
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
        # every TE run's best and final checkpoint of the dataset
        models=lambda wc: [
            f for suffix in ("-best.pt", ".pt") for f in MEM_TE_FILES(wc.dataset, "models", suffix)
        ],
        test=prepared("{dataset}", "test"),
    output:
        table=result("memorization", "tables", "te_eval", "{dataset}.parquet"),
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
        complexity=[result("memorization", "tables", "complexity", f"{d}.parquet") for d in MEM_LABELS["datasets"]],
        te_histories=MEM_TE_HISTORIES,
        te_tables=[result("memorization", "tables", "te_eval", f"{d}.parquet") for d in MEM_TE["datasets"]],
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
        # plain paths: the report flag belongs to the figure rule's outputs
        [str(f) for name in MEM_FIGURES for f in figure("memorization", name)],
