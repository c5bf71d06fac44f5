# Adversarial Training with Rectified Rejection (arXiv:2105.14785): per backbone and run
# (an AT framework ± the RR head) train -> score (attacks, corruptions, baselines) ->
# evaluate -> figures. At smoke scale `corrupt` makes the procedural corruptions.

REJECTION = CFG.scale_section("rejection")
REJECTION_DATA = REJECTION["data"]["dataset"]
REJECTION_CORRUPT = REJECTION["corruptions"]
REJECTION_SPLITS = [
    f"{c}-{s}" for c in REJECTION_CORRUPT["names"] for s in REJECTION_CORRUPT["severities"]
]


def rejection_corrupted():
    """The corrupted test splits: CIFAR-10-C's prepared splits, or the procedural ones."""
    if REJECTION_CORRUPT["source"] == "cifar10c":
        return [prepared("cifar10c", s) for s in REJECTION_SPLITS]
    return [result("rejection", "data", "corrupted", f"{s}.pt") for s in REJECTION_SPLITS]


def rejection_each(*parts):
    """One path per backbone and run: results/<scale>/rejection/<parts>/<backbone>/<run>.<ext>"""
    *folders, ext = parts
    return [
        result("rejection", *folders, backbone, f"{run}.{ext}")
        for backbone in REJECTION["backbones"]
        for run in REJECTION["runs"]
    ]


def rejection_run_params(*sections):
    """step_params narrowed to the job's {backbone} and {run}: editing one run's config
    re-runs only its jobs."""

    def params(wildcards):
        cfg = json.loads(step_params("rejection", "backbones", "runs", *sections))
        cfg["backbones"] = {wildcards.backbone: cfg["backbones"][wildcards.backbone]}
        cfg["runs"] = [wildcards.run]
        return json.dumps(cfg, sort_keys=True)

    return params


PAPER_DATA["rejection"] = [
    prepared(REJECTION_DATA, "train"),
    prepared(REJECTION_DATA, "test"),
    *[f for f in rejection_corrupted() if f.startswith(f"{DATA}/")],
]


wildcard_constraints:
    backbone="|".join(REJECTION["backbones"]),
    run="|".join(REJECTION["runs"]),


rule rejection_corrupt:
    input:
        test=prepared(REJECTION_DATA, "test"),
    output:
        corrupted=[result("rejection", "data", "corrupted", f"{s}.pt") for s in REJECTION_SPLITS],
    params:
        cfg=step_params("rejection", "data", "corruptions"),
        io=io_args,
    log:
        log_file("rejection", "corrupt"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("rejection", "corrupt")


rule rejection_train:
    input:
        train=prepared(REJECTION_DATA, "train"),
        test=prepared(REJECTION_DATA, "test"),
    output:
        model=result("rejection", "models", "{backbone}", "{run}.pt"),
        history=result("rejection", "tables", "history", "{backbone}", "{run}.parquet"),
    params:
        cfg=rejection_run_params("data", "train", "attack", "frameworks", "rr", "accel"),
        io=io_args,
    log:
        log_file("rejection", "train-{backbone}-{run}"),
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
        train=prepared(REJECTION_DATA, "train"),
        test=prepared(REJECTION_DATA, "test"),
        corrupted=rejection_corrupted(),
    output:
        scores=result("rejection", "tables", "scores", "{backbone}", "{run}.parquet"),
    params:
        cfg=rejection_run_params("data", "evaluation", "corruptions", "accel"),
        io=io_args,
    log:
        log_file("rejection", "score-{backbone}-{run}"),
    threads: {"smoke": 1, "paper": 8}[SCALE]
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("rejection", "score")


rule rejection_evaluate:
    input:
        scores=rejection_each("tables", "scores", "parquet"),
    output:
        metrics=metrics_json("rejection"),
        detection=result("rejection", "tables", "detection.parquet"),
        acceptance=result("rejection", "tables", "acceptance.parquet"),
        rules=result("rejection", "tables", "rules.parquet"),
        auc=result("rejection", "tables", "auc.parquet"),
        gains=result("rejection", "tables", "auc_gains.parquet"),
        corruptions=result("rejection", "tables", "corruptions.parquet"),
    params:
        cfg=step_params("rejection", "backbones", "evaluation"),
        io=io_args,
    log:
        log_file("rejection", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("rejection", "evaluate")


rule rejection_figures:
    input:
        scores=rejection_each("tables", "scores", "parquet"),
        auc=rules.rejection_evaluate.output.auc,
        corruptions=rules.rejection_evaluate.output.corruptions,
        histories=rejection_each("tables", "history", "parquet"),
    output:
        histograms=figure("rejection", "con_rcon_histograms"),
        roc=figure("rejection", "roc_curves"),
        auc_table=figure("rejection", "auc_table"),
        accuracy_rejection=figure("rejection", "accuracy_vs_rejection"),
        corruptions=figure("rejection", "corruptions"),
        training=figure("rejection", "training_curves"),
    params:
        cfg=step_params("rejection", plot=True),
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
