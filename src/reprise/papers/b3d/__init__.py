"""B3D: black-box backdoor detection (Dong et al., ICCV 2021, arXiv:2103.13127).

A population of tiny models, half backdoored (BadNets patch, blended trigger), trained a
group at a time; per model and class a trigger is reverse-engineered with NES from output
probabilities (B3D), from synthesised inputs (B3D-SS), or with gradients (Neural Cleanse);
the MAD anomaly index of the per-class mask norms flags backdoored models; flagged models'
inputs are repaired with the reversed trigger.
"""

from reprise.papers.b3d.metrics import METRICS

__all__ = ["METRICS"]
