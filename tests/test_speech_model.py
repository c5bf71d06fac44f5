"""The Emformer transducer: streaming (segment by segment, cached state) = full utterance."""

import pytest
import torch

from reprise.speech.emformer import EmformerConfig
from reprise.speech.transducer import Transducer, TransducerConfig


def model(seed=0, domains=2, **enc):
    torch.manual_seed(seed)
    e = dict(d_model=32, n_heads=4, ffn=64, layers=3, segment=4, left=6, right=2, memory=3)
    e.update(enc)
    c = TransducerConfig(vocab=12, domains=domains, reduction=2, encoder=EmformerConfig(**e))
    return Transducer(c).eval()


def stream(m, x, dom, segment=None):
    state = m.encoder.init_state(1)
    sf, rf = m.chunk_frames(segment)
    outs = []
    for i in range(0, x.shape[1], sf):
        o, state = m.stream_encode(x[:, i : i + sf], x[:, i + sf : i + sf + rf], state, dom)
        outs.append(o)
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize(
    "enc", [{}, {"right": 0}, {"left": 0, "memory": 0}, {"segment": 3, "left": 20, "memory": 1}]
)
@pytest.mark.parametrize("t", [47, 48])
def test_streaming_equals_full(enc, t):
    m = model(**enc)
    x = torch.randn(1, t, 80)
    dom = torch.tensor([1])
    with torch.no_grad():
        full, _ = m.encode(x, torch.tensor([t]), dom)
        s = stream(m, x, dom)
    assert s.shape == full.shape
    assert (s - full).abs().max() < 1e-5


def test_streaming_equals_full_with_another_segment_size():
    m = model()
    x = torch.randn(1, 61, 80)
    with torch.no_grad():
        full, _ = m.encode(x, torch.tensor([61]), torch.tensor([0]), segment=7)
        s = stream(m, x, torch.tensor([0]), segment=7)
        other, _ = m.encode(x, torch.tensor([61]), torch.tensor([0]), segment=2)
    assert (s - full).abs().max() < 1e-5
    assert (other - full).abs().max() > 1e-3  # the segment size matters


def test_padding_does_not_change_outputs():
    m = model()
    x = torch.randn(2, 40, 80)
    with torch.no_grad():
        batch, lens = m.encode(x, torch.tensor([40, 25]), torch.tensor([0, 1]))
        alone, _ = m.encode(x[1:, :25], torch.tensor([25]), torch.tensor([1]))
    assert lens.tolist() == [20, 13]
    assert (batch[1, :13] - alone[0]).abs().max() < 1e-5


def test_future_frames_beyond_lookahead_do_not_matter():
    """Output frames of segment i depend on nothing after segment i's right context."""
    m = model(segment=4, right=2)
    x = torch.randn(1, 40, 80)
    y = x.clone()
    y[:, 24:] = torch.randn(1, 16, 80)  # encoder frames >= 12 (reduction 2)
    with torch.no_grad():
        a, _ = m.encode(x, torch.tensor([40]), torch.tensor([0]))
        b, _ = m.encode(y, torch.tensor([40]), torch.tensor([0]))
    assert (a[:, :8] - b[:, :8]).abs().max() < 1e-6  # segments 0, 1 see up to frame 9 only
    assert (a[:, 8:12] - b[:, 8:12]).abs().max() > 1e-4  # segment 2 looks ahead to 12, 13


def test_domain_indicator_changes_the_encoding():
    m = model()
    x = torch.randn(1, 20, 80)
    with torch.no_grad():
        a, _ = m.encode(x, torch.tensor([20]), torch.tensor([0]))
        b, _ = m.encode(x, torch.tensor([20]), torch.tensor([1]))
    assert (a - b).abs().max() > 1e-3
    with pytest.raises(ValueError, match="domain"):
        m.encode(x, torch.tensor([20]))


def test_logits_shape_and_predictor_step_agree():
    m = model(domains=0)
    x, y = torch.randn(2, 30, 80), torch.randint(2, 12, (2, 5))
    with torch.no_grad():
        logits, t_enc = m(x, torch.tensor([30, 30]), y)
        full = m.predictor(y)
        out, st = m.predictor.step(torch.zeros(2, dtype=torch.long))
        for u in range(5):
            assert (out - full[:, u]).abs().max() < 1e-5
            out, st = m.predictor.step(y[:, u], st)
    assert logits.shape == (2, 15, 6, 12) and t_enc.tolist() == [15, 15]


def assert_same_loss_and_gradients(got, ref, params):
    g_got = torch.autograd.grad(got, params, retain_graph=True)
    g_ref = torch.autograd.grad(ref, params, retain_graph=True)
    assert torch.allclose(got, ref, rtol=1e-6)
    for a, b in zip(g_got, g_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_joiner_is_the_tanh_joint_network():
    """The joiner's sigmoid form gives the logits and gradients of out(tanh(enc + pred)),
    on the whole grid and one frame at a time (decoding's `step`)."""
    torch.manual_seed(4)
    j = model().joiner
    enc = torch.randn(2, 7, 32, requires_grad=True)
    pred = torch.randn(2, 4, 32, requires_grad=True)
    wts = torch.randn(2, 7, 4, 12)
    ref = (j.out(torch.tanh(j.enc(enc)[:, :, None] + j.pred(pred)[:, None])) * wts).sum()
    got = (j(enc, pred) * wts).sum()
    assert_same_loss_and_gradients(got, ref, [enc, pred, *j.parameters()])
    step = j.step(j.enc(enc[:, 0]), j.pred(pred[:, 0]))
    assert torch.allclose(step, j(enc, pred)[:, 0, 0], atol=1e-6)


def test_joiner_lattice_equals_the_padded_logits_inside_each_grid():
    """Joiner.lattice (one utterance at a time, as training uses it) gives the loss and the
    gradients of loss.lattice on the padded logits, including Ar-RNNT's masks."""
    from reprise.speech.loss import lattice, lattice_loss, rnnt_loss

    torch.manual_seed(3)
    m = model().train()
    t_len, u_len = torch.tensor([9, 4, 7]), torch.tensor([3, 5, 0])
    enc = torch.randn(3, 9, 32, requires_grad=True)
    y = torch.randint(1, 12, (3, 5))
    ends = torch.tensor([[1, 4, 8, 8, 8], [0, 1, 2, 3, 3], [0, 0, 0, 0, 0]])
    pred = m.predictor(y)
    blank, emit = m.joiner.lattice(enc, pred, y, t_len, u_len)
    ref_blank, ref_emit = lattice(m.joiner(enc, pred), y)
    for i, (t, u) in enumerate(zip(t_len, u_len, strict=True)):
        assert torch.allclose(blank[i, :t, : u + 1], ref_blank[i, :t, : u + 1], atol=1e-6)
        assert torch.allclose(emit[i, :t, :u], ref_emit[i, :t, :u], atol=1e-6)
    for buffers in (None, (1.0, 2.0)):
        kw = dict(ends=ends, buffers=buffers, reduction="sum")
        got = lattice_loss(*m.joiner.lattice(enc, pred, y, t_len, u_len), t_len, u_len, **kw)
        ref = rnnt_loss(m.joiner(enc, pred), y, t_len, u_len, **kw)
        assert_same_loss_and_gradients(got, ref, [enc, *m.joiner.parameters()])


def test_ar_rnnt_band_gives_the_dense_loss_and_gradients():
    """Joiner.lattice on Ar-RNNT's cells only (loss.ar_cells) gives the loss and gradients of
    the whole lattice: the loss reads nothing outside the band. Tight buffers, random sizes."""
    from reprise.speech.loss import ar_cells, lattice_loss

    gen = torch.Generator().manual_seed(5)
    m = model().train()
    for trial in range(4):
        b = 3
        t_len = torch.randint(3, 12, (b,), generator=gen)
        u_len = torch.randint(0, 6, (b,), generator=gen)
        enc = torch.randn(b, int(t_len.max()), 32, generator=gen, requires_grad=True)
        y = torch.randint(1, 12, (b, 6), generator=gen)
        # token end frames: sorted, inside each utterance
        ends = torch.sort(torch.rand(b, 6, generator=gen) * t_len[:, None], dim=1)[0].long()
        pred = m.predictor(y)
        buffers = (float(trial % 2), 1.0 + trial)
        cells = ar_cells(ends, u_len, enc.shape[1], *buffers)
        assert cells.sum() < cells.numel()  # the band leaves cells out
        kw = dict(ends=ends, buffers=buffers, reduction="sum")
        band = lattice_loss(
            *m.joiner.lattice(enc, pred, y, t_len, u_len, cells=cells), t_len, u_len, **kw
        )
        dense = lattice_loss(*m.joiner.lattice(enc, pred, y, t_len, u_len), t_len, u_len, **kw)
        assert_same_loss_and_gradients(band, dense, [enc, *m.joiner.parameters()])
