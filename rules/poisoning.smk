# Accumulative Poisoning Attacks on Real-time Data (arXiv:2106.09993):
#   burn_in (per norm) -> online (per variant) -> detect (the default online variant)
#                      -> federated (per variant)
# -> evaluate (metrics.json, ablation and detection tables) -> figures.

POISONING = CFG.scale_section("poisoning")
POISONING_DATA = POISONING["stream"]["dataset"]
POISONING_VARIANTS = {k: list(POISONING[f"{k}_variants"]) for k in ("online", "federated")}


# (setting, variant) -> the burn-in model it attacks: the variant's norm, else the setting's
POISONING_NORM = {
    (kind, v): (POISONING[f"{kind}_variants"][v] or {}).get("norm", POISONING[kind]["norm"])
    for kind, variants in POISONING_VARIANTS.items()
    for v in variants
}
POISONING_MODEL = {
    kind: lambda w, kind=kind: result(
        "poisoning", "models", "burn_in", POISONING_NORM[kind, w.variant] + ".pt"
    )
    for kind in POISONING_VARIANTS
}
POISONING_TABLES = {
    kind: [result("poisoning", "tables", kind, f"{v}.parquet") for v in variants]
    for kind, variants in POISONING_VARIANTS.items()
}


for _kind, _variants in POISONING_VARIANTS.items():
    if "default" not in _variants:
        raise ValueError(
            f"config/papers/poisoning.yaml: {_kind}_variants needs a variant named default "
            f"(the one metrics.json reports); it has {_variants}"
        )
    for _v in _variants:
        if POISONING_NORM[_kind, _v] not in POISONING["norms"]:
            raise ValueError(
                f"config/papers/poisoning.yaml: {_kind}_variants.{_v} attacks a "
                f"{POISONING_NORM[_kind, _v]} model; add it to norms {POISONING['norms']}"
            )


PAPER_DATA["poisoning"] = [prepared(POISONING_DATA, "train"), prepared(POISONING_DATA, "test")]


wildcard_constraints:
    norm="gn|bn",
    variant="|".join(sorted({v for vs in POISONING_VARIANTS.values() for v in vs})),


rule poisoning_burn_in:
    input:
        train=prepared(POISONING_DATA, "train"),
        test=prepared(POISONING_DATA, "test"),
    output:
        model=result("poisoning", "models", "burn_in", "{norm}.pt"),
        history=result("poisoning", "tables", "burn_in", "{norm}.parquet"),
    params:
        cfg=step_params("poisoning", "burn_in", only={"norms": "norm"}),
        io=io_args,
    log:
        log_file("poisoning", "burn_in", "{norm}"),
    threads: {"smoke": 1, "paper": 8}[SCALE]
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("poisoning", "burn_in")


rule poisoning_online:
    input:
        model=POISONING_MODEL["online"],
        train=prepared(POISONING_DATA, "train"),
        test=prepared(POISONING_DATA, "test"),
    output:
        table=result("poisoning", "tables", "online", "{variant}.parquet"),
        batches=result("poisoning", "tables", "online", "{variant}-batches.pt"),
    params:
        cfg=step_params("poisoning", "online", only={"online_variants": "variant"}),
        io=io_args,
    log:
        log_file("poisoning", "online", "{variant}"),
    threads: {"smoke": 1, "paper": 8}[SCALE]
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("poisoning", "online")


rule poisoning_federated:
    input:
        model=POISONING_MODEL["federated"],
        train=prepared(POISONING_DATA, "train"),
        test=prepared(POISONING_DATA, "test"),
    output:
        table=result("poisoning", "tables", "federated", "{variant}.parquet"),
    params:
        cfg=step_params("poisoning", "federated", only={"federated_variants": "variant"}),
        io=io_args,
    log:
        log_file("poisoning", "federated", "{variant}"),
    threads: {"smoke": 1, "paper": 8}[SCALE]
    resources:
        **GPU_STEP,
    conda:
        CONDA_ENV
    shell:
        reprise_step("poisoning", "federated")


rule poisoning_detect:
    input:
        model=result("poisoning", "models", "burn_in", POISONING_NORM["online", "default"] + ".pt"),
        batches=result("poisoning", "tables", "online", "default-batches.pt"),
        train=prepared(POISONING_DATA, "train"),
    output:
        scores=result("poisoning", "tables", "detection_scores.parquet"),
    params:
        cfg=step_params("poisoning", "detect"),
        io=io_args,
    log:
        log_file("poisoning", "detect"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("poisoning", "detect")


rule poisoning_evaluate:
    input:
        online=POISONING_TABLES["online"],
        federated=POISONING_TABLES["federated"],
        scores=rules.poisoning_detect.output.scores,
    output:
        metrics=metrics_json("poisoning"),
        ablation=result("poisoning", "tables", "ablation.parquet"),
        aucs=result("poisoning", "tables", "detection_auc.parquet"),
    params:
        cfg=step_params("poisoning", "evaluate"),
        io=io_args,
    log:
        log_file("poisoning", "evaluate"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("poisoning", "evaluate")


rule poisoning_figures:
    input:
        online=result("poisoning", "tables", "online", "default.parquet"),
        federated=result("poisoning", "tables", "federated", "default.parquet"),
        ablation=rules.poisoning_evaluate.output.ablation,
        scores=rules.poisoning_detect.output.scores,
        aucs=rules.poisoning_evaluate.output.aucs,
    output:
        online=figure("poisoning", "accuracy_online"),
        federated=figure("poisoning", "accuracy_federated"),
        ablation=figure("poisoning", "ablation"),
        detection=figure("poisoning", "detection_roc"),
    params:
        cfg=step_params("poisoning", "figures"),
        io=io_args,
    log:
        log_file("poisoning", "figures"),
    conda:
        CONDA_ENV
    shell:
        reprise_step("poisoning", "figures")


rule poisoning:
    input:
        rules.poisoning_evaluate.output,
        rules.poisoning_figures.output,
