"""Every speech metric on a hand-built case with a known answer."""

import math

import numpy as np
import pytest
import torch

from reprise.speech import metrics as M
from reprise.speech.decode import (
    StreamResult,
    beam_search,
    chunk_at,
    eos_endpoint,
    greedy_stream,
    truncate,
    vad_endpoint,
)
from reprise.speech.tokens import EOS, Tokenizer, token_end_times, words_with_times


def test_wer():
    assert M.wer(
        ["turn on the lights", "call mom"], ["turn on lights", "call mom"]
    ) == pytest.approx(1 / 6)
    assert M.wer(["call mom"], [""]) == 1.0  # an empty output scores 100%
    assert M.wer(["a b"], ["a b c d"]) == 1.0
    with pytest.raises(ValueError):
        M.wer(["a"], [])


def test_rtf():
    assert M.rtf(0.5, 2.0) == 0.25


def test_emission_delays_of_known_frames():
    """Tokens emitted at known frames: words end at 0.5 and 1.2 s, emitted at 0.6 and 1.6 s."""
    tok = Tokenizer("char")
    ids = tok.encode("call mom") + [EOS]
    frames = [2, 4, 9, 14, 15, 20, 25, 39, 40]  # 40 ms frames; last letters at 14 and 39
    res = StreamResult(
        tokens=ids,
        frames=frames,
        chunk_of=[0] * 9,
        chunk_audio_end=[2.0],
        chunk_compute=[0.1],
        frame_shift=0.04,
    )
    times = [t for k, t in zip(res.tokens, res.emission_times(), strict=True) if k != EOS]
    words, wt = words_with_times(tok, truncate(res, None), times)
    assert words == ["call", "mom"] and wt == pytest.approx([0.6, 1.6])
    delays = M.emission_delays(["call", "mom"], [0.5, 1.2], words, wt)
    assert delays == pytest.approx([0.1, 0.4])
    s = M.summarize(delays)
    assert s["mean"] == pytest.approx(0.25) and s["p50"] == pytest.approx(0.25)
    assert s["p90"] == pytest.approx(0.1 + 0.9 * 0.3)


def test_emission_delays_skip_misrecognised_words():
    d = M.emission_delays(
        ["turn", "on", "the", "fan"],
        [0.3, 0.6, 0.8, 1.2],
        ["turn", "off", "the", "fan"],
        [0.4, 0.7, 1.0, 1.3],
    )
    assert d == pytest.approx([0.1, 0.2, 0.1])
    assert M.emission_delays(["a"], [1.0], [], []) == []
    assert M.summarize([]) == {"mean": None, "p50": None, "p90": None}


def test_endpoint_latency_and_early_cutoff():
    assert M.endpoint_latency(1.5, 1.2) == pytest.approx(0.3)
    assert M.endpoint_latency(None, 1.2) is None
    assert M.early_cutoff_rate([1.0, 2.0, None, 0.5], [1.2, 1.5, 1.0, 0.4]) == 0.25


def test_first_token_latency():
    assert M.first_token_latency([0.9, 1.3], 0.4) == pytest.approx(0.5)
    assert M.first_token_latency([], 0.4) is None


def test_real_time_simulation_and_upl():
    # chunks arrive every 0.16 s; the second takes longer than real time, so the third waits
    arrivals, compute = [0.16, 0.32, 0.48, 0.64], [0.05, 0.30, 0.05, 0.01]
    assert M.simulate_stream(arrivals, compute) == pytest.approx([0.21, 0.62, 0.67, 0.68])
    assert M.upl(arrivals, compute, final_chunk=2, speech_end=0.40) == pytest.approx(0.27)
    # with instant compute, UPL is the wait for the endpoint chunk's audio
    assert M.upl(arrivals, [0.0] * 4, 3, 0.40) == pytest.approx(0.24)


def test_eos_and_vad_endpoints_and_truncation():
    res = StreamResult(
        tokens=[5, 6, EOS, 7],
        frames=[1, 3, 5, 9],
        chunk_of=[0, 0, 1, 2],
        chunk_audio_end=[0.2, 0.4, 0.6],
        chunk_compute=[0.01] * 3,
        frame_shift=0.04,
    )
    assert eos_endpoint(res) == pytest.approx(0.4)
    assert truncate(res, 1) == [5, 6] and truncate(res, None) == [5, 6, 7]
    assert chunk_at(res, 0.35) == 1 and chunk_at(res, 9.0) == 2
    # energy: 10 frames of speech (0 dB), then silence at -40 dB: 0.3 s of silence after 0.1 s
    energy = np.array([-60.0] * 5 + [0.0] * 10 + [-40.0] * 50)
    assert vad_endpoint(energy, threshold=0.3) == pytest.approx((15 + 30) * 0.01)
    assert (
        vad_endpoint(np.full(50, -40.0), threshold=0.3) is None
    )  # relative to the loudest: all speech
    assert vad_endpoint(energy[:30], threshold=0.3) is None  # never 0.3 s of silence


def test_token_end_times():
    tok = Tokenizer("char")
    t = token_end_times(tok, ["ab", "c"], [0.0, 1.0], [0.4, 1.2])
    assert t == pytest.approx([0.2, 0.4, 0.4, 1.2])  # a, b, space (ends with "ab"), c


def test_flops_hand_count():
    cfg = {
        "vocab": 10,
        "feat_dim": 2,
        "reduction": 4,
        "domains": 0,
        "pred_dim": 3,
        "pred_layers": 1,
        "join_dim": 5,
        "encoder": {
            "d_model": 4,
            "ffn": 8,
            "layers": 1,
            "segment": 5,
            "left": 2,
            "right": 1,
            "memory": 1,
        },
    }
    # 25 frames/s, 5 segments/s; per segment: queries S+R+1 = 7, new keys S+R = 6, all keys
    # M+R+L+S = 9: q 4*4*7, kv 2*4*4*(6+1), scores+mix 2*7*9*4, out 4*4*6, ffn 2*4*8*6
    # = 112 + 224 + 504 + 96 + 384 = 1320 MACs
    enc = 5 * 1320 + 8 * 4 * 25  # + input projection
    joiner = 2 * 4 * 5 + 5 * 10
    predictor = 4 * 3 * 6 + 3 * 4
    assert M.transducer_flops(cfg, tokens_per_second=2) == 2 * (enc + joiner * 27 + predictor * 2)


def test_pearson_spearman():
    p, s = M.pearson_spearman([1, 2, 3, 4], [1, 4, 9, 16])
    assert s == pytest.approx(1.0) and 0.95 < p < 1.0


class Scripted(torch.nn.Module):
    """A fake transducer whose joiner emits token 5 at encoder frames 2 and 6, then </s> at 8."""

    class C:
        domains = 0

    def __init__(self):
        super().__init__()
        self.c = self.C()
        self.frame_shift = 0.04
        self.t = 0
        self.encoder = type("E", (), {"init_state": lambda self, b: []})()
        self.predictor = type("P", (), {"step": lambda self, k, s=None: (k.float()[:, None], s)})()
        emit = {2: 5, 6: 5, 8: EOS}
        outer = self

        class J:
            enc = pred = staticmethod(lambda x: x)  # no projections

            def step(self, enc, pred):
                frame = int(enc[0, 0])
                logits = torch.zeros(1, 8)
                # emit once per frame: the predictor's last token says whether we already did
                k = emit.get(frame)
                if k is not None and not getattr(outer, "done", {}).get(frame):
                    outer.done = {**getattr(outer, "done", {}), frame: True}
                    logits[0, k] = 1
                else:
                    logits[0, 0] = 1
                return logits

        self.joiner = J()

    def chunk_frames(self, segment=None):
        return 8, 0  # 2 encoder frames per chunk (reduction 4), no look-ahead

    def stream_encode(self, seg, right, state, domain=None):
        n = math.ceil(seg.shape[1] / 4)
        out = torch.arange(self.t, self.t + n, dtype=torch.float)[None, :, None]
        self.t += n
        return out, state


def test_greedy_stream_records_frames_chunks_and_eos():
    res = greedy_stream(Scripted(), torch.zeros(40, 80))
    assert res.tokens == [5, 5, EOS] and res.frames == [2, 6, 8] and res.chunk_of == [1, 3, 4]
    assert res.chunk_audio_end == pytest.approx([0.08, 0.16, 0.24, 0.32, 0.40])
    assert res.emission_times() == pytest.approx([0.12, 0.28, 0.36])
    assert eos_endpoint(res) == pytest.approx(0.40)
    assert len(res.chunk_compute) == 5 and all(c >= 0 for c in res.chunk_compute)


def test_beam_search_with_beam_one_is_greedy():
    from tests.test_speech_model import model

    m = model(domains=0)
    torch.manual_seed(3)
    x = torch.randn(30, 80)
    toks, frames = beam_search(m, x, beam=1)
    greedy = greedy_stream(m, x, max_symbols=1)
    assert toks == greedy.tokens and frames == greedy.frames
    best, _ = beam_search(m, x, beam=4)
    assert all(0 < k < 12 for k in best)
