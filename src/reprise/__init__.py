"""reprise: re-run ten 2021 papers end to end as one Snakemake + DVC workflow.

This module stays import-light (no torch, no pandas): the Snakefile imports the config
layer at parse time, and a no-op `snakemake` must stay fast.
"""

__version__ = "0.1.0"
