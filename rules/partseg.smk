# Unsupervised part segmentation by disentangling appearance and shape (arXiv:2105.12405):
#   generate (per procedural data set) -> train (per run: model, ablation or SCOPS-like
#   baseline; trains, then scores on the test split) -> evaluate -> figures.

PS_CFG = CFG.scale_section("partseg")
PS_RUNS = list(PS_CFG["runs"])
PS_GENERATED = list(PS_CFG["data"])
PS_EVAL = PS_CFG["evaluation"]

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


def ps_split(split):
    """A run's split: generated at smoke scale, a prepared dataset at paper scale."""

    def path(wildcards):
        data = PS_CFG["runs"][wildcards.ps_run]["data"]
        if data in PS_GENERATED:
            return result("partseg", "data", data, f"{split}.npz")
        return prepared(data, split)

    return path


def ps_params(*sections, narrow=None):
    """The step's config sections, narrowed to the job's wildcard ({section: wildcard})."""
    return lambda wc: step_params(
        "partseg", *sections, only={s: getattr(wc, w) for s, w in (narrow or {}).items()}
    )


rule partseg_generate:
    output:
        train=result("partseg", "data", "{ps_data}", "train.npz"),
        test=result("partseg", "data", "{ps_data}", "test.npz"),
    params:
        cfg=ps_params("data", narrow={"data": "ps_data"}),
        io=io_args,
    log:
        log_file("partseg", "generate-{ps_data}"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "generate")


rule partseg_train:
    input:
        train=ps_split("train"),
        test=ps_split("test"),
    output:
        model=result("partseg", "models", "{ps_run}.pt"),
        history=result("partseg", "tables", "history", "{ps_run}.parquet"),
        scores=result("partseg", "scores", "{ps_run}.json"),
        predictions=result("partseg", "predictions", "{ps_run}.npz"),
    params:
        cfg=ps_params("runs", "model", "train", "evaluation", narrow={"runs": "ps_run"}),
        io=io_args,
    log:
        log_file("partseg", "train-{ps_run}"),
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
        cfg=step_params("partseg"),
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
        cfg=step_params("partseg", plot=True),
        io=io_args,
    log:
        log_file("partseg", "figure_overlays"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "figure-overlays")


rule partseg_figure_landmark_error:
    input:
        table=rules.partseg_evaluate.output.table,
    output:
        figure=figure("partseg", "landmark_error"),
    params:
        cfg=step_params("partseg", plot=True),
        io=io_args,
    log:
        log_file("partseg", "figure_landmark_error"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "figure-landmark-error")


rule partseg_figure_foreground_iou:
    input:
        table=rules.partseg_evaluate.output.table,
    output:
        figure=figure("partseg", "foreground_iou"),
    params:
        cfg=step_params("partseg", plot=True),
        io=io_args,
    log:
        log_file("partseg", "figure_foreground_iou"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "figure-foreground-iou")


rule partseg_figure_tsne:
    input:
        predictions=expand(rules.partseg_train.output.predictions, ps_run=PS_EVAL["tsne_run"]),
    output:
        figure=figure("partseg", "part_tsne"),
    params:
        cfg=step_params("partseg", plot=True),
        io=io_args,
    log:
        log_file("partseg", "figure_tsne"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("partseg", "figure-tsne")


rule partseg:
    input:
        rules.partseg_evaluate.output,
        rules.partseg_figure_overlays.output,
        rules.partseg_figure_landmark_error.output,
        rules.partseg_figure_foreground_iou.output,
        rules.partseg_figure_tsne.output,
