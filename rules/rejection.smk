# Adversarial Training with Rectified Rejection (arXiv:2105.14785): per backbone and run
# (an AT method ± the RR head) train -> score (attacks, corruptions, baselines) ->
# evaluate -> figures. At smoke scale `corrupt` makes the procedural corruptions.

REJECTION = CFG.scale_section("rejection")
REJECTION_DATA = REJECTION["data"]["dataset"]
# backbone -> its dataset: data.dataset, or the other dataset of data.extra that lists it
REJECTION_DATASET_OF = reprise_papers.package("rejection").backbone_datasets(
    REJECTION["data"], REJECTION["backbones"]
)
REJECTION_CORRUPT = REJECTION["corruptions"]
REJECTION_SPLITS = [
    f"{c}-{s}" for c in REJECTION_CORRUPT["names"] for s in REJECTION_CORRUPT["severities"]
]


# The corrupted test splits: CIFAR-10-C's prepared splits, or the procedural ones.
REJECTION_CORRUPTED = (
    [prepared("cifar10c", s) for s in REJECTION_SPLITS]
    if REJECTION_CORRUPT["source"] == "cifar10c"
    else [result("rejection", "data", "corrupted", f"{s}.pt") for s in REJECTION_SPLITS]
)
# One table per backbone and run: tables/<kind>/<backbone>/<run>.parquet
REJECTION_TABLES = {
    kind: [
        result("rejection", "tables", kind, backbone, f"{run}.parquet")
        for backbone in REJECTION["backbones"]
        for run in REJECTION["runs"]
    ]
    for kind in ("scores", "history")
}
PAPER_DATA["rejection"] = [
    *[
        prepared(d, s)
        for d in dict.fromkeys(REJECTION_DATASET_OF.values())
        for s in ("train", "test")
    ],
    *[f for f in REJECTION_CORRUPTED if f.startswith(f"{DATA}/")],
]
# The prepared split of the dataset the job's backbone trains on; the corrupted test splits
# for a backbone of the primary dataset (none for another dataset's).
REJECTION_SPLIT = lambda split: lambda wc: prepared(REJECTION_DATASET_OF[wc.backbone], split)
REJECTION_CORRUPTED_OF = lambda wc: (
    REJECTION_CORRUPTED if REJECTION_DATASET_OF[wc.backbone] == REJECTION_DATA else []
)


wildcard_constraints:
    backbone="|".join(REJECTION["backbones"]),
    run="|".join(REJECTION["runs"]),


rule rejection_corrupt:
    input:
        test=prepared(REJECTION_DATA, "test"),
    output:
        corrupted=[result("rejection", "data", "corrupted", f"{s}.pt") for s in REJECTION_SPLITS],
    params:
        cfg=step_params("rejection", "corrupt"),
        io=io_args,
    log:
        log_file("rejection", "corrupt"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("rejection", "corrupt")


rule rejection_train:
    input:
        train=REJECTION_SPLIT("train"),
        test=REJECTION_SPLIT("test"),
    output:
        model=result("rejection", "models", "{backbone}", "{run}.pt"),
        history=result("rejection", "tables", "history", "{backbone}", "{run}.parquet"),
    params:
        cfg=step_params("rejection", "train", only={"backbones": "backbone", "runs": "run"}),
        io=io_args,
    log:
        log_file("rejection", "train", "{backbone}", "{run}"),
    threads: {"smoke": 1, "paper": 8}[SCALE]
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("rejection", "train")


rule rejection_score:
    input:
        model=rules.rejection_train.output.model,
        train=REJECTION_SPLIT("train"),
        test=REJECTION_SPLIT("test"),
        corrupted=REJECTION_CORRUPTED_OF,
    output:
        scores=result("rejection", "tables", "scores", "{backbone}", "{run}.parquet"),
    params:
        cfg=step_params("rejection", "score", only={"backbones": "backbone", "runs": "run"}),
        io=io_args,
    log:
        log_file("rejection", "score", "{backbone}", "{run}"),
    threads: {"smoke": 1, "paper": 8}[SCALE]
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("rejection", "score")


rule rejection_evaluate:
    input:
        scores=REJECTION_TABLES["scores"],
    output:
        metrics=metrics_json("rejection"),
        detection=result("rejection", "tables", "detection.parquet"),
        acceptance=result("rejection", "tables", "acceptance.parquet"),
        rules=result("rejection", "tables", "rules.parquet"),
        auc=result("rejection", "tables", "auc.parquet"),
        gains=result("rejection", "tables", "auc_gains.parquet"),
        corruptions=result("rejection", "tables", "corruptions.parquet"),
    params:
        cfg=step_params("rejection", "evaluate"),
        io=io_args,
    log:
        log_file("rejection", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("rejection", "evaluate")


rule rejection_figures:
    input:
        scores=REJECTION_TABLES["scores"],
        auc=rules.rejection_evaluate.output.auc,
        corruptions=rules.rejection_evaluate.output.corruptions,
        histories=REJECTION_TABLES["history"],
    output:
        histograms=figure("rejection", "con_rcon_histograms"),
        roc=figure("rejection", "roc_curves"),
        auc_table=figure("rejection", "auc_table"),
        accuracy_rejection=figure("rejection", "accuracy_vs_rejection"),
        corruptions=figure("rejection", "corruptions"),
        training=figure("rejection", "training_curves"),
    params:
        cfg=step_params("rejection", "figures"),
        io=io_args,
    log:
        log_file("rejection", "figures"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("rejection", "figures")


rule rejection:
    input:
        rules.rejection_evaluate.output,
        rules.rejection_figures.output,
