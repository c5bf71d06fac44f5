# reprise: re-run ten 2021 papers end to end.
#   snakemake                          every enabled paper at smoke scale + the claims report
#   snakemake <paper>                  one paper (its figures and metrics)
#   snakemake --config scale=paper     the papers' own data and hyperparameters (GPU/SLURM)
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# `snakemake --report results/smoke/report.html`: every figure with its caption, the claims.
report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/cecu2si2.smk"
include: "rules/memorization.smk"
include: "rules/rejection.smk"
include: "rules/b3d.smk"
include: "rules/speech.smk"
include: "rules/flexit.smk"
include: "rules/upl.smk"
include: "rules/partseg.smk"
include: "rules/autoda.smk"
include: "rules/poisoning.smk"
include: "rules/libre.smk"
include: "rules/data.smk"
include: "rules/report.smk"


check_contract()


rule all:
    input:
        [paper_target(p) for p in ENABLED],
        REPORT,
    default_target: True
