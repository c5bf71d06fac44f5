"""flexit: the per-domain segment switch at inference, the scores and the paired bootstrap,
bad configurations, and (slow) the whole DAG at tiny size."""

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from reprise.papers.flexit import summary
from reprise.papers.flexit.steps import run_settings
from reprise.speech import corpus
from reprise.speech import train as T
from tests.conftest import (
    ROOT,
    build_tiny_paper,
    refuses_bad_smoke,
    run,
    use_tiny_speech_zoo,
)

TINY_MODEL = {
    "model": {
        "d_model": 16,
        "n_heads": 2,
        "ffn": 32,
        "layers": 1,
        "segment": 2,
        "left": 4,
        "memory": 2,
        "pred_dim": 16,
        "join_dim": 16,
        "domain_vector": True,
    },
    "train": {"epochs": 1, "batch_size": 2},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("flexit") / "corpus"
    sizes = {"train": {"command": 3, "dictation": 1}, "test": {"command": 2, "dictation": 1}}
    corpus.build(out, sizes, seed=2, cfg=corpus.SynthConfig(dictation_words=(10, 11)))
    return out


def test_the_domain_switch_changes_the_segment_size_at_inference(tiny):
    """Each utterance is streamed in chunks of its own domain's segment: the number of chunks
    is ceil(encoder frames / segment), and changing only dictation's segment changes only the
    dictation rows."""
    bundle = T.load(T.train(tiny, TINY_MODEL))
    a = T.decode(bundle, tiny, "test", segments={"command": 1, "dictation": 4})
    b = T.decode(bundle, tiny, "test", segments={"command": 1, "dictation": 2})
    frames = 10 * bundle.cfg["model"]["reduction"] / 1000  # seconds per encoder frame
    for table, seg in ((a, {"command": 1, "dictation": 4}), (b, {"command": 1, "dictation": 2})):
        for r in table.itertuples():
            n_enc = math.ceil(round(r.chunk_audio_end[-1] / frames, 6))
            assert len(r.chunk_compute) == math.ceil(n_enc / seg[r.domain]), (r.domain, seg)
    cmd = a["domain"] == "command"
    assert [len(x) for x in a[cmd]["chunk_compute"]] == [len(x) for x in b[cmd]["chunk_compute"]]
    dic = ~cmd
    assert all(
        len(x) < len(y)
        for x, y in zip(a[dic]["chunk_compute"], b[dic]["chunk_compute"], strict=True)
    )


def test_run_settings_read_the_segment_and_buffers_in_ms():
    cfg = T.merge(
        {
            "model": {"reduction": 8, "segment": 2},
            "train": {"loss": "ar_rnnt", "buffers": {"command": [2, 1], "dictation": [2, 4]}},
        }
    )
    assert run_settings(cfg, {"dictation": 8}, "dictation") == {
        "segment_ms": 640,
        "b_l_ms": 160,
        "b_r_ms": 320,
        "domain_vector": False,
    }
    assert run_settings(cfg, {}, "command")["segment_ms"] == 160
    plain = T.merge({"train": {"segments": {"dictation": 16}}})
    assert run_settings(plain, {}, "dictation")["segment_ms"] == 16 * 40
    assert run_settings(plain, {}, "dictation")["b_r_ms"] is None


def _pairs(refs, hyps_a, hyps_b):
    a = pd.DataFrame({"id": range(len(refs)), "ref": refs, "hyp": hyps_a})
    return a, a.assign(hyp=hyps_b)


def test_paired_wer_gain_against_a_hand_count():
    refs = ["a b c d", "e f", "g h i j k l"]
    a, b = _pairs(refs, ["a x c", "", "g h i j k l"], ["a b c d", "e f", "g h i j x l"])
    g = summary.paired_wer_gain(a, b, 500, 0)
    # a: 1 sub + 1 del, 2 del, 0 -> 4 errors; b: 1 sub -> 1 error; 12 reference words
    assert g["gain"] == pytest.approx((4 - 1) / 12)
    assert g["low"] <= g["gain"] <= g["high"]
    same = summary.paired_wer_gain(a, a, 200, 0)
    assert same == {"gain": 0.0, "low": 0.0, "high": 0.0}


def test_paired_bootstrap_interval_covers_the_true_gain_at_its_level():
    """Utterances whose errors differ by a known mean: the 95% interval covers the population
    gain in about 95% of repeated samples (checked over 200 draws)."""
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(200):
        n = 40
        refs = [" ".join(["w"] * 10)] * n
        # each word wrong with p 0.3 (a) or 0.2 (b): true gain 0.1
        ha = [" ".join("x" if rng.random() < 0.3 else "w" for _ in range(10)) for _ in range(n)]
        hb = [" ".join("x" if rng.random() < 0.2 else "w" for _ in range(10)) for _ in range(n)]
        a, b = _pairs(refs, ha, hb)
        g = summary.paired_wer_gain(a, b, 400, int(rng.integers(1 << 30)))
        covered += g["low"] <= 0.1 <= g["high"]
    assert 0.88 <= covered / 200 <= 0.99


def test_sweep_keeps_the_runs_in_order_and_reads_the_domain():
    scores = pd.DataFrame(
        [
            {
                "run": r,
                "domain": d,
                "segment_ms": s,
                "wer": w,
                "rtf": 0.01,
                "emission_delay_p50": 0,
                "emission_delay_p90": 0,
            }
            for r, s, w in (("a", 160, 0.5), ("b", 640, 0.4))
            for d in ("command", "dictation")
        ]
    )
    t = summary.sweep(scores, ["b", "a", "missing"], "dictation", "segment_ms")
    assert list(t["run"]) == ["b", "a"] and list(t["x"]) == [640, 160]
    assert set(t["domain"]) == {"dictation"}


@pytest.mark.parametrize(
    ("smoke", "says"),
    [
        ({"runs": {"baseline": {"model": "no_such_model"}}}, "no model 'no_such_model'"),
        (
            {"sweeps": {"s": {"runs": ["flexit", "nope"], "domain": "command", "x": "b_r_ms"}}},
            "sweeps.s names run 'nope'",
        ),
        ({"runs": {"flexit": {"model": "flexit", "segments": {"dictation": 0}}}}, "dictation"),
    ],
)
def test_a_bad_config_stops_with_one_clear_error(project_copy, smoke, says):
    refuses_bad_smoke(project_copy, "flexit", smoke, says)


def test_the_paper_dag_plans():
    p = run(["snakemake", "-n", "flexit", "--config", "scale=paper"], ROOT, merge=True)
    assert "flexit_decode" in p.stdout and "speech_model" in p.stdout


@pytest.mark.slow
def test_snakemake_builds_the_flexit_dag_end_to_end_at_tiny_size(project_copy):
    """`snakemake flexit report` in a copy of the project whose zoo is tiny (one-epoch
    models on a 15-utterance corpus): every run decoded, the table and figures drawn, every
    flexit claim given a verdict."""
    from reprise.papers.flexit.metrics import METRICS

    use_tiny_speech_zoo(project_copy, TINY_MODEL)
    out = build_tiny_paper(project_copy, "flexit", {"evaluation": {"bootstrap": 200}})
    for name in ("table", "tradeoff", "emission"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
    scores = pd.read_parquet(out / "tables" / "scores.parquet")
    assert {"baseline", "flexit", "flexit_dseg16", "flexit_br4"} <= set(scores["run"])
    m = yaml.safe_load((out / "metrics.json").read_text())
    assert set(m) == set(METRICS)
    assert m["dictation_rtf_ratio"] is not None and m["dictation_rtf_ratio"] > 0
    report = (project_copy / "results" / "smoke" / "REPORT.md").read_text()
    assert "flexit-dictation-wer" in report and "larger-segment-lowers-rtf" in report
