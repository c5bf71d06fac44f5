"""RNN-T loss and alignment-restricted RNN-T (Ar-RNNT), in plain torch.

The loss is -log P(y | x), summed over every alignment through the (T, U+1) lattice: from
cell (t, u) a blank moves to (t+1, u), emitting y_{u+1} moves to (t, u+1), and the path ends
with a blank out of (T-1, U). The forward variables obey
    alpha(t, u) = logaddexp(alpha(t-1, u) + blank(t-1, u), alpha(t, u-1) + emit(t, u-1)),
so every cell on an anti-diagonal t + u = n depends only on diagonal n-1: the recursion runs
T + U - 1 vector steps instead of T x U scalar ones. Gradients come from the backward
variables beta, by the same recursion run from the end (not autograd through the loop).

Ar-RNNT (Mahadeokar et al., 2021) removes the transitions far from each token's ground-truth
end frame e_u (u = 1..U): emitting y_u is allowed only for t in [e_u - b_l, e_u + b_r], and a
blank in row u only when it arrives at a frame t in [e_u - b_l + 1, e_{u+1} + b_r]
(e_0 = -inf, e_{U+1} = +inf), i.e. leaves frame t - 1. The blank window removes exactly the
cells from which no allowed emission can follow, so the loss sums precisely the alignments
whose every emission lies in its window. Infinite buffers give back RNN-T.
"""

from __future__ import annotations

import math

import torch

NEG = -1e30  # log(0) stand-in: finite, so masked cells give zero gradient, never NaN


def lattice(logits: torch.Tensor, targets: torch.Tensor, blank: int = 0):
    """log P(blank) and log P(y_{u+1}) at every cell: (B, T, U+1) and (B, T, U)."""
    lp = torch.log_softmax(logits, dim=-1)
    blank_lp = lp[..., blank]
    idx = targets[:, None, :, None].expand(-1, lp.shape[1], -1, -1)
    emit_lp = lp[:, :, :-1].gather(-1, idx)[..., 0]
    return blank_lp, emit_lp


def ar_masks(ends: torch.Tensor, u_len: torch.Tensor, t_max: int, b_l: float, b_r: float):
    """Allowed-transition masks (B, T, U+1) for blanks and (B, T, U) for emissions.

    ends: (B, U) ground-truth end frame of each token (entries >= u_len are ignored)."""
    b, u = ends.shape
    t = torch.arange(t_max, device=ends.device)[None, :, None].double()
    e = ends.double()
    emit_ok = (t >= (e - b_l)[:, None]) & (t <= (e + b_r)[:, None])
    inf = torch.full((b, 1), math.inf, dtype=torch.float64, device=ends.device)
    # e_{u+1} for the last real token is +inf (padding positions get +inf too)
    real = torch.arange(u, device=ends.device)[None] < u_len[:, None]
    e_real = torch.where(real, e, inf)
    # a blank leaving frame t arrives at t + 1: allowed for t in [e_u - b_l, e_{u+1} + b_r - 1]
    lo = torch.cat([-inf, e_real - b_l], dim=1)
    hi = torch.cat([e_real + b_r - 1, inf], dim=1)
    blank_ok = (t >= lo[:, None]) & (t <= hi[:, None])
    return blank_ok, emit_ok


def ar_cells(ends: torch.Tensor, u_len: torch.Tensor, t_max: int, b_l: float, b_r: float):
    """(B, T, U+1): the cells whose blank or emission Ar-RNNT allows (see ar_masks); the
    loss reads nothing else, so the joint network need compute nothing else."""
    blank_ok, emit_ok = ar_masks(ends, u_len, t_max, b_l, b_r)
    return blank_ok | torch.nn.functional.pad(emit_ok, (0, 1))


def rnnt_loss(
    logits,
    targets,
    t_len,
    u_len,
    blank: int = 0,
    ends=None,
    buffers: tuple[float, float] | None = None,
    reduction: str = "mean",
):
    """RNN-T loss (Ar-RNNT when `ends` and `buffers` = (b_l, b_r) are given).

    logits (B, T, U+1, V); targets (B, U) long; t_len, u_len (B,). Returns the mean (or
    "sum", or per-utterance "none") of -log P(y|x); an utterance with no allowed alignment
    gets a finite loss of 1e30 or more (NEG-sized), so `torch.isfinite` does not detect it."""
    blank_lp, emit_lp = lattice(logits, targets, blank)
    return lattice_loss(blank_lp, emit_lp, t_len, u_len, ends, buffers, reduction)


def lattice_loss(
    blank_lp,
    emit_lp,
    t_len,
    u_len,
    ends=None,
    buffers: tuple[float, float] | None = None,
    reduction: str = "mean",
):
    """`rnnt_loss` from the lattice's log probabilities (see `lattice`, Joiner.lattice)."""
    if buffers is not None:
        if ends is None:
            raise ValueError("Ar-RNNT needs each token's end frame (ends)")
        blank_ok, emit_ok = ar_masks(ends, u_len, blank_lp.shape[1], *buffers)
        blank_lp = blank_lp.masked_fill(~blank_ok, NEG)
        emit_lp = emit_lp.masked_fill(~emit_ok, NEG)
    nll = -forward_score(blank_lp, emit_lp, t_len, u_len)
    if reduction == "none":
        return nll
    return nll.sum() if reduction == "sum" else nll.mean()


def _skew(x: torch.Tensor, n_diag: int, fill: float) -> torch.Tensor:
    """(B, T, W) -> (B, N, W) with out[:, n, u] = x[:, n - u, u] (fill outside)."""
    b, t, w = x.shape
    n = torch.arange(n_diag, device=x.device)[:, None]
    u = torch.arange(w, device=x.device)[None]
    ti = n - u
    ok = (ti >= 0) & (ti < t)
    g = x[:, ti.clamp(0, t - 1), u.expand_as(ti)]
    return g.masked_fill(~ok[None], fill)


def _diagonals(blank_lp, emit_lp, n_diag: int):
    """The lattice skewed onto anti-diagonals: blank_d[:, n, u] = blank(n - u, u), emit_d
    likewise with a NEG column for u = U (no emission out of the last row)."""
    b, t, u1 = blank_lp.shape
    emit_full = torch.cat([emit_lp, emit_lp.new_full((b, t, 1), NEG)], dim=2)
    return _skew(blank_lp, n_diag, NEG), _skew(emit_full, n_diag, NEG)


def _alpha(blank_d, emit_d):
    """Forward variables on every anti-diagonal: (B, N, U+1), alpha(0, 0) = 0. Each diagonal is
    written in place into one buffer whose column 0 stays NEG (the cell left of u = 0), so a
    step is three tensor operations."""
    b, n_diag, u1 = blank_d.shape
    buf = blank_d.new_full((b, n_diag, u1 + 1), NEG)
    buf[:, 0, 1] = 0.0
    emit_in = torch.cat([blank_d.new_full((b, n_diag, 1), NEG), emit_d[..., :-1]], dim=2)
    for n in range(1, n_diag):
        prev = buf[:, n - 1]
        # (t-1, u) -> (t, u) by a blank; (t, u-1) -> (t, u) by an emission
        torch.logaddexp(
            prev[:, 1:] + blank_d[:, n - 1], prev[:, :-1] + emit_in[:, n - 1], out=buf[:, n, 1:]
        )
    return buf[..., 1:]


def _beta(blank_d, emit_d, t_len, u_len):
    """Backward variables on every anti-diagonal: beta(t, u) = log P(the rest of y and the
    final blank | at (t, u)), at least NEG; emissions outside each utterance's grid must be
    NEG (see _ForwardBackward.backward). The final blank leads to the cell (t_len, u_len),
    whose beta is 0."""
    b, n_diag, u1 = blank_d.shape
    floor = torch.full_like(blank_d, NEG)
    floor[torch.arange(b, device=blank_d.device), t_len + u_len, u_len] = 0.0
    buf = blank_d.new_full((b, n_diag, u1 + 1), NEG)  # column U+1 stays NEG: no row above U
    buf[:, -1, :-1] = floor[:, -1]
    for k in range(n_diag - 2, -1, -1):
        nxt = buf[:, k + 1]
        # (t, u) -> (t+1, u) by a blank, (t, u) -> (t, u+1) by an emission: both on diagonal k+1
        step = torch.logaddexp(blank_d[:, k] + nxt[:, :-1], emit_d[:, k] + nxt[:, 1:])
        torch.maximum(step, floor[:, k], out=buf[:, k, :-1])
    return buf[..., :-1]


def _grid(t_len, u_len, t: int, u1: int) -> torch.Tensor:
    """(B, T, U+1): the cells inside each utterance's (t_len, u_len + 1) grid."""
    tt = torch.arange(t, device=t_len.device)[None, :, None]
    uu = torch.arange(u1, device=t_len.device)[None, None]
    return (tt < t_len[:, None, None]) & (uu <= u_len[:, None, None])


def _unskew(d: torch.Tensor, t: int) -> torch.Tensor:
    """(B, N, W) diagonals -> (B, T, W) grid: out[:, t, u] = d[:, t + u, u]."""
    b, _, w = d.shape
    idx = torch.arange(t, device=d.device)[:, None] + torch.arange(w, device=d.device)[None]
    return d.gather(1, idx[None].expand(b, -1, -1))


class _ForwardBackward(torch.autograd.Function):
    """log P(y|x) with its gradient from the forward and backward variables: the derivative
    with respect to a transition's log probability is the posterior probability that an
    alignment takes it, exp(alpha + transition + beta(next cell) - log P). One backward
    recursion instead of autograd through T + U steps of small tensors."""

    @staticmethod
    def forward(ctx, blank_lp, emit_lp, t_len, u_len, compiled: bool):
        ctx.compiled = compiled
        if compiled:  # the same recursions, compiled for the CPU (lattice_cpu)
            from reprise.speech.lattice_cpu import forward_backward

            arrays = (x.detach().contiguous().numpy() for x in (blank_lp, emit_lp))
            lengths = (x.to(torch.int64).numpy() for x in (t_len, u_len))
            score, d_blank, d_emit = forward_backward(*arrays, *lengths)
            ctx.save_for_backward(torch.from_numpy(d_blank), torch.from_numpy(d_emit))
            return torch.from_numpy(score).to(blank_lp.dtype)
        b, t, u1 = blank_lp.shape
        # one diagonal more than the grid's: the backward recursion starts at the cell after
        # the final blank, (t_len, u_len), on diagonal t_len + u_len <= T + U
        alphas = _alpha(*_diagonals(blank_lp, emit_lp, t + u1))
        bi = torch.arange(b, device=blank_lp.device)
        score = alphas[bi, t_len - 1 + u_len, u_len] + blank_lp[bi, t_len - 1, u_len]
        ctx.save_for_backward(blank_lp, emit_lp, t_len, u_len, alphas, score)
        return score

    @staticmethod
    def backward(ctx, grad):
        if ctx.compiled:
            d_blank, d_emit = ctx.saved_tensors
            g = grad[:, None, None]
            return d_blank * g, d_emit * g, None, None, None
        blank_lp, emit_lp, t_len, u_len, alphas, score = ctx.saved_tensors
        b, t, u1 = blank_lp.shape
        # only cells inside each grid take part: padding cells can have a finite alpha, and
        # an emission from padding (t_len, u_len - 1) would reach the final cell; blanks from
        # padding never do, so masking the emissions keeps beta at NEG outside every grid
        inside = _grid(t_len, u_len, t, u1)
        alpha = (_unskew(alphas, t) - score[:, None, None]).masked_fill(~inside, NEG)
        emit_in = emit_lp.masked_fill(~inside[..., :-1], NEG)
        beta = _unskew(_beta(*_diagonals(blank_lp, emit_in, t + u1), t_len, u_len), t + 1)
        g = grad[:, None, None]
        # a posterior is at most 1: the clamp only bites at rounding error, or in an utterance
        # with no allowed path (Ar-RNNT), whose NEG-sized terms would overflow exp
        d_blank = torch.exp((alpha + blank_lp + beta[:, 1:]).clamp(max=0)) * g  # into (t+1, u)
        d_emit = torch.exp((alpha[..., :-1] + emit_lp + beta[:, :-1, 1:]).clamp(max=0)) * g
        return d_blank, d_emit, None, None, None


def forward_score(blank_lp, emit_lp, t_len, u_len, compiled: bool | None = None) -> torch.Tensor:
    """log P(y|x) per utterance by the forward recursion; its gradient by the backward
    recursion (see _ForwardBackward). `compiled`: lattice_cpu's loops (default for CPU
    tensors) instead of the tensor recursion over anti-diagonals (default on a GPU)."""
    if compiled is None:
        compiled = blank_lp.device.type == "cpu"
    return _ForwardBackward.apply(blank_lp, emit_lp, t_len, u_len, compiled)


def forward_score_loop(blank_lp, emit_lp, t_len, u_len) -> torch.Tensor:
    """The same score cell by cell (the straightforward reference the benchmark compares)."""
    out = []
    for i in range(blank_lp.shape[0]):
        t, u = int(t_len[i]), int(u_len[i])
        alpha = [[None] * (u + 1) for _ in range(t)]
        for tt in range(t):
            for uu in range(u + 1):
                if tt == 0 and uu == 0:
                    alpha[0][0] = blank_lp.new_zeros(())
                    continue
                terms = []
                if tt > 0:
                    terms.append(alpha[tt - 1][uu] + blank_lp[i, tt - 1, uu])
                if uu > 0:
                    terms.append(alpha[tt][uu - 1] + emit_lp[i, tt, uu - 1])
                alpha[tt][uu] = terms[0] if len(terms) == 1 else torch.logaddexp(*terms)
        out.append(alpha[t - 1][u] + blank_lp[i, t - 1, u])
    return torch.stack(out)


@torch.no_grad()
def viterbi_alignment(blank_lp: torch.Tensor, emit_lp: torch.Tensor) -> tuple[list[int], float]:
    """The single best alignment of one utterance (blank_lp (T, U+1), emit_lp (T, U)):
    the frame at which each token is emitted, and the path's log probability. Used to
    force-align transcripts with a trained model (word times for corpora without them)."""
    t, u1 = blank_lp.shape
    score = torch.full((t, u1), NEG, dtype=blank_lp.dtype)
    from_emit = torch.zeros((t, u1), dtype=torch.bool)
    score[0, 0] = 0.0
    for n in range(1, t + u1 - 1):  # anti-diagonals, as in the forward recursion (max-plus)
        uu = torch.arange(max(0, n - t + 1), min(n, u1 - 1) + 1)
        tt = n - uu
        left = torch.where(
            tt > 0, score[(tt - 1).clamp(min=0), uu] + blank_lp[(tt - 1).clamp(min=0), uu], NEG
        )
        below = torch.where(
            uu > 0, score[tt, (uu - 1).clamp(min=0)] + emit_lp[tt, (uu - 1).clamp(min=0)], NEG
        )
        score[tt, uu] = torch.maximum(left, below)
        from_emit[tt, uu] = below > left
    frames, i, j = [], t - 1, u1 - 1
    while i > 0 or j > 0:
        if from_emit[i, j]:
            frames.append(i)
            j -= 1
        else:
            i -= 1
    return frames[::-1], float(score[t - 1, u1 - 1] + blank_lp[t - 1, u1 - 1])
