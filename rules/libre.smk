# LiBRe (arXiv:2103.14835): pretrain (dnn, transfer) -> finetune (per method) -> transfer |
# score (per detector) | cost -> evaluate -> figures.

LIBRE = CFG.scale_section("libre")
LIBRE_DATA = LIBRE["data"]["dataset"]
LIBRE_TRAIN, LIBRE_TEST = prepared(LIBRE_DATA, "train"), prepared(LIBRE_DATA, "test")
PAPER_DATA["libre"] = [LIBRE_TRAIN, LIBRE_TEST]


# The model each detector scores: the plain DNN (KD, LID) or a fine-tuned refinement.
LIBRE_MODELS = {
    d: (
        result("libre", "models", "pretrained", "dnn.pt")
        if d == "dnn"
        else result("libre", "models", "refined", f"{d}.pt")
    )
    for d in LIBRE["detectors"]
}


wildcard_constraints:
    network="dnn|transfer",
    method="|".join(LIBRE["methods"]),
    detector="|".join(LIBRE["detectors"]),


rule libre_pretrain:
    input:
        train=LIBRE_TRAIN,
        test=LIBRE_TEST,
    output:
        model=result("libre", "models", "pretrained", "{network}.pt"),
        history=result("libre", "tables", "pretrain", "{network}.parquet"),
    params:
        cfg=step_params("libre", "pretrain", only={"networks": "network"}),
        io=io_args,
    log:
        log_file("libre", "pretrain", "{network}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("libre", "pretrain")


rule libre_finetune:
    input:
        dnn=result("libre", "models", "pretrained", "dnn.pt"),
        train=LIBRE_TRAIN,
        test=LIBRE_TEST,
    output:
        model=result("libre", "models", "refined", "{method}.pt"),
        history=result("libre", "tables", "finetune", "{method}.parquet"),
    params:
        cfg=step_params("libre", "finetune", only={"methods": "method"}),
        io=io_args,
    log:
        log_file("libre", "finetune", "{method}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("libre", "finetune")


rule libre_transfer:
    input:
        model=result("libre", "models", "pretrained", "transfer.pt"),
        test=LIBRE_TEST,
    output:
        adversarial=result("libre", "data", "transfer.pt"),
    params:
        cfg=step_params("libre", "transfer"),
        io=io_args,
    log:
        log_file("libre", "transfer"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("libre", "transfer")


rule libre_score:
    input:
        model=lambda w: LIBRE_MODELS[w.detector],
        train=LIBRE_TRAIN,
        test=LIBRE_TEST,
        transfer=rules.libre_transfer.output.adversarial,
    output:
        scores=result("libre", "tables", "scores", "{detector}.parquet"),
    params:
        cfg=step_params("libre", "score", only={"detectors": "detector"}),
        io=io_args,
    log:
        log_file("libre", "score", "{detector}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("libre", "score")


rule libre_cost:
    input:
        dnn=LIBRE_MODELS["dnn"],
        libre=LIBRE_MODELS["libre"],
        mc_dropout=LIBRE_MODELS["mc_dropout"],
        test=LIBRE_TEST,
    output:
        cost=result("libre", "tables", "cost.json"),
    params:
        cfg=step_params("libre", "cost"),
        io=io_args,
    log:
        log_file("libre", "cost"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("libre", "cost")


rule libre_evaluate:
    input:
        scores=expand(result("libre", "tables", "scores", "{d}.parquet"), d=LIBRE["detectors"]),
        cost=rules.libre_cost.output.cost,
    output:
        metrics=metrics_json("libre"),
        detection=result("libre", "tables", "detection.parquet"),
        accuracy=result("libre", "tables", "accuracy.parquet"),
    params:
        cfg=step_params("libre", "evaluate"),
        io=io_args,
    log:
        log_file("libre", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("libre", "evaluate")


rule libre_figures:
    input:
        scores=rules.libre_evaluate.input.scores,
        detection=rules.libre_evaluate.output.detection,
        cost=rules.libre_cost.output.cost,
    output:
        auroc_table=figure("libre", "auroc_table"),
        tpr=figure("libre", "tpr_at_fpr"),
        densities=figure("libre", "uncertainty_densities"),
        roc=figure("libre", "roc_curves"),
        cost=figure("libre", "inference_cost"),
    params:
        cfg=step_params("libre", "figures"),
        io=io_args,
    log:
        log_file("libre", "figures"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("libre", "figures")


rule libre:
    input:
        rules.libre_evaluate.output,
        rules.libre_figures.output,
