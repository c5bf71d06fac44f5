# Datasets: fetch the official files (checksum-verified), prepare one file per split.


wildcard_constraints:
    dataset="|".join(reprise_data.DATASETS),


# On a cluster, downloads run on the submitting (login) node: compute nodes often have no
# internet access.
localrules:
    fetch_dataset,


rule fetch_dataset:
    output:
        f"{DATA}/raw/{{dataset}}/{{filename}}",
    params:
        root=data_root_of,
    log:
        f"{DATA}/logs/fetch-{{dataset}}-{{filename}}.log",
    conda:
        CONDA_ENV
    shell:
        "reprise data fetch {wildcards.dataset} --file {wildcards.filename:q} "
        "--root {params.root} > {log} 2>&1"


rule prepare_dataset:
    input:
        raw_files,
    output:
        f"{DATA}/prepared/{{dataset}}/{{split}}.pt",
    params:
        root=data_root_of,
    log:
        f"{DATA}/logs/prepare-{{dataset}}-{{split}}.log",
    conda:
        CONDA_ENV
    shell:
        "reprise data prepare {wildcards.dataset} --split {wildcards.split} "
        "--root {params.root} > {log} 2>&1"


rule datasets:
    input:
        [f for p in ENABLED for f in PAPER_DATA.get(p, [])],
