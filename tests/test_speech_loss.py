"""RNN-T and Ar-RNNT losses against a brute-force sum over every alignment (float64)."""

import functools
import itertools
import math

import pytest
import torch

from reprise.speech.loss import (
    NEG,
    ar_masks,
    forward_score,
    forward_score_loop,
    lattice,
    rnnt_loss,
    viterbi_alignment,
)


def brute_force(blank, emit, t, u, blank_ok=None, emit_ok=None):
    """log sum over every path of T blanks and U emissions ending with a blank at (T-1, U)."""
    total = []
    for pos in itertools.combinations(range(t + u - 1), u):
        tt = uu = 0
        score, ok = 0.0, True
        for k in range(t + u - 1):
            if k in pos:
                ok &= emit_ok is None or bool(emit_ok[tt, uu])
                score += float(emit[tt, uu])
                uu += 1
            else:
                ok &= blank_ok is None or bool(blank_ok[tt, uu])
                score += float(blank[tt, uu])
                tt += 1
        ok &= blank_ok is None or bool(blank_ok[tt, uu])
        if ok:
            total.append(score + float(blank[tt, uu]))
    return math.log(sum(math.exp(s) for s in total)) if total else -math.inf


def case(seed=0, b=3, t=5, u=3, v=6):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, t, u + 1, v, dtype=torch.float64, generator=g)
    targets = torch.randint(1, v, (b, u), generator=g)
    t_len = torch.tensor([t, t - 1, 3])[:b]
    u_len = torch.tensor([u, u - 1, 1])[:b]
    return logits, targets, t_len, u_len


def test_rnnt_equals_brute_force():
    logits, y, tl, ul = case()
    got = -rnnt_loss(logits, y, tl, ul, reduction="none")
    blank, emit = lattice(logits, y)
    for i in range(len(tl)):
        want = brute_force(blank[i], emit[i], int(tl[i]), int(ul[i]))
        assert got[i].item() == pytest.approx(want, abs=1e-12, rel=1e-12)


@pytest.mark.parametrize("buffers", [(0, 0), (1, 0), (0, 1), (2, 1)])
def test_ar_rnnt_equals_brute_force(buffers):
    logits, y, tl, ul = case(seed=1)
    ends = torch.tensor([[0, 2, 4], [1, 1, 0], [2, 0, 0]])
    got = -rnnt_loss(logits, y, tl, ul, ends=ends, buffers=buffers, reduction="none")
    blank, emit = lattice(logits, y)
    blank_ok, emit_ok = ar_masks(ends, ul, logits.shape[1], *buffers)
    for i in range(len(tl)):
        want = brute_force(blank[i], emit[i], int(tl[i]), int(ul[i]), blank_ok[i], emit_ok[i])
        assert math.isfinite(want)
        assert got[i].item() == pytest.approx(want, abs=1e-12, rel=1e-12)
    # a restriction only removes alignments
    assert torch.all(got <= -rnnt_loss(logits, y, tl, ul, reduction="none") + 1e-12)


def test_ar_rnnt_window_is_the_papers():
    """Emit y_u only at t in [e_u - b_l, e_u + b_r]; a blank in row u only into frames
    [e_u - b_l + 1, e_{u+1} + b_r] (the mask is indexed by the frame the blank leaves)."""
    ends = torch.tensor([[2, 5]])
    blank_ok, emit_ok = ar_masks(ends, torch.tensor([2]), 8, 1, 2)
    rows = lambda m, j: [t for t in range(8) if m[0, t, j]]  # noqa: E731
    assert rows(emit_ok, 0) == [1, 2, 3, 4] and rows(emit_ok, 1) == [4, 5, 6, 7]
    assert rows(blank_ok, 0) == [0, 1, 2, 3]  # into frames up to e_1 + b_r = 4
    assert rows(blank_ok, 1) == [1, 2, 3, 4, 5, 6]  # into [e_1 - b_l + 1, e_2 + b_r] = [2, 7]
    assert rows(blank_ok, 2) == [4, 5, 6, 7]  # last row: from e_2 - b_l to the final blank


def test_infinite_buffers_give_rnnt():
    logits, y, tl, ul = case(seed=2)
    ends = torch.tensor([[0, 1, 2], [3, 3, 0], [1, 0, 0]])
    inf = -rnnt_loss(logits, y, tl, ul, ends=ends, buffers=(math.inf, math.inf), reduction="none")
    assert torch.equal(inf, -rnnt_loss(logits, y, tl, ul, reduction="none"))


# both ways of running the recursions: compiled loops (the CPU's) and the tensor recursion
# over anti-diagonals (a GPU's), here on the CPU
RECURSIONS = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "diagonals"])


@RECURSIONS
def test_vectorised_equals_cell_loop(compiled):
    logits, y, tl, ul = case(seed=3, t=7, u=4, v=5)
    blank, emit = lattice(logits, y)
    assert torch.allclose(
        forward_score(blank, emit, tl, ul, compiled),
        forward_score_loop(blank, emit, tl, ul),
        atol=1e-12,
        rtol=0,
    )


@pytest.mark.parametrize("buffers", [None, (1, 1)])
def test_gradcheck(buffers):
    logits, y, tl, ul = case(seed=4, b=2, t=4, u=2, v=4)
    ends = torch.tensor([[1, 2], [0, 2]])
    logits.requires_grad_(True)
    f = lambda x: rnnt_loss(x, y, tl, ul, ends=ends, buffers=buffers, reduction="sum")  # noqa: E731
    assert torch.autograd.gradcheck(f, (logits,), eps=1e-6, atol=1e-7)


@RECURSIONS
@pytest.mark.parametrize("seed", range(4))
def test_gradient_equals_autograd_of_the_cell_loop(seed, compiled):
    """The backward recursion's gradient against autograd through the per-cell reference, at
    sizes, lengths and Ar-RNNT windows drawn at random (padding cells get exactly zero; an
    utterance without an allowed path gets finite gradients, left out of the comparison)."""
    g = torch.Generator().manual_seed(100 + seed)
    t, u = int(torch.randint(3, 9, (1,), generator=g)), int(torch.randint(2, 6, (1,), generator=g))
    b = 3
    logits = torch.randn(b, t, u + 1, 5, dtype=torch.float64, generator=g)
    y = torch.randint(1, 5, (b, u), generator=g)
    # utterance 0 fills the grid, the others are padded in both directions
    tl, ul = torch.randint(1, t, (b,), generator=g), torch.randint(1, u, (b,), generator=g)
    tl[0], ul[0] = t, u
    ends = torch.sort(torch.randint(0, t, (b, u), generator=g), dim=1).values
    blank, emit = lattice(logits, y)
    if seed % 2:  # Ar-RNNT: masked transitions, and no path at all in some utterances
        blank_ok, emit_ok = ar_masks(ends, ul, t, 1.0, 1.0)
        blank, emit = blank.masked_fill(~blank_ok, NEG), emit.masked_fill(~emit_ok, NEG)
        emit[2] = NEG  # utterance 2 has no allowed path
    ok = forward_score_loop(blank, emit, tl, ul) > NEG / 2  # at least one allowed path
    assert bool(ok[2]) != bool(seed % 2)
    grads = []
    for score in (functools.partial(forward_score, compiled=compiled), forward_score_loop):
        bl, em = blank.clone().requires_grad_(True), emit.clone().requires_grad_(True)
        (score(bl, em, tl, ul) * ok).sum().backward()
        grads.append((bl.grad, em.grad))
    for got, want in zip(grads[0], grads[1], strict=True):
        assert torch.isfinite(got).all()
        assert torch.allclose(got, want, atol=1e-12, rtol=1e-9)


def test_padding_does_not_leak():
    """An utterance's loss does not depend on the padding of its batch."""
    logits, y, tl, ul = case(seed=5)
    alone = rnnt_loss(logits[2:, :3, :2], y[2:, :1], tl[2:], ul[2:], reduction="none")
    padded = rnnt_loss(logits, y, tl, ul, reduction="none")[2:]
    assert torch.allclose(alone, padded, atol=1e-12)


def test_ar_rnnt_needs_ends():
    logits, y, tl, ul = case()
    with pytest.raises(ValueError, match="end frame"):
        rnnt_loss(logits, y, tl, ul, buffers=(1, 1))


def test_viterbi_alignment_is_the_best_path():
    logits, y, tl, ul = case(seed=6, b=1, t=5, u=3)
    blank, emit = lattice(logits, y)
    frames, score = viterbi_alignment(blank[0], emit[0])
    best = -math.inf
    for pos in itertools.combinations(range(5 + 3 - 1), 3):
        tt = uu = 0
        s, fr = 0.0, []
        for k in range(5 + 3 - 1):
            if k in pos:
                s += float(emit[0, tt, uu])
                fr.append(tt)
                uu += 1
            else:
                s += float(blank[0, tt, uu])
                tt += 1
        s += float(blank[0, tt, uu])
        if s > best:
            best, best_frames = s, fr
    assert score == pytest.approx(best, abs=1e-12) and frames == best_frames
