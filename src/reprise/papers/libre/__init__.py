"""LiBRe: A Practical Bayesian Approach to Adversarial Detection (Deng et al., CVPR 2021,
arXiv:2103.14835).

A pre-trained classifier's last layers become a deep ensemble initialised from the
pre-trained weights (computed as one batched op), fine-tuned briefly with a hinge that makes
two members disagree on uniformly noised inputs; the variance of the members' features
detects adversarial inputs. Baselines: MC dropout, last-layer and full mean-field VI, KD and
LID; attacks: ten white-box attacks, transfer attacks, SPSA and an adaptive attack.
"""

from reprise.papers.libre.metrics import METRICS

__all__ = ["METRICS"]
