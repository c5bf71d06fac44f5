# Config, paths and job params of rules/memorization.smk (functions only: snakemake's lint
# wants rules and functions in separate files).

MEM = CFG.scale_section("memorization")
MEM_LABELS = MEM["random_labels"]
MEM_TE = MEM["te"]


def mem_path(kind, *parts):
    return result("memorization", kind, *parts)


def mem_label_files(dataset, folder, ext):
    """The random-label experiment's models (folder "models", ext "pt") or per-epoch tables
    ("tables", "parquet") of one dataset."""
    return [
        mem_path(folder, "labels", dataset, f"{m}-{k}.{ext}")
        for m in MEM_LABELS["methods"]
        for k in MEM_LABELS["labels"]
    ]


def mem_te_files(dataset, folder, suffix):
    """One file per TE run of a dataset: models "{run}.pt" / "{run}-best.pt", or tables."""
    return [mem_path(folder, "te", dataset, f"{r}{suffix}") for r in MEM_TE["runs"]]


MEM_LABEL_HISTORIES = [
    f for d in MEM_LABELS["datasets"] for f in mem_label_files(d, "tables", "parquet")
]
MEM_TE_HISTORIES = [f for d in MEM_TE["datasets"] for f in mem_te_files(d, "tables", ".parquet")]
MEM_SUMMARY = {
    name: mem_path("tables", f"{name}.parquet")
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


def mem_te_models(wildcards):
    """Every TE run's best and final checkpoint of one dataset (what attack_te evaluates)."""
    return [
        f
        for suffix in ("-best.pt", ".pt")
        for f in mem_te_files(wildcards.dataset, "models", suffix)
    ]
