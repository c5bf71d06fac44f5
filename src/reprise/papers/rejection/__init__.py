"""Adversarial Training with Rectified Rejection (Pang et al., arXiv:2105.14785).

AT models (PGD-AT, TRADES, CCAT), each with and without the rectified-rejection (RR) head,
are attacked (PGD with CE/CW loss, multi-target PGD, adaptive PGD and adaptive CW) and
corrupted; Con, R-Con, T-Con and baseline scores (energy, KD, LID, GDA) are judged on how
well they tell correctly from wrongly classified inputs. Metrics are of the first backbone.
"""

AT_METHODS = ("pgd_at", "trades", "ccat")
SCORES = ("con", "rcon", "tcon", "energy", "kd", "lid", "gda")
COUPLED_THRESHOLD = 0.5  # the coupled rule accepts when both Con and R-Con exceed it


def _metrics() -> dict[str, str]:
    m = {}
    for f in AT_METHODS:
        rr = f"{f}_rr"
        m |= {
            f"{f}_clean_acc": f"{f}: clean test accuracy",
            f"{rr}_clean_acc": f"{f}+RR: clean test accuracy",
            f"{rr}_clean_acc_drop": f"{f} minus {f}+RR clean test accuracy",
            f"{rr}_pgd_acc": f"{f}+RR: accuracy under PGD, without rejection",
            f"{rr}_auc_con_pgd": f"{f}+RR: ROC-AUC of Con (correct vs wrong) under PGD",
            f"{rr}_auc_rcon_pgd": f"{f}+RR: ROC-AUC of R-Con under PGD",
            f"{rr}_auc_gain_pgd": f"{f}+RR: AUC of R-Con minus AUC of Con under PGD",
            f"{rr}_auc_con_adaptive_pgd": f"{f}+RR: AUC of Con under PGD adaptive to Con",
            f"{rr}_auc_rcon_adaptive_pgd": f"{f}+RR: AUC of R-Con under PGD adaptive to R-Con",
            f"{rr}_auc_gain_adaptive_pgd": f"{f}+RR: the two adaptive AUCs, R-Con minus Con",
            f"{rr}_auc_gain_pgd_ci_low": f"{f}+RR: lower end of that PGD gain's 95% bootstrap CI",
            f"{rr}_auc_gain_adaptive_pgd_ci_low": (
                f"{f}+RR: lower end of the adaptive gain's 95% bootstrap interval"
            ),
            f"{rr}_pgd_acc_tpr95_rcon": (
                f"{f}+RR: accuracy on PGD inputs accepted by R-Con at the training TPR-95 threshold"
            ),
            f"{rr}_pgd_rejection_gain": f"{f}+RR: that accuracy minus PGD accuracy unrejected",
        }
    return m | {
        "pgd_at_pgd_acc": "PGD-AT: accuracy under PGD, without rejection",
        "pgd_at_auc_con_pgd": "PGD-AT: AUC of Con under PGD",
        "pgd_at_auc_tcon_gain_pgd": "PGD-AT: AUC of T-Con minus AUC of Con under PGD",
        "pgd_at_auc_best_baseline_pgd": "PGD-AT: best AUC of energy, KD, LID, GDA under PGD",
        "pgd_at_rr_auc_gain_over_baselines_pgd": (
            "AUC of R-Con (PGD-AT+RR) minus the best baseline AUC (PGD-AT) under PGD"
        ),
        "pgd_at_rr_auc_gain_pgd_cw": "PGD-AT+RR: AUC R-Con minus Con under PGD with CW loss",
        "pgd_at_rr_auc_gain_multitarget": "PGD-AT+RR: AUC R-Con minus Con, multi-target PGD",
        "pgd_at_rr_auc_gain_adaptive_cw": (
            "PGD-AT+RR: AUC of R-Con minus Con, each under adaptive CW against itself"
        ),
        "pgd_at_rr_adaptive_cw_success_con": (
            "PGD-AT+RR: share of test inputs adaptive CW makes wrong and accepted by Con"
        ),
        "pgd_at_rr_adaptive_cw_success_rcon": (
            "PGD-AT+RR: share of test inputs adaptive CW makes wrong and accepted by R-Con"
        ),
        "pgd_at_rr_coupled_accept_pgd": "PGD-AT+RR: share of PGD inputs the coupled rule accepts",
        "pgd_at_rr_coupled_acc_pgd": "PGD-AT+RR: accuracy on PGD inputs the coupled rule accepts",
        "pgd_at_rr_corruption_auc_con": "PGD-AT+RR: mean AUC of Con over the corrupted splits",
        "pgd_at_rr_corruption_auc_rcon": "PGD-AT+RR: mean AUC of R-Con over the corrupted splits",
        "pgd_at_rr_corruption_auc_gain": "PGD-AT+RR: mean corruption AUC, R-Con minus Con",
    }


METRICS = _metrics()
