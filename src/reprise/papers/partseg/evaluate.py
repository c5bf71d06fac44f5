"""Evaluation of part maps against the exact ground truth (numpy + scikit-learn).

- Landmarks: the K part centroids of each image -> its L landmarks by one linear map without
  intercept, fitted by least squares on the train split; the error is the mean
  point-to-point distance on the test split divided by the image's normaliser
  (inter-ocular distance for faces, bounding-box edge for birds), in percent.
- Foreground IoU: the pixels not assigned to the background channel against the object mask.
- NMI / ARI: the part label the model gives each ground-truth keypoint's pixel against the
  keypoint's identity (scikit-learn), with a permutation baseline for chance.
- Part NMI: the predicted part of every object pixel against its true part (procedural data).
"""

from __future__ import annotations

import numpy as np


def regress_landmarks(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, visible: np.ndarray | None = None
) -> np.ndarray:
    """Least-squares linear map without intercept from centroids (N, K, 2) to landmarks
    (N, L, 2), fitted on train, applied to test -> (M, L, 2). With `visible` (N, L), each
    landmark is fitted on the train images where it is visible (CUB)."""
    a = train_x.reshape(len(train_x), -1).astype(np.float64)
    b = train_y.astype(np.float64)
    vis = np.ones(b.shape[:2], bool) if visible is None else visible
    w = np.zeros((a.shape[1], b.shape[1], 2))
    for j in range(b.shape[1]):
        w[:, j], *_ = np.linalg.lstsq(a[vis[:, j]], b[vis[:, j], j], rcond=None)
    return np.einsum("nf,fld->nld", test_x.reshape(len(test_x), -1), w)


def landmark_error(
    pred: np.ndarray, truth: np.ndarray, norm: np.ndarray, visible: np.ndarray | None = None
) -> float:
    """Mean over images of the mean over (visible) landmarks of |pred - truth| / norm, in %."""
    dist = np.linalg.norm(pred - truth, axis=-1) / norm[:, None]
    if visible is None:
        return float(100 * dist.mean())
    keep = visible.any(1)
    per_image = (dist * visible).sum(1)[keep] / visible.sum(1)[keep]
    return float(100 * per_image.mean())


def foreground_iou(labels: np.ndarray, masks: np.ndarray) -> float:
    """Mean over images of IoU(predicted foreground, true foreground); labels and masks are
    (N, H, W) part indices with 0 = background."""
    pred, true = labels > 0, masks > 0
    inter = (pred & true).sum((1, 2))
    union = (pred | true).sum((1, 2))
    return float(np.mean(np.where(union > 0, inter / np.maximum(union, 1), 1.0)))


def keypoint_labels(labels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The predicted part at each landmark's pixel: (N, H, W), (N, L, 2) px -> (N, L)."""
    n, h, w = labels.shape
    ix = np.clip(np.floor(landmarks[..., 0]).astype(int), 0, w - 1)
    iy = np.clip(np.floor(landmarks[..., 1]).astype(int), 0, h - 1)
    return labels[np.arange(n)[:, None], iy, ix]


def clustering_scores(pred: np.ndarray, visible: np.ndarray | None = None, seed: int = 0):
    """NMI and ARI between the predicted part at each (visible) keypoint (N, L) and the
    keypoint's identity, and the NMI of the same labels shuffled across keypoints (chance)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    truth = np.broadcast_to(np.arange(pred.shape[1]), pred.shape)
    keep = np.ones(pred.shape, bool) if visible is None else visible
    truth, flat = truth[keep], pred[keep]
    shuffled = np.random.default_rng(seed).permutation(flat)
    return {
        "nmi": float(normalized_mutual_info_score(truth, flat)),
        "ari": float(adjusted_rand_score(truth, flat)),
        "nmi_chance": float(normalized_mutual_info_score(truth, shuffled)),
    }


def part_scores(labels: np.ndarray, masks: np.ndarray, seed: int = 0) -> dict[str, float]:
    """NMI between the predicted part and the true part over the object's pixels (N, H, W),
    and the same with the predicted labels shuffled (chance)."""
    from sklearn.metrics import normalized_mutual_info_score

    fg = masks > 0
    truth, pred = masks[fg], labels[fg]
    shuffled = np.random.default_rng(seed).permutation(pred)
    return {
        "part_nmi": float(normalized_mutual_info_score(truth, pred)),
        "part_nmi_chance": float(normalized_mutual_info_score(truth, shuffled)),
    }
