# AutoDA (arXiv:2105.03931): train the binary search model and the held-out models ->
# program search (pruned, and random search without pruning) -> every attack method on each
# held-out model in lockstep -> metrics and figures.

AUTODA = CFG.scale_section("autoda")
AUTODA_DATA = AUTODA["data"]["dataset"]
AUTODA_CURVES = [result("autoda", "tables", "curves", f"{t}.parquet") for t in AUTODA["targets"]]
AUTODA_SEARCHES = [result("autoda", "tables", "search", f"{v}.json") for v in ("pruned", "random")]
PAPER_DATA["autoda"] = [prepared(AUTODA_DATA, "train"), prepared(AUTODA_DATA, "test")]


wildcard_constraints:
    autoda_model="|".join(AUTODA["models"]),
    autoda_target="|".join(AUTODA["targets"]),


rule autoda_train:
    input:
        train=prepared(AUTODA_DATA, "train"),
        test=prepared(AUTODA_DATA, "test"),
    output:
        model=result("autoda", "models", "{autoda_model}.pt"),
        history=result("autoda", "tables", "history", "{autoda_model}.parquet"),
    params:
        cfg=step_params("autoda", "train", only={"models": "autoda_model"}),
        io=io_args,
    log:
        log_file("autoda", "train", "{autoda_model}"),
    threads: {"smoke": 1, "paper": 8}[SCALE]
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("autoda", "train")


rule autoda_search:
    input:
        model=result("autoda", "models", "search.pt"),
        test=prepared(AUTODA_DATA, "test"),
    output:
        search=result("autoda", "tables", "search", "pruned.json"),
    params:
        cfg=step_params("autoda", "search"),
        io=io_args,
    log:
        log_file("autoda", "search"),
    threads: {"smoke": 1, "paper": 8}[SCALE]
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("autoda", "search")


rule autoda_random_search:
    input:
        model=result("autoda", "models", "search.pt"),
        test=prepared(AUTODA_DATA, "test"),
        pruned=rules.autoda_search.output.search,
    output:
        search=result("autoda", "tables", "search", "random.json"),
    params:
        cfg=step_params("autoda", "random_search"),
        io=io_args,
    log:
        log_file("autoda", "random_search"),
    threads: {"smoke": 1, "paper": 8}[SCALE]
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("autoda", "random_search")


rule autoda_attack:
    input:
        model=result("autoda", "models", "{autoda_target}.pt"),
        found=rules.autoda_search.output.search,
        test=prepared(AUTODA_DATA, "test"),
    output:
        curves=result("autoda", "tables", "curves", "{autoda_target}.parquet"),
    params:
        cfg=step_params("autoda", "attack", only={"targets": "autoda_target"}),
        io=io_args,
    log:
        log_file("autoda", "attack", "{autoda_target}"),
    threads: {"smoke": 1, "paper": 8}[SCALE]
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("autoda", "attack")


rule autoda_evaluate:
    input:
        searches=AUTODA_SEARCHES,
        curves=AUTODA_CURVES,
    output:
        metrics=metrics_json("autoda"),
    params:
        cfg=step_params("autoda", "evaluate"),
        io=io_args,
    log:
        log_file("autoda", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("autoda", "evaluate")


rule autoda_figures:
    input:
        searches=AUTODA_SEARCHES,
        curves=AUTODA_CURVES,
    output:
        search_progress=figure("autoda", "search_progress"),
        pruning=figure("autoda", "pruning"),
        curves=figure("autoda", "curves"),
        programs=result("autoda", "programs.md"),
    params:
        cfg=step_params("autoda", "figures"),
        io=io_args,
    log:
        log_file("autoda", "figures"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("autoda", "figures")


rule autoda:
    input:
        rules.autoda_evaluate.output.metrics,
        rules.autoda_figures.output,
