"""memorization: random labels fixed by seed, the TE schedule and soft-label update, the
complexity measures on tiny models (all against hand-computed values), the metrics of the
summary tables, and the whole DAG at a tiny size."""

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
from torch import nn

from reprise.data.prepared import ImageData
from reprise.errors import ConfigError
from reprise.papers.memorization import METRICS, complexity
from reprise.papers.memorization import evaluate as summary
from reprise.papers.memorization.metrics import Tables
from reprise.papers.memorization.runs import training_labels
from reprise.papers.memorization.te import TemporalEnsemble, TESchedule
from reprise.training import Batch
from tests.conftest import build_tiny_paper
from tests.tiny_runs import TINY


def _split_file(folder, n=20, k=10):
    from reprise.data.prepared import save_split

    x, y = torch.zeros(n, 1, 8, 8, dtype=torch.uint8), torch.arange(n) % k
    save_split(folder / "train.pt", x, y, [str(c) for c in range(k)])
    return folder / "train.pt"


def _data(n=200, k=10):
    return ImageData(torch.zeros(n, 1, 2, 2), torch.arange(n) % k, [str(c) for c in range(k)])


def test_random_labels_are_fixed_by_the_seed_and_redrawn_uniformly():
    data = _data()
    a = training_labels(data, "random", 1.0, seed=0).y
    assert torch.equal(a, training_labels(data, "random", 1.0, seed=0).y)
    assert not torch.equal(a, training_labels(data, "random", 1.0, seed=1).y)
    assert set(a.tolist()) == set(range(10))  # drawn from every class
    # redrawn uniformly, so about 1/k keep their label: far from all
    assert 0.8 < (a != data.y).float().mean() < 0.97
    assert training_labels(data, "true", 1.0, seed=0) is data


def test_te_weight_ramps_as_300_exp_minus_5_one_minus_t_squared():
    s = TESchedule(epochs=200, start=0.45, end=0.75, weight=300.0)
    assert (s.first, s.full) == (90, 150)  # the paper's epochs 90 and 150 (1-based)
    assert s.weight_at(88) == 0.0 and not s.active(88)  # epoch 89
    assert s.weight_at(89) == pytest.approx(2.0213841)  # t = 0: 300 e^-5
    assert s.weight_at(119) == pytest.approx(85.9514251)  # t = 1/2: 300 e^-1.25
    assert s.weight_at(134) == pytest.approx(300 * math.exp(-5 * 0.25**2))  # t = 3/4
    assert s.weight_at(149) == s.weight_at(199) == 300.0


class FixedLogits(nn.Module):
    """Returns the logits it is told to, whatever the input (one row per sample)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[: len(x)]


def test_te_soft_labels_are_a_renormalised_moving_average_of_the_clean_softmax():
    te = TemporalEnsemble(3, 2, TESchedule(epochs=10, start=0.2, end=0.5), momentum=0.9)
    idx = torch.tensor([0, 2])
    batch = lambda epoch: Batch(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long), idx, epoch)  # noqa: E731
    te.start_batch(FixedLogits(torch.zeros(2, 2)), batch(0))  # epoch 1: before TE
    assert te.target is None and te.soft.sum() == 0
    assert te.loss(None, batch(0)) == 0.0
    # softmax [1/4, 3/4]; p̄ = 0.1·p, renormalised: p itself
    te.start_batch(FixedLogits(torch.tensor([[0.0, math.log(3)]] * 2)), batch(1))
    assert torch.allclose(te.target, torch.tensor([[0.25, 0.75]] * 2))
    # then softmax [1/2, 1/2]: p̄ = 0.9·[.025, .075] + 0.1·[.5, .5] = [.0725, .1175]
    te.start_batch(FixedLogits(torch.zeros(2, 2)), batch(2))
    assert torch.allclose(te.soft[idx], torch.tensor([[0.0725, 0.1175]] * 2))
    assert torch.allclose(te.target, torch.tensor([[0.0725 / 0.19, 0.1175 / 0.19]] * 2))
    assert te.soft[1].sum() == 0  # a sample not in the batch is untouched
    # loss: w · mean_k (softmax(adv) − p̄)², here softmax(adv) = [1/2, 1/2]
    te.weight = 300.0
    batch_2 = batch(2)
    batch_2.adv = type("Out", (), {"logits": torch.zeros(2, 2)})()
    expected = 300.0 * (0.5 - 0.0725 / 0.19) ** 2
    assert float(te.loss(None, batch_2)) == pytest.approx(expected, rel=1e-5)


def _tiny_mlp():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
        model[2].weight.copy_(torch.tensor([[1.0, 2.0]]))
    return model


def test_norm_measures_match_hand_computed_values():
    model = _tiny_mlp()
    # spectral norms 4 and sqrt(5); Frobenius norms 5 and sqrt(5)
    assert complexity.log_spectral_product(model) == pytest.approx(math.log10(4 * math.sqrt(5)))
    assert complexity.frobenius_sum(model) == pytest.approx(5 + math.sqrt(5))
    # paths: 3·1 and 4·2, so sqrt(3²·1² + 4²·2²) = sqrt(73)
    assert complexity.path_norm(model, (2,)) == pytest.approx(math.sqrt(73))


def test_path_norm_folds_batch_norm_into_its_affine_map():
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(2.0)
        bn = model[1]
        bn.weight.fill_(3.0)
        bn.bias.fill_(0.5)
        bn.running_mean.fill_(1.0)
        bn.running_var.fill_(4.0 - bn.eps)
    model.train()
    # BN: 1.5·x − 1; squared network: 1 -> 2² = 4 -> 1.5²·4 + (−1)² = 10
    assert complexity.path_norm(model, (1,)) == pytest.approx(math.sqrt(10))
    assert model.training  # restored


def test_summary_metrics_from_hand_made_tables():
    hist = pd.DataFrame(
        [
            {"dataset": "digits", "method": m, "labels": "random", "epoch": e, "grad_norm_sq": g}
            | {a: 0.5 for a in summary.ACCURACIES}
            for m, gs in (("pgd_at", [1.0, 1.0, 1.0]), ("trades", [1.0, 10.0, 1.0]))
            for e, g in enumerate(gs, 1)
        ]
    )
    measures = pd.DataFrame(
        [
            {"dataset": "digits", "method": "pgd_at", "labels": kind, "seed": seed}
            | {m: v * (1 + 0.1 * seed) for m in summary.COMPLEXITY}
            for kind, v in (("true", 10.0), ("random", 100.0))
            for seed in (0, 1, 2)
        ]
    )
    evals = pd.DataFrame(
        [
            {"dataset": "digits", "run": r, "checkpoint": c, "epoch": ep}
            | {"natural": 0.9, "pgd20": p, "cw20": 0.3, "autoattack": 0.25}
            for r, c, ep, p in (
                ("pgd_at", "best", 1, 0.5),
                ("pgd_at", "final", 2, 0.4),
                ("pgd_at_te", "best", 2, 0.5),
                ("pgd_at_te", "final", 2, 0.5),
            )
        ]
    )
    te_hist = pd.DataFrame(
        [
            {"dataset": "digits", "run": r, "epoch": e, "test_robust_acc": 0.1 * e}
            for r in ("pgd_at", "pgd_at_te")
            for e in (1, 2)
        ]
    )
    finals = summary.final_rows(hist)
    sep = summary.separation(measures)
    bf = summary.best_final(evals, te_hist)
    m = METRICS.compute(Tables(hist, finals, sep, measures, bf))
    assert set(m) == set(METRICS)
    assert m["digits_grad_norm_ratio_random"] == pytest.approx(4.0)  # mean 4 vs mean 1
    assert math.isnan(m["digits_grad_variability_ratio_random"])  # PGD-AT's does not vary
    assert m["digits_complexity_separating_fraction"] == 1.0
    assert m["digits_complexity_explaining_fraction"] == 1.0  # 10x apart, 10% seed spread
    assert m["digits_path_norm_random_minus_true"] == pytest.approx(1.0)  # log10(100/10)
    assert m["digits_path_norm_p_value"] < 0.001
    assert m["digits_log_spectral_product_random_minus_true"] == pytest.approx(99.0)
    # any 3 of the 6 models relabelled: only the true split (and its mirror, the wrong way
    # round) keeps every measure apart, so 19 of the 20 splits pass "at most one half"
    assert m["digits_complexity_pass_rate_relabelled"] == pytest.approx(19 / 20)
    assert m["digits_pgd_at_gap_pgd20"] == pytest.approx(0.1)
    assert m["digits_pgd_at_te_gap_reduction"] == pytest.approx(0.1)
    assert m["digits_pgd_at_best_pgd10"] == pytest.approx(0.1)  # the monitor at epoch 1
    assert m["cifar10_pgd_at_gap_pgd20"] is None  # not run


def test_a_measure_explains_only_when_random_is_above_true_beyond_the_seed_spread():
    """`explains` needs random > true at p < 0.05 over seeds; one seed a side gives no p."""
    rows = [
        {"dataset": "digits", "method": "pgd_at", "labels": kind, "seed": seed}
        | {
            "log_spectral_product": base + (1.0 if kind == "random" else 0.0),  # clear gap
            "frobenius_sum": 10.0 + seed + (0.2 if kind == "random" else 0.0),  # inside spread
            "path_norm": 10.0 - (5.0 if kind == "random" else 0.0) + 0.1 * seed,  # reversed
            "pac_bayes_flatness": 1.0 + 0.1 * seed,  # equal
        }
        for kind in ("true", "random")
        for seed, base in ((0, 1.0), (1, 1.1), (2, 0.9))
    ]
    sep = summary.separation(pd.DataFrame(rows)).set_index("measure")
    assert sep["explains"].to_dict() == {
        "log_spectral_product": True,
        "frobenius_sum": False,
        "path_norm": False,
        "pac_bayes_flatness": False,
    }
    assert sep.loc["frobenius_sum", "separates"] and sep.loc["frobenius_sum", "p_value"] > 0.05
    assert sep.loc["log_spectral_product", "random_minus_true_se"] == pytest.approx(
        math.sqrt(2 * 0.01 / 3)
    )
    one_seed = summary.separation(pd.DataFrame([r for r in rows if r["seed"] == 0]))
    assert one_seed["p_value"].isna().all() and not one_seed["explains"].any()


def test_noisy_runs_parse_and_need_their_label_noise(tmp_path):
    from reprise.papers.memorization import TE_PAIRS, TE_RUNS
    from reprise.papers.memorization.runs import RUN_ADDONS
    from reprise.papers.memorization.steps import train_te
    from reprise.training.recipe import parse_run

    assert parse_run("pgd_at_te_noisy", RUN_ADDONS) == ("pgd_at", ("te", "noisy"))
    assert TE_PAIRS["pgd_at_noisy"] == "pgd_at_te_noisy" and "trades_noisy" in TE_RUNS
    with pytest.raises(ConfigError, match="te.label_noise"):
        section = {"datasets": ["digits"], "runs": ["pgd_at_noisy"], "train_size": None}
        train_te({"te": section}, {"train": _split_file(tmp_path)}, {}, None)


@pytest.mark.slow
def test_snakemake_builds_the_memorization_dag_end_to_end_at_tiny_size(project_copy):
    """`snakemake memorization report` in a copy of the project with tiny runs."""
    out = build_tiny_paper(project_copy, "memorization", TINY)
    for name in ("accuracy_curves", "grad_norm", "complexity", "te_curves", "best_final"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == set(METRICS)
    assert metrics["digits_pgd_at_random_train_robust_acc"] is not None
    assert metrics["digits_trades_te_gap_reduction"] is not None
    best_final = pd.read_parquet(out / "tables" / "best_final.parquet")
    assert len(best_final) == 12  # 6 runs (2 on noisy labels) x 2 checkpoints
    assert metrics["digits_pgd_at_noisy_te_gap_reduction"] is not None
    rows = pd.read_parquet(out / "tables" / "complexity.parquet").set_index("method")
    assert set(rows.loc["pgd_at", "seeds"]) == {2}  # TINY: PGD-AT at two seeds
    assert set(rows.loc["trades", "seeds"]) == {1}
    report = (project_copy / "results" / "smoke" / "REPORT.md").read_text()
    for claim in (
        "pgd-at-memorizes-random-labels",
        "trades-gradient-instability",
        "te-reduces-gap",
    ):
        assert f"**{claim}**" in report
    # the Snakemake HTML report of the same run: every figure with its caption, the claims
    html = project_copy / "report.html"
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    snakemake = [sys.executable, "-m", "snakemake", "--configfile", "tiny.yaml"]
    p = subprocess.run(
        [*snakemake, "--report", str(html)], cwd=project_copy, env=env, capture_output=True
    )
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    text = html.read_text()
    for caption in (
        "Squared norm of the training gradient per epoch",  # grad_norm
        "Robust overfitting is the fall from the best epoch",  # te_curves
    ):
        assert caption in text
    assert "claims.html" in text and "pgd-at-memorizes-random-labels" in text
