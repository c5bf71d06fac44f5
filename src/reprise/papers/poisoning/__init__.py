"""Accumulative Poisoning Attacks on Real-time Data (Pang et al., NeurIPS 2021, arXiv:2106.09993).

A victim trains in real time (online: one SGD step per incoming batch; federated: one step
per round of client updates) from a burn-in model. A poisoner first runs an accumulative
phase that keeps accuracy nearly intact while turning the model so that one poisoned trigger
update does great harm, then sends the trigger. Compared with the trigger alone, a clean
phase followed by the trigger, and a clean stream; feature-space detectors (KD, LID, GDA)
try to tell the accumulative-phase batches from clean ones.
"""

from reprise.papers.poisoning.metrics import METRICS

__all__ = ["METRICS"]
