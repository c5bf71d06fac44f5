"""Adversarial Training with Rectified Rejection (Pang et al., arXiv:2105.14785).

AT models (PGD-AT, TRADES, CCAT), each with and without the rectified-rejection (RR) head,
are attacked (PGD with CE/CW loss, multi-target PGD, adaptive PGD and adaptive CW) and
corrupted; Con, R-Con, T-Con and baseline scores (energy, KD, LID, GDA) are judged on how
well they tell correctly from wrongly classified inputs. Metrics are of the first backbone.
"""

AT_METHODS = ("pgd_at", "trades", "ccat")
SCORES = ("con", "rcon", "tcon", "energy", "kd", "lid", "gda")
COUPLED_THRESHOLD = 0.5  # the coupled rule accepts when both Con and R-Con exceed it


from reprise.papers.rejection.metrics import METRICS  # noqa: E402, F401  (reads the names above)
