"""Exploring Memorization in Adversarial Training (Dong et al., arXiv:2106.01606, ICLR 2022).

Two experiments on the shared adversarial core:
- random labels: PGD-AT and TRADES on true and on random labels (noise rate 1.0), with the
  per-epoch accuracies and squared gradient norm, then complexity measures of the models;
- temporal ensembling (TE): PGD-AT, PGD-AT+TE, TRADES, TRADES+TE, each evaluated at its best
  and final checkpoint (natural, PGD-20, CW-20); a `_noisy` run trains on labels with
  symmetric noise (te.label_noise), the regime where robust overfitting shows at small scale.

Torch-free: the names below and METRICS (metrics.py) are all the workflow and the claims need.
"""

DATASETS = ("digits", "cifar10", "cifar100", "svhn")
LABEL_METHODS = ("pgd_at", "trades")
LABEL_KINDS = ("true", "random")
# each run without TE -> its TE partner; `_noisy`: on noisy training labels (te.label_noise)
TE_PAIRS = {
    "pgd_at": "pgd_at_te",
    "trades": "trades_te",
    "pgd_at_noisy": "pgd_at_te_noisy",
    "trades_noisy": "trades_te_noisy",
}
TE_RUNS = tuple(r for pair in TE_PAIRS.items() for r in pair)
CHECKPOINTS = ("best", "final")
# pgd10: the per-epoch test monitor; autoattack: Croce and Hein's (APGD-CE + APGD-T at smoke)
TE_ATTACKS = ("natural", "pgd20", "cw20", "autoattack", "pgd10")
COMPLEXITY = ("log_spectral_product", "frobenius_sum", "path_norm", "pac_bayes_flatness")
# a measure "explains" robust generalisation when it ranks the random-label model above the
# true-label one with a one-sided Welch test over training seeds at this level
EXPLAINS_ALPHA = 0.05
# the complexity claim: at most this fraction of the measures explains it (the relabelled
# pass rate in metrics.json is of this bound)
EXPLAINING_BOUND = 0.5


from reprise.papers.memorization.metrics import METRICS  # noqa: E402, F401  (reads the names above)
