"""upl: per-utterance UPL from a hand-built decode table, the per-configuration table, the
correlations against scipy (and their bootstrap coverage), the latency-vs-compute gap and the
trade-off on data built to pass and to fail, bad configurations, and (slow) the whole DAG at
tiny size."""

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import pearsonr, spearmanr

from reprise.papers.upl import summary
from reprise.speech import metrics as M
from tests.conftest import (
    ROOT,
    build_tiny_paper,
    refuses_bad_smoke,
    run,
    use_tiny_speech_zoo,
)
from tests.test_flexit import TINY_MODEL


def _decode_row(**kw):
    """One utterance of a decode table: speech ends at 1.0 s, audio at 1.6 s, four 0.4-s
    chunks that take 0.05 s each to compute."""
    arrivals, compute = [0.4, 0.8, 1.2, 1.6], [0.05] * 4
    row = dict(
        run="r",
        model="m",
        id="u",
        domain="command",
        ref="turn on the light",
        hyp="turn on the light",
        duration=1.6,
        speech_end=1.0,
        ref_ends=[0.2, 0.4, 0.7, 1.0],
        hyp_words=["turn", "on", "the", "light"],
        hyp_times=[0.4, 0.8, 0.8, 1.2],
        compute=0.2,
        loss="ar_rnnt",
        params=10,
        chunk_ms=400,
        flops=0.1,
    )
    # joint endpoint in chunk 2 (audio end 1.2 s); silence endpoint never fires
    row.update(endpoint_eos=1.2, hyp_eos="turn on the light", endpoint_vad300=None)
    row.update(hyp_vad300="turn on the light")
    row["upl_eos"] = M.upl(arrivals, compute, 2, 1.0)
    row["upl_vad300"] = M.upl(arrivals, compute, 3, 1.0)
    row.update(kw)
    return row


def test_upl_of_a_hand_built_schedule():
    """Chunks arrive every 0.4 s and take 0.05 s: the joint endpoint's chunk (arrives 1.2 s)
    is done at 1.25 s, UPL 0.25 s; a silence endpointer that never fires ends with the audio
    (1.6 s), done at 1.65 s, UPL 0.65 s, endpoint latency 0.6 s."""
    u = summary.utterances(pd.DataFrame([_decode_row()]), ["eos", "vad300"]).set_index("endpointer")
    assert u.loc["eos", "upl"] == pytest.approx(0.25)
    assert u.loc["vad300", "upl"] == pytest.approx(0.65)
    assert u.loc["eos", "endpoint_latency"] == pytest.approx(0.2)
    assert u.loc["vad300", "endpoint_latency"] == pytest.approx(0.6)
    assert bool(u.loc["vad300", "missed"]) and not bool(u.loc["eos", "missed"])
    # a slow chunk queues the next: chunk 1 (0.5 s) ends at 1.3 s, chunk 2 at 1.35 s
    slow = M.upl([0.4, 0.8, 1.2, 1.6], [0.05, 0.5, 0.05, 0.05], 2, 1.0)
    assert slow == pytest.approx(0.35)


def test_configurations_score_each_endpointer_at_its_endpoint():
    early = _decode_row(id="v", endpoint_eos=0.7, hyp_eos="turn on the", upl_eos=-0.25)
    table = pd.DataFrame([_decode_row(), early])
    c = summary.configurations(table, summary.utterances(table, ["eos", "vad300"]))
    c = c.set_index("endpointer")
    assert c.loc["eos", "early_cutoff_rate"] == 0.5 and c.loc["vad300", "early_cutoff_rate"] == 0
    assert c.loc["eos", "wer"] == pytest.approx(1 / 8) and c.loc["vad300", "wer"] == 0
    assert c.loc["eos", "upl_mean"] == pytest.approx(0.0)
    assert c.loc["vad300", "missed_rate"] == 1.0
    # emission delay: the run's words (0.2, 0.4, 0.1, 0.2 s late), the same for both
    assert c["emission_delay"].tolist() == pytest.approx([0.225, 0.225])


def _configs(rng, n, upl_from):
    """n configurations with random factors; UPL built from `upl_from`."""
    c = pd.DataFrame(
        {
            "params": rng.choice([1e4, 5e4, 2e5], n),
            "chunk_ms": rng.choice([80, 160, 320], n),
            "flops": rng.uniform(0.01, 0.2, n),
            "rtf": rng.uniform(0.005, 0.05, n),
            "emission_delay": rng.uniform(0.1, 0.4, n),
            "endpoint_latency": rng.uniform(0.1, 0.8, n),
        }
    )
    c["upl_mean"] = upl_from(c) + rng.normal(0, 0.02, n)
    return c


def test_correlations_match_scipy():
    rng = np.random.default_rng(1)
    c = _configs(rng, 25, lambda c: c["endpoint_latency"] + c["emission_delay"])
    corr = summary.correlations(c, 500, 0).set_index("factor")
    for f in summary.FACTORS:
        assert corr.loc[f, "pearson"] == pytest.approx(pearsonr(c[f], c["upl_mean"])[0])
        assert corr.loc[f, "spearman"] == pytest.approx(spearmanr(c[f], c["upl_mean"])[0])
        assert corr.loc[f, "pearson_low"] <= corr.loc[f, "pearson"] <= corr.loc[f, "pearson_high"]
    # no word recognised anywhere: no emission delay, so no r and no gap (not a smaller one)
    none = c.assign(emission_delay=np.nan)
    row = summary.correlations(none, 200, 0).set_index("factor").loc["emission_delay"]
    assert np.isnan(row["pearson"]) and np.isnan(row["pearson_low"])
    assert np.isnan(summary.latency_vs_compute_gap(none, 200, 0)["gap"])
    # the vectorised r of the bootstrap equals scipy on every resample
    x, y = rng.normal(size=(5, 12)), rng.normal(size=(5, 12))
    assert summary._rowwise_pearson(x, y) == pytest.approx(
        [pearsonr(a, b)[0] for a, b in zip(x, y, strict=True)]
    )
    assert summary._rowwise_spearman(x, y) == pytest.approx(
        [spearmanr(a, b)[0] for a, b in zip(x, y, strict=True)]
    )


def test_bootstrap_interval_of_r_covers_the_true_correlation():
    """Bivariate normal data with a random true rho and 25 configurations: the 95% interval
    covers rho in 88-99% of 150 draws (the percentile bootstrap of r under-covers a little at
    this size)."""
    rng = np.random.default_rng(7)
    hits = 0
    for k in range(150):
        rho = rng.uniform(-0.8, 0.8)
        xy = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], 25)
        c = pd.DataFrame({f: xy[:, 0] for f in summary.FACTORS}).assign(upl_mean=xy[:, 1])
        row = summary.correlations(c, 400, k).iloc[0]
        hits += row["pearson_low"] <= rho <= row["pearson_high"]
    assert 0.88 <= hits / 150 <= 0.99, hits / 150


def test_gap_is_positive_when_latency_drives_upl_and_negative_when_compute_does():
    # both latency factors carry UPL (r about 0.7 each); 60 configurations (at 30 the
    # interval's lower end of this min-minus-max statistic straddles zero in 4 seeds of 10)
    rng = np.random.default_rng(3)
    lat = _configs(rng, 60, lambda c: c["endpoint_latency"] + 2.3 * c["emission_delay"])
    g = summary.latency_vs_compute_gap(lat, 1000, 0)
    assert g["low"] > 0 and g["low"] <= g["gap"] <= g["high"]
    comp = _configs(rng, 30, lambda c: 20 * c["rtf"] + c["chunk_ms"] / 400)
    assert summary.latency_vs_compute_gap(comp, 1000, 0)["high"] < 0


def test_best_tradeoff_is_the_lowest_p90_upl_within_the_wer_margin():
    c = pd.DataFrame(
        [
            # run, endpointer, joint, loss, wer, upl_p90
            ("a", "eos", True, "ar_rnnt", 0.30, 0.50),
            ("b", "eos", True, "rnnt", 0.28, 0.60),
            ("c", "vad300", False, "ar_rnnt", 0.45, 0.20),  # fast but beyond the margin
            ("d", "vad600", False, "rnnt", 0.27, 0.70),
        ],
        columns=["run", "endpointer", "joint", "loss", "wer", "upl_p90"],
    )
    t = summary.best_tradeoff(c, 0.05)
    assert (t["run"], t["joint_ar"], t["eligible"]) == ("a", True, 3)
    assert t["advantage"] == pytest.approx(0.10)
    t = summary.best_tradeoff(c, 0.2)  # now the fast silence endpointer is within the margin
    assert (t["run"], t["joint_ar"]) == ("c", False) and t["advantage"] == pytest.approx(-0.3)
    t = summary.best_tradeoff(c, 0.0)  # only the best-WER configuration: no joint Ar-RNNT one
    assert t["run"] == "d" and not t["joint_ar"] and t["advantage"] is None


@pytest.mark.parametrize(
    ("smoke", "says"),
    [
        ({"runs": {"base": {"model": "no_such_model", "segment": 2}}}, "no model 'no_such_model'"),
        ({"runs": {"base": {"model": "base", "segment": 0}}}, "segment"),
        ({"endpointers": {"silence": 0.3}}, "endpointers"),
        ({"evaluation": {"wer_margin": -0.1}}, "wer_margin"),
    ],
)
def test_a_bad_config_stops_with_one_clear_error(project_copy, smoke, says):
    refuses_bad_smoke(project_copy, "upl", smoke, says)


def test_the_paper_dag_plans():
    p = run(["snakemake", "-n", "upl", "--config", "scale=paper"], ROOT, merge=True)
    assert "upl_decode" in p.stdout and "speech_model" in p.stdout


@pytest.mark.slow
def test_snakemake_builds_the_upl_dag_end_to_end_at_tiny_size(project_copy):
    """`snakemake upl report` in a copy of the project whose zoo is tiny: every run decoded
    with every endpointer, the correlation table and the four figures drawn, both claims
    given a verdict."""
    from reprise.papers.upl.metrics import METRICS

    use_tiny_speech_zoo(project_copy, TINY_MODEL)
    out = build_tiny_paper(project_copy, "upl", {"evaluation": {"bootstrap": 200}})
    for name in ("scatter", "cdf", "tradeoff", "correlations"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
    configs = pd.read_parquet(out / "tables" / "configurations.parquet")
    assert len(configs) == 3 * 8 and set(configs["endpointer"]) == {"eos", "vad300", "vad600"}
    corr = pd.read_parquet(out / "tables" / "correlations.parquet")
    assert list(corr["factor"]) == list(summary.FACTORS)
    m = yaml.safe_load((out / "metrics.json").read_text())
    assert set(m) == set(METRICS) and m["configurations"] == 24
    assert m["best_tradeoff_is_joint_ar"] in (0.0, 1.0)
    report = (project_copy / "results" / "smoke" / "REPORT.md").read_text()
    assert "upl-follows-latency-not-compute" in report and "joint-ar-best-tradeoff" in report
