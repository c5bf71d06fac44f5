"""The transducer lattice's forward-backward on the CPU, compiled (numba): log P(y|x) per
utterance and its gradient with respect to every blank and emission log probability, in one
pass of two loops over each utterance's own (T, U+1) grid.

loss._ForwardBackward uses it for CPU tensors. The torch recursion there runs T + U
anti-diagonal steps of three small tensor operations each way, and on a CPU those steps are
overhead, not arithmetic (about 10% of a smoke training epoch); on a GPU the tensor
recursion stays. Both compute the same quantities (tests/test_speech_loss.py), this one in
float64.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _logaddexp(a: float, b: float) -> float:
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


@numba.njit(cache=True)
def forward_backward(blank, emit, t_len, u_len):
    """blank (B, T, U+1) and emit (B, T, U) log probabilities (cells outside an utterance's
    grid are ignored), t_len and u_len (B,) int64. Returns log P(y|x) (B,) and
    its gradients: d_blank (B, T, U+1) and d_emit (B, T, U) in the inputs' dtype, each the
    posterior probability that an alignment takes the transition, zero outside the grids."""
    b_n = blank.shape[0]
    score = np.empty(b_n)
    d_blank = np.zeros_like(blank)
    d_emit = np.zeros_like(emit)
    for b in range(b_n):
        t_n, u_n = t_len[b], u_len[b]
        alpha = np.empty((t_n, u_n + 1))
        for t in range(t_n):
            for u in range(u_n + 1):
                if t == 0 and u == 0:
                    alpha[t, u] = 0.0
                elif t == 0:
                    alpha[t, u] = alpha[t, u - 1] + emit[b, t, u - 1]
                elif u == 0:
                    alpha[t, u] = alpha[t - 1, u] + blank[b, t - 1, u]
                else:
                    alpha[t, u] = _logaddexp(
                        alpha[t - 1, u] + blank[b, t - 1, u], alpha[t, u - 1] + emit[b, t, u - 1]
                    )
        # beta(t, u): log P(the rest, final blank included | at (t, u))
        beta = np.empty((t_n, u_n + 1))
        for t in range(t_n - 1, -1, -1):
            for u in range(u_n, -1, -1):
                if t == t_n - 1 and u == u_n:
                    beta[t, u] = blank[b, t, u]
                elif t == t_n - 1:
                    beta[t, u] = beta[t, u + 1] + emit[b, t, u]
                elif u == u_n:
                    beta[t, u] = beta[t + 1, u] + blank[b, t, u]
                else:
                    beta[t, u] = _logaddexp(
                        beta[t + 1, u] + blank[b, t, u], beta[t, u + 1] + emit[b, t, u]
                    )
        total = beta[0, 0]
        score[b] = total
        # a posterior is at most 1: the clamp only bites at rounding error, or where no path is
        # allowed (Ar-RNNT), whose NEG-sized terms would overflow exp
        for t in range(t_n):
            for u in range(u_n + 1):
                if t < t_n - 1:
                    p = alpha[t, u] + blank[b, t, u] + beta[t + 1, u] - total
                    d_blank[b, t, u] = math.exp(min(p, 0.0))
                elif u == u_n:
                    p = alpha[t, u] + blank[b, t, u] - total
                    d_blank[b, t, u] = math.exp(min(p, 0.0))
                if u < u_n:
                    p = alpha[t, u] + emit[b, t, u] + beta[t, u + 1] - total
                    d_emit[b, t, u] = math.exp(min(p, 0.0))
    return score, d_blank, d_emit


def warm() -> None:
    """Compile (or load from numba's cache) before the first training step needs it."""
    blank = np.zeros((1, 2, 2), np.float32)
    forward_backward(blank, blank[:, :, :1].copy(), np.array([2]), np.array([1]))
