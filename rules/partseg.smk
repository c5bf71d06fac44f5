# Unsupervised part segmentation by disentangling appearance and shape (arXiv:2105.12405):
#   generate (per procedural data set) -> train (per run: model, ablation or SCOPS-like
#   baseline; trains, then scores on the test split) -> evaluate -> figures.

PS_CFG = CFG.scale_section("partseg")
PS_RUNS = list(PS_CFG["runs"])
PS_GENERATED = list(PS_CFG["data"])
PS_EVAL = PS_CFG["evaluation"]
# a run's split: generated at smoke scale (npz), a prepared dataset at paper scale
PS_SPLIT = {
    (run, split): (
        result("partseg", "data", r["data"], f"{split}.npz")
        if r["data"] in PS_GENERATED
        else prepared(r["data"], split)
    )
    for run, r in PS_CFG["runs"].items()
    for split in ("train", "test")
}

PAPER_DATA["partseg"] = sorted(
    {
        prepared(r["data"], s)
        for r in PS_CFG["runs"].values()
        if r["data"] not in PS_GENERATED
        for s in ("train", "test")
    }
)


wildcard_constraints:
    ps_data="|".join(PS_GENERATED) or "none",
    ps_run="|".join(PS_RUNS),


rule partseg_generate:
    output:
        train=result("partseg", "data", "{ps_data}", "train.npz"),
        test=result("partseg", "data", "{ps_data}", "test.npz"),
    params:
        cfg=step_params("partseg", "generate", only={"data": "ps_data"}),
        io=io_args,
    log:
        log_file("partseg", "generate", "{ps_data}"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "generate")


rule partseg_train:
    input:
        train=lambda wc: PS_SPLIT[(wc.ps_run, "train")],
        test=lambda wc: PS_SPLIT[(wc.ps_run, "test")],
    output:
        model=result("partseg", "models", "{ps_run}.pt"),
        history=result("partseg", "tables", "history", "{ps_run}.parquet"),
        scores=result("partseg", "scores", "{ps_run}.json"),
        predictions=result("partseg", "predictions", "{ps_run}.npz"),
    params:
        cfg=step_params("partseg", "train", only={"runs": "ps_run"}),
        io=io_args,
    log:
        log_file("partseg", "train", "{ps_run}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "train")


rule partseg_evaluate:
    input:
        scores=expand(rules.partseg_train.output.scores, ps_run=PS_RUNS),
    output:
        metrics=metrics_json("partseg"),
        table=result("partseg", "tables", "scores.parquet"),
    params:
        cfg=step_params("partseg", "evaluate"),
        io=io_args,
    log:
        log_file("partseg", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "evaluate")


rule partseg_figure_overlays:
    input:
        predictions=expand(rules.partseg_train.output.predictions, ps_run=PS_EVAL["overlay_runs"]),
    output:
        figure=figure("partseg", "part_overlays"),
    params:
        cfg=step_params("partseg", "figure_overlays"),
        io=io_args,
    log:
        log_file("partseg", "figure_overlays"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "figure_overlays")


rule partseg_figure_landmark_error:
    input:
        table=rules.partseg_evaluate.output.table,
    output:
        figure=figure("partseg", "landmark_error"),
    params:
        cfg=step_params("partseg", "figure_landmark_error"),
        io=io_args,
    log:
        log_file("partseg", "figure_landmark_error"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "figure_landmark_error")


rule partseg_figure_foreground_iou:
    input:
        table=rules.partseg_evaluate.output.table,
    output:
        figure=figure("partseg", "foreground_iou"),
    params:
        cfg=step_params("partseg", "figure_foreground_iou"),
        io=io_args,
    log:
        log_file("partseg", "figure_foreground_iou"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "figure_foreground_iou")


rule partseg_figure_tsne:
    input:
        predictions=expand(rules.partseg_train.output.predictions, ps_run=PS_EVAL["tsne_run"]),
    output:
        figure=figure("partseg", "part_tsne"),
    params:
        cfg=step_params("partseg", "figure_tsne"),
        io=io_args,
    log:
        log_file("partseg", "figure_tsne"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "figure_tsne")


rule partseg:
    input:
        rules.partseg_evaluate.output,
        rules.partseg_figure_overlays.output,
        rules.partseg_figure_landmark_error.output,
        rules.partseg_figure_foreground_iou.output,
        rules.partseg_figure_tsne.output,
