"""Flexi-Transducer (Mahadeokar et al., Interspeech 2021, arXiv:2104.02232).

One streaming Emformer transducer serves voice commands (fast response) and dictation
(accuracy, more latency allowed) through three techniques: a per-domain segment size switched
at inference, Alignment-Restricted RNN-T (Ar-RNNT) with a tight emission buffer for commands,
and a domain-indicator vector as input. Compared with one model trained on both domains with
one segment size and plain RNN-T: WER, real-time factor and token emission delay per domain,
one technique at a time and all together, and latency-WER curves over the dictation segment
size and the command b_r. Models come from the speech core's zoo (config/speech.yaml).
"""

from reprise.papers.flexit.metrics import METRICS

__all__ = ["METRICS"]
