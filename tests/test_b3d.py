"""B3D: NES estimates against exact gradients, the MAD rule by hand, batched training equal to
one-by-one training, detection of a backdoored tiny model, resume after SIGKILL."""

import itertools
import os
import signal
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from reprise.papers.b3d.model import Group
from reprise.papers.b3d.population import draw_recipe, stamp
from reprise.papers.b3d.reverse import (
    Oracle,
    ReverseConfig,
    anomaly_index,
    nes_grad,
    reverse_engineer,
    squash,
    true_grad,
)
from reprise.papers.b3d.train import clean_and_attack, train_group
from tests.core_data import digits, digits_root

ATTACKS = {
    "patch": {"sizes": [1, 2], "poison_rate": [0.1, 0.15]},
    "blend": {"alpha": [0.15, 0.25], "poison_rate": [0.1, 0.15]},
}


def toy_group(seed=0, size=2, classes=3):
    spec = {"arch": "mlp", "in_channels": 1, "size": size, "num_classes": classes, "width": 8}
    return Group(spec, [seed])


def cosine(a, b):
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def test_nes_pattern_gradient_matches_true_gradient():
    """With the mask pinned at 1 the objective is smooth in θ_p: NES ≈ its gradient."""
    torch.manual_seed(0)
    group = toy_group(size=4)
    x = torch.rand(1, 6, 1, 4, 4)
    theta_m = torch.full((1, 3, 4, 4), 20.0)  # g(20) = 1: the pattern replaces the image
    theta_p = torch.randn(1, 3, 1, 4, 4)
    lam = torch.zeros(1, 3)
    cfg = ReverseConfig(samples=4000, sigma=0.01)
    _, est = nes_grad(
        Oracle(group), x, theta_m, theta_p, lam, cfg, torch.Generator().manual_seed(1)
    )
    _, exact = true_grad(group, x, theta_m, theta_p, lam)
    for c in range(3):
        assert cosine(est[0, c], exact[0, c]) > 0.8


def test_nes_mask_gradient_matches_exact_bernoulli_expectation():
    """On a 2×2 image the expected objective over Bernoulli masks is a sum over 16 masks:
    its autograd gradient is the exact value the score-function estimate targets."""
    torch.manual_seed(0)
    group = toy_group()
    x = torch.rand(1, 5, 1, 2, 2)
    theta_m, theta_p = torch.randn(1, 3, 2, 2), torch.randn(1, 3, 1, 2, 2)
    lam = torch.full((1, 3), 0.3)
    cfg = ReverseConfig(samples=20000, sigma=1e-6)
    est, _ = nes_grad(
        Oracle(group), x, theta_m, theta_p, lam, cfg, torch.Generator().manual_seed(2)
    )

    tm = theta_m.clone().requires_grad_()
    pi, pattern = squash(tm), squash(theta_p)
    total = 0.0
    for bits in itertools.product([0.0, 1.0], repeat=4):
        m = torch.tensor(bits).view(1, 1, 2, 2).expand(1, 3, 2, 2)
        prob = (pi * m + (1 - pi) * (1 - m)).flatten(-2).prod(-1)  # 1×3
        with torch.no_grad():
            logits = group(stamp(x[:, None], m[:, :, None], pattern[:, :, None]).flatten(1, 2))
            ce = F.cross_entropy(
                logits.view(15, 3), torch.arange(3).repeat_interleave(5), reduction="none"
            ).view(1, 3, 5)
        total = total + prob * (ce.mean(-1) + lam * m.sum((-1, -2)))
    (exact,) = torch.autograd.grad(total.sum(), tm)
    for c in range(3):
        assert cosine(est[0, c], exact[0, c]) > 0.9


def test_nes_class_blocks_equal_one_call():
    """Splitting a step's queries into class blocks (memory cap) changes nothing."""
    group = Group(
        {"arch": "mlp", "in_channels": 1, "size": 4, "num_classes": 5, "width": 8}, [0, 1]
    )
    x, lam = torch.rand(2, 6, 1, 4, 4), torch.rand(2, 5)
    theta_m, theta_p = torch.randn(2, 5, 4, 4), torch.randn(2, 5, 1, 4, 4)
    cfg, oracles = ReverseConfig(samples=7), (Oracle(group), Oracle(group))
    whole = nes_grad(oracles[0], x, theta_m, theta_p, lam, cfg, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    blocks = nes_grad(oracles[1], x, theta_m, theta_p, lam, cfg, gen, max_inputs=100)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(whole, blocks, strict=True))
    assert oracles[0].queries.tolist() == oracles[1].queries.tolist() == [5 * 7 * 6] * 2


def test_anomaly_index_by_hand():
    norms = torch.tensor([[1.0, 10, 11, 12, 9, 10], [1.0, 2, 3, 4, 5, 6]])
    index, cls = anomaly_index(norms)
    # row 0: median 10, |deviations| 9,0,1,2,1,0 -> MAD 1 -> (10 - 1) / 1.4826
    # row 1: median 3.5, deviations 2.5,1.5,.5,.5,1.5,2.5 -> MAD 1.5 -> 2.5 / (1.4826 * 1.5)
    assert torch.allclose(index, torch.tensor([9 / 1.4826, 2.5 / (1.4826 * 1.5)]))
    assert cls.tolist() == [0, 0]
    assert (index > 2).tolist() == [True, False]


def test_group_training_equals_training_each_model_alone():
    """The stacked models share nothing: a group of two ends where each trained alone ends."""
    train = digits("train").subset(128)
    recipes = [draw_recipe(i, 5, (1, 8, 8), 10, ATTACKS) for i in (0, 2)]  # clean models
    spec = {"arch": "mlp", "in_channels": 1, "size": 8, "num_classes": 10, "width": 16}
    cfg = {"epochs": 2, "batch_size": 32, "lr": 1e-2, "weight_decay": 0.0}
    both = Group(spec, [r["seed"] for r in recipes])
    train_group(both, train.x, train.y, recipes, cfg, seed=0)
    for i, r in enumerate(recipes):
        alone = Group(spec, [r["seed"]])
        train_group(alone, train.x, train.y, [r], cfg, seed=0)
        for k, v in alone.member(0).items():
            assert torch.allclose(v, both.member(i)[k], atol=1e-5), k


def _tiny_population(n=2, epochs=15):
    train = digits("train")
    recipes = [draw_recipe(i, 11, (1, 8, 8), 10, {"patch": ATTACKS["patch"]}) for i in range(n)]
    spec = {"arch": "mlp", "in_channels": 1, "size": 8, "num_classes": 10, "width": 32}
    group = Group(spec, [r["seed"] for r in recipes])
    cfg = {"epochs": epochs, "batch_size": 64, "lr": 3e-3, "weight_decay": 0.0}
    train_group(group, train.x, train.y, recipes, cfg, seed=0)
    return group, recipes


def test_backdoored_model_flagged_clean_model_not():
    """Model 0 is clean, model 1 carries a BadNets patch: B3D, from probabilities alone,
    flags model 1 at its target class and leaves model 0 alone."""
    group, recipes = _tiny_population()
    test = digits("test")
    acc, asr = clean_and_attack(group, test.x, test.y, recipes)
    assert acc.min() > 0.85 and asr[1] > 0.9  # the population recipe works
    pool = test.x[:100]
    cfg = ReverseConfig(steps=200, samples=10, batch=16, lr=0.1)
    out = reverse_engineer(group, pool.expand(2, *pool.shape), cfg, "b3d", seed=0)
    index, cls = anomaly_index(out["norm"])
    assert index[0] < 2 < index[1] and cls[1] == recipes[1]["target"]
    assert out["queries"].tolist() == [200 * 10 * (10 * 16 + 16)] * 2  # NES draws + checks


KILL_SCRIPT = """
import os, pathlib, signal, sys
import torch
from reprise import data
from reprise.papers.b3d.model import Group
from reprise.papers.b3d.population import draw_recipe
from reprise.papers.b3d.reverse import ReverseConfig, reverse_engineer
from reprise.papers.b3d.train import train_group
from reprise.resume import Resume

root, workdir, kill_at, out = sys.argv[1:]
saves = 0


class Killed(Resume):  # SIGKILL right after the save numbered kill_at (over both loops)
    def save(self, state):
        global saves
        super().save(state)
        saves += 1
        if saves == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)


torch.set_num_threads(1)
torch.manual_seed(0)
train = data.load("digits", "train", root)
attacks = {"patch": {"sizes": [2], "poison_rate": [0.1, 0.1]}}
recipes = [draw_recipe(i, 3, (1, 8, 8), 10, attacks) for i in range(2)]
spec = {"arch": "mlp", "in_channels": 1, "size": 8, "num_classes": 10, "width": 16}
group = Group(spec, [r["seed"] for r in recipes])
cfg = {"epochs": 3, "batch_size": 128, "lr": 1e-2, "weight_decay": 0.0}
x, y = train.x[:512], train.y[:512]
train_group(group, x, y, recipes, cfg, 0, Killed(pathlib.Path(workdir, "train"), "k"))
pool = train.x[:40].expand(2, 40, 1, 8, 8)
rc = ReverseConfig(steps=60, samples=4, batch=8)
rev = reverse_engineer(group, pool, rc, "b3d", 0, Killed(pathlib.Path(workdir, "rev"), "k"))
torch.save({"group": group.state_dict(), **rev}, out)
"""


@pytest.mark.slow
def test_killed_population_and_reverse_resume_to_identical_result(tmp_path):
    """SIGKILL after the 2nd training epoch, then after the 1st reverse-engineering save:
    the third run ends bit-identical to a run never killed."""
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(workdir, kill_at):
        out = tmp_path / f"{workdir}-{kill_at}.pt"
        cmd = [sys.executable, str(script), digits_root(), str(tmp_path / workdir), str(kill_at)]
        p = subprocess.run([*cmd, str(out)], env=env, capture_output=True, text=True)
        return p, out

    p, whole = run("whole", 0)
    assert p.returncode == 0, p.stderr
    for kill_at in (2, 2):  # run 1 dies at epoch 2; run 2 resumes, dies at reverse save 1
        p, _ = run("killed", kill_at)
        assert p.returncode == -signal.SIGKILL, p.stderr
    p, resumed = run("killed", 0)
    assert p.returncode == 0, p.stderr
    a, b = torch.load(whole, weights_only=True), torch.load(resumed, weights_only=True)
    assert a["group"].keys() == b["group"].keys()
    assert all(torch.equal(a["group"][k], b["group"][k]) for k in a["group"])
    for k in ("norm", "mask", "pattern", "queries"):
        assert torch.equal(a[k], b[k]), k


def test_detection_scores_by_hand():
    import pandas as pd

    from reprise.papers.b3d.evaluate import mitigation, scores

    df = pd.DataFrame(
        {
            "backdoored": [False, False, False, True, True, True],
            "flagged": [False, True, False, True, True, False],
            "anomaly_index": [0.5, 2.5, 1.0, 3.0, 2.2, 0.8],
            "found_target": [False, False, False, True, False, False],
            "method": "b3d",
            "mit_clean_before": [None, 0.9, None, 0.8, 0.7, None],
            "mit_clean_after": [None, 0.8, None, 0.8, 0.6, None],
            "mit_asr_before": [None, None, None, 1.0, 0.9, None],
            "mit_asr_after": [None, None, None, 0.1, 0.3, None],
        }
    )
    s = scores(df)
    assert s["accuracy"] == pytest.approx(4 / 6) and s["tpr"] == pytest.approx(2 / 3)
    assert s["fpr"] == pytest.approx(1 / 3) and s["target_found"] == pytest.approx(0.5)
    # pairs (bad, clean) ranked right: 3.0 > all 3; 2.2 > 0.5, 1.0; 0.8 > 0.5 -> 6 of 9
    assert s["auroc"] == pytest.approx(6 / 9)
    m = mitigation(df, "b3d")
    assert m["clean_before"] == pytest.approx(0.8) and m["clean_after"] == pytest.approx(2.2 / 3)
    assert m["asr_before"] == pytest.approx(0.95) and m["asr_after"] == pytest.approx(0.2)


TINY = {
    "chunks": ["0"],
    "population": {"per_chunk": 4},
    "train": {"epochs": 3},
    "detect": {"pool": 40, "mitigation_samples": 60},
    "methods": {
        "nc": {"reverse": {"steps": 10}},
        "b3d": {"reverse": {"steps": 10, "samples": 4, "batch": 8}},
        "b3d_ss": {
            "per_class": 2,
            "synth": {"steps": 5, "samples": 4},
            "reverse": {"steps": 10, "samples": 4, "batch": 8},
        },
    },
}


@pytest.mark.slow
def test_snakemake_builds_the_b3d_dag_end_to_end_at_tiny_size(project_copy):
    """`snakemake b3d report` in a copy of the project: 4 models, every method, figures."""
    import json

    import pandas as pd

    from reprise.papers.b3d import METRICS
    from tests.conftest import build_tiny_paper

    out = build_tiny_paper(project_copy, "b3d", TINY)
    for name in ("detection", "roc", "triggers", "norms", "anomaly", "queries"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == set(METRICS)
    assert metrics["auroc_b3d"] is not None and metrics["accuracy_b3d_cifar10"] is None
    table = pd.read_parquet(out / "tables" / "detection.parquet")
    assert set(table["method"]) == {"nc", "b3d", "b3d_ss"}
    report = (project_copy / "results" / "smoke" / "REPORT.md").read_text()
    assert "**b3d-auroc-above-chance**" in report


def test_detect_refuses_a_checkpoint_that_is_not_a_population_chunk(tmp_path, capsys):
    import json

    from reprise import cli, data
    from reprise.io import save_checkpoint

    save_checkpoint(tmp_path / "other.pt", {"state_dict": {"w": torch.zeros(2)}})
    params = {
        "methods": {"b3d": {"reverse": {"steps": 2}}},
        "detect": {"pool": 10, "mitigation_samples": 10},
    }
    test = data.prepared_path(digits_root(), "digits", "test")
    out = tmp_path / "detect.parquet"
    args = [
        "b3d",
        "detect",
        "--params",
        json.dumps(params),
        "--input",
        f"models={tmp_path}/other.pt",
    ]
    assert cli.main([*args, "--input", f"test={test}", "--output", f"table={out}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a b3d population chunk" in err[0]
    assert not out.exists()
