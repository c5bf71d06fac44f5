"""Exploring Memorization in Adversarial Training (Dong et al., arXiv:2106.01606, ICLR 2022).

Two experiments on the shared adversarial core:
- random labels: PGD-AT and TRADES on true and on random labels (noise rate 1.0), with the
  per-epoch accuracies and squared gradient norm, then complexity measures of the models;
- temporal ensembling (TE): PGD-AT, PGD-AT+TE, TRADES, TRADES+TE, each evaluated at its best
  and final checkpoint (natural, PGD-20, CW-20).

Torch-free: the names below and METRICS (metrics.py) are all the workflow and the claims need.
"""

DATASETS = ("digits", "cifar10", "cifar100", "svhn")
LABEL_METHODS = ("pgd_at", "trades")
LABEL_KINDS = ("true", "random")
TE_RUNS = ("pgd_at", "pgd_at_te", "trades", "trades_te")
CHECKPOINTS = ("best", "final")
# pgd10: the per-epoch test monitor; autoattack: Croce and Hein's (APGD-CE + APGD-T at smoke)
TE_ATTACKS = ("natural", "pgd20", "cw20", "autoattack", "pgd10")
COMPLEXITY = ("log_spectral_product", "frobenius_sum", "path_norm", "pac_bayes_flatness")


from reprise.papers.memorization.metrics import METRICS  # noqa: E402, F401  (reads the names above)
