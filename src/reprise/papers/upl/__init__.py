"""Dissecting user-perceived latency of on-device E2E speech recognition (Shangguan et al.,
Interspeech 2021, arXiv:2104.02207).

A grid of streaming transducers (sizes, chunk sizes, RNN-T vs Ar-RNNT) from the speech core's
zoo, each decoded once on one thread with every endpointer (the joint end-of-sentence token
and trailing-silence thresholds). A simulated real-time clock, fed with the measured compute
of each chunk, gives the user-perceived latency (UPL: final result available minus end of
speech). Across the configurations: Pearson and Spearman r of UPL against parameters, chunk
size, FLOPs and RTF and against emission delay and endpoint latency, with bootstrap intervals;
UPL CDFs; and the latency-WER trade-off per endpointer, with and without Ar-RNNT.
"""

from reprise.papers.upl.metrics import METRICS

__all__ = ["METRICS"]
