# B3D (arXiv:2103.13127): a population of clean and backdoored models, trained a chunk at a
# time (one job per dataset × chunk, run in parallel) -> trigger reverse-engineering per
# chunk and method (Neural Cleanse, B3D, B3D-SS; with mitigation) -> evaluate -> figures.

B3D = CFG.scale_section("b3d")
B3D_DATASETS = B3D["datasets"]
B3D_CHUNKS = B3D["chunks"]
B3D_METHODS = list(B3D["methods"])
B3D_FIGURES = ["detection", "roc", "triggers", "norms", "anomaly", "queries"]
PAPER_DATA["b3d"] = [prepared(d, s) for d in B3D_DATASETS for s in ("train", "test")]


wildcard_constraints:
    b3d_chunk=r"\d+",
    b3d_method="|".join(B3D_METHODS),


rule b3d_population:
    input:
        train=prepared("{dataset}", "train"),
        test=prepared("{dataset}", "test"),
    output:
        models=result("b3d", "models", "{dataset}", "chunk{b3d_chunk}.pt"),
        table=result("b3d", "tables", "population", "{dataset}-{b3d_chunk}.parquet"),
    params:
        cfg=step_params(
            "b3d", "population", only={"datasets": "dataset", "chunks": "b3d_chunk"}
        ),
        io=io_args,
    log:
        log_file("b3d", "population", "{dataset}", "{b3d_chunk}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("b3d", "population")


rule b3d_detect:
    input:
        models=rules.b3d_population.output.models,
        test=prepared("{dataset}", "test"),
    output:
        table=result("b3d", "tables", "detect", "{dataset}-{b3d_chunk}-{b3d_method}.parquet"),
    params:
        cfg=step_params("b3d", "detect", only={"methods": "b3d_method"}),
        io=io_args,
    log:
        log_file("b3d", "detect", "{dataset}", "{b3d_chunk}", "{b3d_method}"),
    threads: 1
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("b3d", "detect")


B3D_TABLES = {
    "population": expand(
        rules.b3d_population.output.table, dataset=B3D_DATASETS, b3d_chunk=B3D_CHUNKS
    ),
    "detections": expand(
        rules.b3d_detect.output.table,
        dataset=B3D_DATASETS,
        b3d_chunk=B3D_CHUNKS,
        b3d_method=B3D_METHODS,
    ),
}


rule b3d_evaluate:
    input:
        **B3D_TABLES,
    output:
        metrics=metrics_json("b3d"),
        summary=result("b3d", "tables", "detection.parquet"),
    params:
        cfg=step_params("b3d", "evaluate"),
        io=io_args,
    log:
        log_file("b3d", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("b3d", "evaluate")


rule b3d_figures:
    input:
        **B3D_TABLES,
    output:
        **{name: figure("b3d", name) for name in B3D_FIGURES},
    params:
        cfg=step_params("b3d", "figures"),
        io=io_args,
    log:
        log_file("b3d", "figures"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("b3d", "figures")


rule b3d:
    input:
        rules.b3d_evaluate.output,
        rules.b3d_figures.output,
