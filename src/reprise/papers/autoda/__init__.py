"""AutoDA (Fu et al., arXiv:2105.03931): random search over straight-line programs for
decision-based attacks, pruned by cheap checks, evaluated in lockstep against HopSkipJump,
Boundary, Sign-OPT and Evolutionary."""

from reprise.papers.autoda.metrics import METRICS

__all__ = ["METRICS"]
