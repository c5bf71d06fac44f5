"""rejection: the RR loss and rectified confidence by hand, the analysis of score tables
(AUC floor, training-data thresholds, coupled rule, bootstrap gains, metrics), run names,
corruptions, baselines, and the paper's DAG end to end at a tiny size."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from reprise.errors import ConfigError
from reprise.metrics.detectors import FeatureBaselines
from reprise.papers.rejection import METRICS, analysis
from reprise.papers.rejection.corruptions import corrupt
from reprise.papers.rejection.metrics import BASELINES, Tables
from reprise.papers.rejection.rr import confidences, rectified, rr_loss
from reprise.papers.rejection.steps import parse_run
from tests.conftest import build_tiny_paper

LN3, LN4 = math.log(3.0), math.log(4.0)


def test_rr_loss_and_rectified_confidence_match_hand_computed_values():
    # sample 0: p = (1/4, 3/4), y = 0 -> wrong, Con 3/4, T-Con 1/4; A = sigmoid(0) = 1/2
    # sample 1: p = (3/4, 1/4), y = 0 -> right, Con = T-Con = 3/4; A = sigmoid(ln 4) = 4/5
    logits = torch.tensor([[0.0, LN3], [LN3, 0.0]], requires_grad=True)
    aux = torch.tensor([[0.0], [LN4]], requires_grad=True)
    y = torch.tensor([0, 0])
    con, tcon, pred = confidences(logits, y)
    assert torch.allclose(con, torch.tensor([0.75, 0.75]))
    assert torch.allclose(tcon, torch.tensor([0.25, 0.75]))
    assert pred.tolist() == [1, 0]
    assert torch.allclose(rectified(con, aux), torch.tensor([0.375, 0.6]))

    loss = rr_loss(logits, aux, y)
    expected = [
        -(0.25 * math.log(0.375) + 0.75 * math.log(0.625)),  # BCE(R-Con 0.375, T-Con 0.25)
        -(0.75 * math.log(0.6) + 0.25 * math.log(0.4)),  # BCE(0.6, 0.75)
    ]
    assert torch.allclose(loss, torch.tensor(expected))
    loss.sum().backward()
    # dBCE/da = (R - t) / (R (1 - R)) * Con * A (1 - A): sample 1 gives -0.15/0.24*0.75*0.16
    assert aux.grad[1, 0].item() == pytest.approx(-0.075, abs=1e-6)
    # the gradient through Con is stopped where the prediction is right, and T-Con is detached
    assert torch.all(logits.grad[1] == 0) and torch.any(logits.grad[0] != 0)

    free = logits.detach().clone().requires_grad_(True)
    rr_loss(free, aux.detach(), y, stop_gradient=False).sum().backward()
    assert torch.any(free.grad[1] != 0)


# Ops CUDA autocast refuses to run ("unsafe to autocast", aten/src/ATen/autocast_mode.cpp's
# banned list). CPU autocast lets them through, so a CPU test has to look for them itself.
AUTOCAST_REFUSED = {"binary_cross_entropy"}


class RefusedUnderAutocast(torch.overrides.TorchFunctionMode):
    """Records every refused op that runs while (CPU) autocast is on."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in AUTOCAST_REFUSED and torch.is_autocast_enabled("cpu"):
            self.seen.append(func.__name__)
        return func(*args, **(kwargs or {}))


def test_the_refused_op_detector_sees_a_bare_bce_under_autocast():
    p, t = torch.rand(4), torch.rand(4)
    with RefusedUnderAutocast() as mode, torch.autocast("cpu", dtype=torch.bfloat16):
        torch.nn.functional.binary_cross_entropy(p, t)
    assert mode.seen == ["binary_cross_entropy"]


@pytest.mark.parametrize("run", ["pgd_at_rr", "trades_rr", "ccat_rr"])
def test_rr_training_and_adaptive_attacks_run_no_op_autocast_refuses(run):
    """bf16 autocast is on for every CUDA step: the RR loss and the adaptive PGD must not
    call an op CUDA autocast refuses (they did: F.binary_cross_entropy)."""
    from reprise.models import build_model
    from reprise.papers.rejection.scoring import make_attack
    from reprise.papers.rejection.steps import make_method
    from reprise.training.methods import Batch

    torch.manual_seed(0)
    head = {"hidden": None, "bn": True}
    model = build_model("small_cnn", 3, aux_head=head, width=0.25, in_channels=1)
    attack = {"eps": 0.2, "step_size": 0.1, "steps": 2}
    params = {
        "rr": {"lambda": 1.0, "stop_gradient": True},
        "attack": attack,
        "methods": {"trades": {"beta": 6.0}, "ccat": {"rho": 1.0, "ratio": 1.0, "attack": attack}},
    }
    method = make_method(parse_run(run)[0], True, params)
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    adaptive = {"lambda": 1.0, "pgd": attack}
    with RefusedUnderAutocast() as mode, torch.autocast("cpu", dtype=torch.bfloat16):
        method.loss(model, Batch(x, y, torch.arange(6), 0)).backward()
        for target in ("con", "rcon"):
            make_attack("adaptive_pgd", adaptive, 3, target)(model, x, y)
    assert mode.seen == []


def test_parse_run_names():
    assert parse_run("trades_rr") == ("trades", True)
    assert parse_run("ccat") == ("ccat", False)
    with pytest.raises(ConfigError, match="method one of"):
        parse_run("madry_rr")


def model_rows(split, name, con, rcon, correct, adapted_to="", source=None, **extra):
    n = len(con)
    return pd.DataFrame(
        {
            "backbone": "cnn",
            "run": "pgd_at_rr",
            "method": "pgd_at",
            "rr": True,
            "split": split,
            "input": name,
            "source": source or ("clean" if name == "clean" else "attack"),
            "adapted_to": adapted_to,
            "idx": np.arange(n),
            "correct": np.asarray(correct, dtype=bool),
            "con": np.asarray(con, dtype=float),
            "rcon": np.asarray(rcon, dtype=float),
            "tcon": np.asarray(con, dtype=float),
            **{b: np.asarray(con, dtype=float) for b in BASELINES},
            **extra,
        }
    )


def scores_table() -> pd.DataFrame:
    """Calibration: clean (scores 0.55..1.0 all correct) and pgd; test: clean and pgd inputs
    whose R-Con orders correct above wrong perfectly while Con is uninformative."""
    rng = np.random.default_rng(0)
    cal = np.linspace(0.55, 1.0, 10)
    correct = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    con = rng.uniform(0.3, 1.0, 40)
    rcon = np.where(correct, 0.6 + 0.3 * rng.uniform(size=40), 0.02 + 0.18 * rng.uniform(size=40))
    return pd.concat(
        [
            model_rows("calibration", "clean", cal, cal, np.ones(10)),
            model_rows("calibration", "pgd", cal - 0.5, cal - 0.5, np.ones(10)),
            model_rows("test", "clean", cal, cal, np.ones(10)),
            model_rows("test", "pgd", con, rcon, correct),
        ],
        ignore_index=True,
    )


def test_auc_needs_enough_correct_and_wrong_inputs():
    values = np.arange(30.0)
    assert analysis.auc(values, values >= 15) == 1.0
    assert np.isnan(analysis.auc(values, values >= 25))  # only 5 correct
    assert analysis.auc(values, values < 15) == 0.0


def test_thresholds_come_from_calibration_inputs_of_the_same_kind():
    scores = scores_table()
    acc = analysis.acceptance_table(scores, [0.5])
    rcon_pgd = acc[(acc["input"] == "pgd") & (acc["score"] == "rcon")].iloc[0]
    # half of the 10 correct calibration pgd inputs (0.05 .. 0.5) accepted: t = 0.3
    assert rcon_pgd["threshold"] == pytest.approx(0.3)
    assert rcon_pgd["acc_accepted"] == 1.0  # every R-Con >= 0.3 ... is a correct input
    assert rcon_pgd["accept_rate"] == pytest.approx(
        (scores.query("split == 'test' and input == 'pgd'")["rcon"] >= 0.3).mean()
    )
    clean = acc[(acc["input"] == "clean") & (acc["score"] == "con")].iloc[0]
    assert clean["threshold"] == pytest.approx(0.8)  # from the clean calibration inputs


def test_coupled_rule_accepts_when_con_and_rcon_exceed_one_half():
    scores = pd.concat(
        [
            model_rows("calibration", "pgd", [0.9], [0.9], [True]),
            model_rows("test", "pgd", [0.9, 0.9, 0.4, 0.8], [0.6, 0.4, 0.3, 0.7], [1, 0, 0, 0]),
        ],
        ignore_index=True,
    )
    rules = analysis.rules_table(analysis.acceptance_table(scores, [0.95]), scores, 0.95)
    coupled = rules[rules["rule"].str.startswith("coupled")].iloc[0]
    assert coupled["accept_rate"] == 0.5  # samples 0 and 3
    assert coupled["acc_accepted"] == 0.5


def test_gain_table_pairs_adaptive_inputs_with_the_score_they_attack():
    correct = np.r_[np.ones(15, bool), np.zeros(15, bool)]
    good = np.where(correct, 0.9, 0.1)  # separates perfectly
    bad = np.where(correct, 0.1, 0.9)  # separates perfectly, the wrong way round
    scores = pd.concat(
        [
            model_rows("test", "pgd", bad, good, correct),
            # against Con the attack leaves Con perfect; against R-Con it inverts R-Con
            model_rows("test", "adaptive_pgd", good, good, correct, adapted_to="con"),
            model_rows("test", "adaptive_pgd", good, bad, correct, adapted_to="rcon"),
        ],
        ignore_index=True,
    )
    gains = analysis.gain_table(scores, resamples=50).set_index("input")
    assert gains.loc["pgd", "auc_gain"] == pytest.approx(1.0)
    assert gains.loc["adaptive_pgd", "auc_gain"] == pytest.approx(-1.0)
    assert gains.loc["pgd", "ci_low"] == pytest.approx(1.0)
    assert 40 < gains.loc["pgd", "resamples"] <= 50  # draws lacking a group are dropped


def test_no_gain_interval_without_enough_correct_inputs_for_an_auc():
    """9 correct of 400 (fewer than MIN_GROUP): no AUC, so no interval either, although some
    resamples draw 10 or more correct inputs."""
    rng = np.random.default_rng(0)
    correct = np.r_[np.ones(analysis.MIN_GROUP - 1, bool), np.zeros(391, bool)]
    con, rcon = rng.random(400), rng.random(400)
    gains = analysis.gain_table(model_rows("test", "pgd", con, rcon, correct), resamples=200)
    assert np.isnan(gains.loc[0, "auc_gain"]) and np.isnan(gains.loc[0, "ci_low"])
    assert gains.loc[0, "resamples"] > 0  # the old code made an interval of these


def test_metrics_cover_every_declared_key_and_leave_unconfigured_runs_nan():
    scores = scores_table()
    tprs = [0.5, 0.95]  # the TPR-95 metrics read 0.95, wherever it stands in the list
    detection = analysis.detection_table(scores)
    acceptance = analysis.acceptance_table(scores, tprs)
    rules = analysis.rules_table(acceptance, scores, tprs[0])
    gains = analysis.gain_table(scores, 20)
    m = METRICS.compute(
        Tables.of_backbone(
            "cnn",
            detection=detection,
            acceptance=acceptance,
            rules=rules,
            gains=gains,
            scores=scores,
        )
    )
    assert set(m) == set(METRICS)
    assert m["pgd_at_rr_auc_rcon_pgd"] == 1.0
    assert m["pgd_at_rr_auc_gain_pgd"] == pytest.approx(1.0 - m["pgd_at_rr_auc_con_pgd"])
    assert m["pgd_at_rr_pgd_acc"] == 0.5
    # TPR 95% of the 10 correct calibration pgd inputs (R-Con 0.05 .. 0.5) keeps all: t = 0.05
    pgd = scores.query("split == 'test' and input == 'pgd'")
    accepted = pgd.loc[pgd["rcon"] >= 0.05, "correct"].mean()
    assert m["pgd_at_rr_pgd_rejection_gain"] == pytest.approx(accepted - 0.5)
    assert np.isnan(m["trades_rr_auc_gain_pgd"])  # no TRADES run in the table
    assert np.isnan(m["pgd_at_clean_acc"])


def test_a_second_dataset_gets_its_own_prefixed_metrics_from_its_first_backbone():
    """CIFAR-100's metrics read the tables of the backbone data.extra puts on it, and stay
    null when no backbone trains there."""
    from reprise.papers.rejection import backbone_datasets

    scores = scores_table()
    tprs = [0.95]
    other = scores.assign(backbone="cnn_c100", correct=~scores["correct"])  # a different model
    both = pd.concat([scores, other], ignore_index=True)
    tables = dict(
        detection=analysis.detection_table(both),
        acceptance=analysis.acceptance_table(both, tprs),
        rules=analysis.rules_table(analysis.acceptance_table(both, tprs), both, tprs[0]),
        gains=analysis.gain_table(both, 20),
        scores=both,
    )
    data = {"dataset": "digits", "extra": {"cifar100": ["cnn_c100"]}}
    assert backbone_datasets(data, ["cnn", "cnn_c100"]) == {"cnn": "digits", "cnn_c100": "cifar100"}
    primary = Tables.of_backbone("cnn", **tables)
    alone = METRICS.compute(primary)
    assert np.isnan(alone["cifar100_pgd_at_rr_auc_gain_pgd"])
    primary.others = {"cifar100": Tables.of_backbone("cnn_c100", **tables)}
    m = METRICS.compute(primary)
    assert m["pgd_at_rr_auc_gain_pgd"] == alone["pgd_at_rr_auc_gain_pgd"]
    mine = METRICS.compute(Tables.of_backbone("cnn_c100", **tables))
    assert m["cifar100_pgd_at_rr_auc_gain_pgd"] == mine["pgd_at_rr_auc_gain_pgd"]
    assert m["cifar100_pgd_at_rr_auc_gain_pgd"] != m["pgd_at_rr_auc_gain_pgd"]
    for bad in (["cnn", "cnn"], ["resnet"]):
        with pytest.raises(ConfigError, match="data.extra.cifar100"):
            backbone_datasets({"dataset": "digits", "extra": {"cifar100": bad}}, ["cnn", "c100"])
    with pytest.raises(ConfigError, match="none trains on digits"):
        backbone_datasets({"dataset": "digits", "extra": {"cifar100": ["cnn"]}}, ["cnn"])


def test_corruptions_stay_in_range_and_grow_with_severity():
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for family in ("gaussian_noise", "gaussian_blur", "contrast", "brightness", "jpeg_compression"):
        dist = []
        for s in (1, 3, 5):
            out = corrupt(x, family, s, seed=0)
            assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
            dist.append((out - x).abs().mean().item())
        assert dist[0] < dist[2], family
    assert torch.equal(corrupt(x, "gaussian_noise", 2, 0), corrupt(x, "gaussian_noise", 2, 0))
    with pytest.raises(ConfigError, match="unknown procedural corruption"):
        corrupt(x, "fog", 1)


def test_feature_baselines_prefer_inputs_near_their_class():
    torch.manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    y = torch.arange(200) % 2
    z = centres[y] + 0.5 * torch.randn(200, 2)
    cfg = {"kd": {"gamma": None, "per_class": 100}, "lid": {"k": 10, "references": 200}}
    fitted = FeatureBaselines.fit(
        z, y, torch.ones(200, dtype=torch.bool), cfg | {"gda": {"ridge": 1e-6}}
    )
    near, far = torch.tensor([[0.1, 0.0]]), torch.tensor([[5.0, 6.0]])
    s = fitted.scores(torch.cat([near, far]), torch.tensor([0, 0]))
    for name in ("kd", "gda"):
        assert s[name][0] > s[name][1], name
    with pytest.raises(ConfigError, match="lid: k = 300"):
        FeatureBaselines.fit(
            z,
            y,
            torch.ones(200, dtype=torch.bool),
            cfg | {"lid": {"k": 300, "references": 1000}, "gda": {"ridge": 1e-6}},
        )


TINY = {
    "runs": ["pgd_at", "pgd_at_rr", "ccat_rr"],
    "train": {"epochs": 2, "monitor": {"test_size": 50}},
    "attack": {"steps": 2},
    "methods": {"ccat": {"attack": {"steps": 2}}},
    "evaluation": {
        "test_size": 120,
        "calibration_size": 100,
        "bootstrap": 10,
        "attacks": {
            "pgd": {"steps": 3},
            "pgd_cw": {"steps": 3},
            "multitarget": {"steps": 2},
            "adaptive_pgd": {"pgd": {"steps": 3}},
            "adaptive_cw": {"steps": 3, "search_steps": 1},
        },
        "baselines": {"lid": {"k": 5, "references": 200}, "kd": {"per_class": 50}},
    },
    "corruptions": {"names": ["gaussian_noise", "contrast"], "severities": [1, 5]},
}


@pytest.mark.slow
def test_snakemake_builds_the_rejection_dag_end_to_end_at_tiny_size(project_copy):
    """`snakemake rejection report` in a copy of the project with two epochs and short attacks."""
    out = build_tiny_paper(project_copy, "rejection", TINY)
    for name in ("con_rcon_histograms", "roc_curves", "auc_table", "corruptions"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
    scores = pd.read_parquet(out / "tables" / "scores" / "cnn" / "pgd_at_rr.parquet")
    assert set(scores["split"]) == {"calibration", "test", "corruption"}
    assert set(scores.loc[scores["input"] == "adaptive_pgd", "adapted_to"]) == {"con", "rcon"}
    metrics = yaml.safe_load((out / "metrics.json").read_text())
    assert set(metrics) == set(METRICS)
    assert 0 <= metrics["pgd_at_rr_clean_acc"] <= 1
    report = (project_copy / "results" / "smoke" / "REPORT.md").read_text()
    for claim in ("rr-auc-pgd", "rr-ccat", "rr-corruptions"):
        assert f"**{claim}**" in report


def test_corruption_table_without_any_corruption_auc_is_empty_not_an_error():
    """One tiny corrupted split can have too few wrong inputs for an AUC (it was a KeyError)."""
    scores = pd.concat(
        [model_rows("corruption", "fog-1", [0.9, 0.8], [0.9, 0.8], [True, True], source="fog")],
        ignore_index=True,
    )
    detection = analysis.detection_table(scores)
    assert detection["auc"].isna().all()  # no wrong input: no AUC
    columns = ["backbone", "run", "input", "source", "score", "split", "tpr", "acc_accepted"]
    table = analysis.corruption_table(detection, pd.DataFrame(columns=columns), 0.95)
    assert table.empty and {"corruption", "severity"} <= set(table.columns)
