"""Unsupervised part segmentation by disentangling appearance and shape (Liu et al.,
arXiv:2105.12405, CVPR 2021), with a SCOPS-like baseline and the paper's ablations.

Smoke scale: procedurally drawn faces and birds with exact part masks and landmarks
(generate.py). Paper scale: CelebA/MAFL, AFLW, CUB and PASCAL loaders (datasets.py).
The model, warps and losses are in model.py; training in train.py; evaluation (landmark
regression, foreground IoU, NMI/ARI) in evaluate.py.

Torch-free: the workflow imports this module to plan the DAG.
"""

from reprise.papers.partseg.metrics import METRICS  # noqa: F401  (the declared metric keys)
