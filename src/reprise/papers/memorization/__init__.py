"""Exploring Memorization in Adversarial Training (Dong et al., arXiv:2106.01606, ICLR 2022).

Two experiments on the shared adversarial core:
- random labels: PGD-AT and TRADES on true and on random labels (noise rate 1.0), with the
  per-epoch accuracies and squared gradient norm, then complexity measures of the models;
- temporal ensembling (TE): PGD-AT, PGD-AT+TE, TRADES, TRADES+TE, each evaluated at its best
  and final checkpoint (natural, PGD-20, CW-20).

Torch-free: the names below are all the workflow and the claims need.
"""

DATASETS = ("digits", "cifar10", "cifar100", "svhn")
LABEL_METHODS = ("pgd_at", "trades")
LABEL_KINDS = ("true", "random")
TE_RUNS = ("pgd_at", "pgd_at_te", "trades", "trades_te")
CHECKPOINTS = ("best", "final")
TE_ATTACKS = ("natural", "pgd20", "cw20", "pgd10")  # pgd10: the per-epoch test monitor
COMPLEXITY = ("log_spectral_product", "frobenius_sum", "path_norm", "pac_bayes_flatness")


def _label_metrics(ds: str) -> dict[str, str]:
    m = {}
    for method in LABEL_METHODS:
        for kind in LABEL_KINDS:
            run = f"{ds}_{method}_{kind}"
            m[f"{run}_train_robust_acc"] = (
                f"{ds}, {method} on {kind} labels: final PGD robust accuracy on the training "
                "set as trained (its labels)"
            )
            m[f"{run}_train_clean_acc"] = (
                f"{ds}, {method} on {kind} labels: final clean train accuracy"
            )
            m[f"{run}_test_clean_acc"] = (
                f"{ds}, {method} on {kind} labels: final clean test accuracy"
            )
            m[f"{run}_test_robust_acc"] = (
                f"{ds}, {method} on {kind} labels: final PGD test accuracy"
            )
    m[f"{ds}_grad_norm_ratio_random"] = (
        f"{ds}, random labels: mean over epochs of the squared gradient norm, TRADES / PGD-AT"
    )
    m[f"{ds}_grad_variability_ratio_random"] = (
        f"{ds}, random labels: std of the epoch-to-epoch change of log10 squared gradient "
        "norm, TRADES / PGD-AT"
    )
    m[f"{ds}_complexity_separating_fraction"] = (
        f"{ds}: fraction of the complexity measures that rank PGD-AT on random labels (cannot "
        "generalise) above PGD-AT on true labels"
    )
    for measure in COMPLEXITY:
        m[f"{ds}_{measure}_random_minus_true"] = (
            f"{ds}, PGD-AT: {measure} on random labels minus on true labels (log10 ratio for "
            "all but log_spectral_product, which is already a log10)"
        )
    return m


def _te_metrics(ds: str) -> dict[str, str]:
    m = {}
    for run in TE_RUNS:
        for ckpt in CHECKPOINTS:
            for attack in TE_ATTACKS:
                m[f"{ds}_{run}_{ckpt}_{attack}"] = (
                    f"{ds}, {run}: {attack} test accuracy of the {ckpt} checkpoint"
                )
        m[f"{ds}_{run}_gap_pgd20"] = f"{ds}, {run}: PGD-20 accuracy, best minus final checkpoint"
    for base in ("pgd_at", "trades"):
        m[f"{ds}_{base}_te_gap_reduction"] = (
            f"{ds}: best-minus-final PGD-20 gap of {base} minus that of {base}+TE"
        )
    return m


METRICS = {k: v for ds in DATASETS for k, v in (_label_metrics(ds) | _te_metrics(ds)).items()}
