# Example paper (stand-in until real papers land): train -> evaluate -> figures.

PAPER_DATA["example"] = [prepared("digits", "train"), prepared("digits", "test")]


rule example_train:
    input:
        train=prepared("digits", "train"),
    output:
        model=result("example", "models", "model.pt"),
        history=result("example", "tables", "history.parquet"),
    params:
        cfg=step_params("example", "data", "train"),
        io=io_args,
    log:
        log_file("example", "train"),
    threads: 4
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("example", "train")


rule example_evaluate:
    input:
        model=rules.example_train.output.model,
        history=rules.example_train.output.history,
        test=prepared("digits", "test"),
    output:
        metrics=metrics_json("example"),
        predictions=result("example", "tables", "predictions.parquet"),
    params:
        cfg=step_params("example", "data"),
        io=io_args,
    log:
        log_file("example", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("example", "evaluate")


rule example_figures:
    input:
        history=rules.example_train.output.history,
        predictions=rules.example_evaluate.output.predictions,
    output:
        loss_curve=figure("example", "loss_curve"),
        confusion=figure("example", "confusion"),
    params:
        cfg=step_params("example", plot=True),
        io=io_args,
    log:
        log_file("example", "figures"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("example", "figures")


rule example:
    input:
        rules.example_evaluate.output.metrics,
        rules.example_figures.output,
