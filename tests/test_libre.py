"""LiBRe: the batched ensemble pass, the noise hinge, fine-tuning (resume, what it trains),
the scores and the detection table."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from reprise.errors import CheckpointError, ConfigError
from reprise.models import build_model
from reprise.papers.libre import analysis
from reprise.papers.libre import model as bayes
from reprise.papers.libre.finetune import (
    finetune,
    hinge,
    kl_term,
    member_lr,
    noisy_copies,
    optimisers,
)
from reprise.papers.libre.stacked import Members, kl_to_prior, member_parameters
from reprise.resume import Resume

NOISE = {"eps": "16/255", "scale": [0.5, 2.0], "blur_prob": 0.5,
         "blur_kernels": [3], "blur_sigma": [0.5, 1.5]}  # fmt: skip
FT = {"epochs": 2, "batch_size": 32, "lr": 0.05, "ft_lr": 0.005, "momentum": 0.9,
      "weight_decay": 1e-4, "noise": NOISE}  # fmt: skip


def scramble(model):
    """Give every member its own weights (as after fine-tuning)."""
    torch.manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Members) and m.posterior == "ensemble":
                m.value.add_(0.1 * torch.randn_like(m.value))
    return model


def member_copy(dnn, refined, c: int, layers: int):
    """Member c as a plain network: the DNN with member c's weights in its last layers."""
    net = copy.deepcopy(dnn)
    _, last = bayes.split(net, layers)
    plain = [
        m
        for p in last
        for m in p.modules()
        if isinstance(m, nn.Conv2d | nn.Linear | nn.BatchNorm2d | nn.GroupNorm)
    ]
    stacked = [
        m for m in refined.block.modules() if hasattr(m, "weight") and isinstance(m.weight, Members)
    ]
    assert len(plain) == len(stacked)
    for p, s in zip(plain, stacked, strict=True):
        p.weight.data.copy_(s.weight()[c])
        if p.bias is not None:
            p.bias.data.copy_(s.bias()[c])
        if isinstance(p, nn.BatchNorm2d):
            n = p.num_features
            p.running_mean.copy_(s.running_mean[c * n : (c + 1) * n])
            p.running_var.copy_(s.running_var[c * n : (c + 1) * n])
    return net.eval()


@pytest.mark.parametrize(
    "arch, opts, layers, shape",
    [
        ("small_cnn", {"width": 0.25, "in_channels": 1}, 8, (1, 8, 8)),
        ("resnet18", {"width": 0.0625, "norm": "bn"}, 3, (3, 16, 16)),
        ("resnet18", {"width": 0.0625, "norm": "gn"}, 3, (3, 16, 16)),
        # the authors' setting: layer4[-1] (a Bottleneck, identity shortcut) + pool + flatten
        ("resnet50", {"width": 0.0625, "norm": "bn"}, 3, (3, 64, 64)),
        # layer4 whole: its first Bottleneck has a strided projection shortcut
        ("resnet50", {"width": 0.0625, "norm": "gn"}, 5, (3, 64, 64)),
    ],
)
def test_batched_members_equal_a_loop_over_members(arch, opts, layers, shape):
    torch.manual_seed(0)
    dnn = build_model(arch, 10, **opts).eval()
    refined = scramble(bayes.Refined(copy.deepcopy(dnn), 4, "ensemble", layers)).eval()
    x = torch.rand(6, *shape)
    with torch.no_grad():
        z = refined.features(x)
        pen, _ = refined.split(z)
        probs = []
        for c in range(4):
            net = member_copy(dnn, refined, c, layers)
            assert torch.allclose(pen[:, c], net.features(x), atol=1e-5)
            probs.append(torch.softmax(net(x), 1))
        mean = torch.stack(probs).mean(0)
        assert torch.allclose(refined.head(z).exp(), mean, atol=1e-5)
        # the score: the variance over members of each member's pre-pool map
        u = refined.uncertainty(z)
        assert u.shape == (6,) and (u > 0).all()


def test_a_fresh_refinement_is_the_pretrained_network():
    torch.manual_seed(0)
    dnn = build_model("small_cnn", 10, width=0.25, in_channels=1).eval()
    x = torch.rand(5, 1, 8, 8)
    for model in (bayes.Refined(dnn, 3, "ensemble", 8), bayes.Refined(dnn, 3, "ensemble", None)):
        with torch.no_grad():
            z = model.eval().features(x)
            assert torch.allclose(model.head(z).exp(), torch.softmax(dnn(x), 1), atol=1e-5)
            assert model.uncertainty(z).abs().max() < 1e-10


def test_noise_hinge_by_hand():
    torch.manual_seed(0)
    z = torch.randn(5, 2, 7)  # two members: the pair is always (0, 1) or (1, 0)
    loss, m = hinge(z, gamma=1.5)
    by_hand = ((z[:, 0] - z[:, 1]) ** 2).mean(1)
    assert torch.allclose(m, by_hand)
    assert torch.isclose(loss, torch.clamp(1.5 - by_hand, min=0).mean())
    # with many members the pair is distinct and uniform
    z = torch.arange(10.0).view(1, 10, 1).expand(4000, 10, 1)
    _, m = hinge(z, 0.0)
    assert (m > 0).all()  # never a == b
    assert abs(m.mean().item() - 18.33) < 1.0  # E (a − b)² over distinct pairs of 0..9


def test_noisy_copies_stay_in_the_box_and_bound():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 8, 8)
    for _ in range(5):
        noisy = noisy_copies(x, {**NOISE, "blur_prob": 0.0})
        assert noisy.min() >= 0 and noisy.max() <= 1
        assert (noisy - x).abs().max() <= 2 * 16 / 255 + 1e-6


def test_member_rate_is_cosine_from_lr_to_ft_lr():
    assert member_lr(FT, 0) == pytest.approx(0.05)
    assert member_lr(FT, 2) == pytest.approx(0.005)
    assert member_lr(FT, 1) == pytest.approx((0.05 + 0.005) / 2)


def test_members_get_their_own_optimiser():
    dnn = build_model("small_cnn", 10, width=0.25, in_channels=1)
    refined = bayes.Refined(dnn, 3, "ensemble", 2)
    own = member_parameters(refined)
    assert own and all(p.shape[0] == 3 for p in own)
    mf = bayes.Refined(dnn, 3, "mean_field", 2)
    psi = member_parameters(mf)  # ψ only: μ continues the pre-trained weights
    assert [p.shape for p in psi] == [p.shape for p in dnn.body[-2].parameters()]


def mean_field(members=3, layers=8, seed=0):
    torch.manual_seed(seed)
    dnn = build_model("small_cnn", 10, width=0.25, in_channels=1)
    mf = bayes.Refined(dnn, members, "mean_field", layers)
    with torch.no_grad():  # ψ away from its init range, so the σ² terms matter
        for m in mf.modules():
            if isinstance(m, Members):
                m.psi.copy_(torch.empty_like(m.psi).uniform_(-3.0, 0.5))
    return mf


def test_mean_field_kl_is_the_gaussian_kl_and_the_authors_gradients():
    mf = mean_field()
    prior_var = 0.37
    prior = torch.distributions.Normal(0.0, prior_var**0.5)
    tensors = [m for m in mf.modules() if isinstance(m, Members)]
    want = sum(
        torch.distributions.kl_divergence(torch.distributions.Normal(m.mu, m.psi.exp()), prior)
        .sum()
        .double()
        for m in tensors
    )
    assert len(tensors) == 5  # conv weight; BatchNorm and linear weight and bias
    assert kl_to_prior(mf, prior_var).item() == pytest.approx(want.item(), rel=1e-5)
    ens = bayes.Refined(build_model("small_cnn", 10, width=0.25, in_channels=1), 3, "ensemble", 2)
    assert kl_to_prior(ens, prior_var).item() == 0.0
    # KL / N with the prior N(0, 1/(λN)) has the gradients of the authors' optimisers:
    # λμ (SGD weight decay on μ) and λσ² − 1/N (PsiSGD on ψ)
    lam, n = 1e-4, 1437
    kl_term(mf, {"kind": "mean_field", "prior_decay": lam}, n).backward()
    for m in tensors:
        torch.testing.assert_close(m.mu.grad, lam * m.mu.detach())
        want_psi = lam * (2 * m.psi.detach()).exp() - 1 / n
        torch.testing.assert_close(m.psi.grad, want_psi, rtol=1e-4, atol=1e-9)


def test_kl_has_the_prior_s_weight_decay_and_the_rest_keeps_its_own():
    mf = mean_field()
    opt_rest, opt_own = optimisers(mf, FT)
    covered = {id(p) for m in mf.modules() if isinstance(m, Members) for p in (m.mu, m.psi)}
    for opt in (opt_rest, opt_own):
        for g in opt.param_groups:
            in_kl = {id(p) in covered for p in g["params"]}
            assert len(in_kl) == 1  # a group is all KL-covered or none
            assert g["weight_decay"] == (0.0 if in_kl == {True} else FT["weight_decay"])
    ens = bayes.Refined(build_model("small_cnn", 10, width=0.25, in_channels=1), 4, "ensemble", 2)
    _, own = optimisers(ens, FT)
    assert [g["weight_decay"] for g in own.param_groups] == [FT["weight_decay"] / 4]


@pytest.fixture(scope="module")
def tiny_data():
    from tests.core_data import digits

    return digits("train").subset(96), digits("test").subset(64)


def test_finetune_trains_disagreement_on_noise_and_resumes(tiny_data, tmp_path):
    train, test = tiny_data
    method = {"kind": "libre", "members": 4, "layers": 8, "alpha": 1.0, "gamma": 0.5}

    def fresh():
        torch.manual_seed(0)
        dnn = build_model("small_cnn", 10, width=0.25, in_channels=1)
        return bayes.build("libre", dnn, method)

    torch.manual_seed(1)
    full = fresh()
    rows = finetune(full, train, FT, method, seed=0, test=test)
    assert rows[-1]["disagreement"] > rows[0]["disagreement"] > 0

    class Killed(Exception):
        pass

    resume = Resume(tmp_path / "state", "k")

    class KillAfterFirst(Resume):
        def save(self, state):
            resume.save(state)
            raise Killed

    torch.manual_seed(1)
    with pytest.raises(Killed):
        finetune(fresh(), train, FT, method, seed=0, resume=KillAfterFirst(), test=test)
    torch.manual_seed(99)  # the saved RNG state, not this one, continues the run
    resumed = fresh()
    rows2 = finetune(resumed, train, FT, method, seed=0, resume=resume, test=test)
    assert rows2 == rows
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("kind", ["mean_field", "libre"])
def test_the_loss_has_the_kl_term_for_mean_field_only(tiny_data, kind):
    train, _ = tiny_data
    method = {"kind": kind, "members": 3, "layers": 2, "alpha": 1.0, "gamma": 0.5}
    if kind == "mean_field":
        method["prior_decay"] = 1e-4
    torch.manual_seed(0)
    model = bayes.build(kind, build_model("small_cnn", 10, width=0.25, in_channels=1), method)
    (row,) = finetune(model, train, {**FT, "epochs": 1}, method, seed=0)
    assert row["loss"] == pytest.approx(row["ce"] + row["hinge"] + row["kl"], rel=1e-6)
    if kind == "mean_field":  # σ ≈ e^-5.5 ≪ the prior σ_p = √(1/(λN)) ≈ 10 (N = 96)
        assert row["kl"] > 1.0
    else:
        assert row["kl"] == 0.0


def test_a_bad_prior_decay_is_one_clear_error():
    from reprise.config import check_paper
    from reprise.yamlconf import load_yaml

    mf = mean_field()
    for bad in (None, 0, -1e-4, "1e-4", True):
        method = {"kind": "mean_field"} | ({} if bad is None else {"prior_decay": bad})
        with pytest.raises(ConfigError, match="prior_decay"):
            kl_term(mf, method, 100)
    cfg = load_yaml("config/papers/libre.yaml")
    for method, value, expected in (
        ("mfvi_last", -1e-4, "number > 0"),
        ("mfvi_last", None, "required"),
        ("libre", 1e-4, "only a mean_field method"),
    ):
        bad_cfg = copy.deepcopy(cfg)
        entry = bad_cfg["smoke"]["methods"][method]
        if value is None:
            del entry["prior_decay"]
        else:
            entry["prior_decay"] = value
        with pytest.raises(ConfigError, match=rf"prior_decay.*{expected}"):
            check_paper("libre", bad_cfg)


def test_mc_dropout_samples_differ_and_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    dnn = build_model("small_cnn", 10, width=0.25, in_channels=1)
    mc = bayes.build("mc_dropout", dnn, {"members": 5, "dropout": 0.2, "layers": None}).eval()
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        z = mc.features(x)
        assert (mc.uncertainty(z) > 0).all() and (mc.softmax_variance(z) > 0).all()
    path = tmp_path / "m.pt"
    bayes.save(path, mc, dnn.spec, "mc_dropout", {"members": 5, "dropout": 0.2, "layers": None})
    loaded, _ = bayes.load(path)
    assert type(loaded).__name__ == "MCDropout" and loaded.members == 5


def test_bad_inputs_fail_clearly(tmp_path):
    from reprise.io import save_checkpoint

    dnn = build_model("small_cnn", 10, width=0.25, in_channels=1)
    with pytest.raises(ConfigError, match="layers"):
        bayes.Refined(dnn, 3, "ensemble", 99)
    with pytest.raises(ConfigError, match="posterior"):
        bayes.Refined(dnn, 3, "laplace", 2)
    with pytest.raises(ConfigError, match="kind"):
        bayes.build("swag", dnn, {"members": 3})
    path = tmp_path / "x.pt"
    save_checkpoint(path, {"state_dict": {}})
    with pytest.raises(CheckpointError, match="LiBRe"):
        bayes.load(path)


def test_detection_table_orients_uncertainty_towards_adversarial():
    rng = np.random.default_rng(0)
    n = 200
    rows = []
    for name, shift in (("clean", 0.0), ("pgd", 3.0), ("fgsm", -3.0)):
        u = rng.normal(shift, 1, n)
        rows.append(pd.DataFrame({"method": "libre", "score": "feature_var", "input": name,
                                  "idx": np.arange(n), "y": 0, "correct": True,
                                  "uncertainty": u, "linf": 0.0}))  # fmt: skip
    table = analysis.detection_table(pd.concat(rows))
    auroc = dict(zip(table["input"], table["auroc"], strict=True))
    assert auroc["pgd"] > 0.95 and auroc["fgsm"] < 0.05
    assert table.loc[table["input"] == "pgd", "paper_auroc"].item() == 0.9936
    assert (table["tpr_at_fpr_1"] <= table["tpr_at_fpr_10"]).all()


TINY = {
    "pretrain": {"epochs": 1},
    "methods": {
        "libre": {"kind": "libre", "members": 3, "layers": 2, "alpha": 1.0, "gamma": 0.5},
        "no_hinge": {"kind": "libre", "members": 3, "layers": 2, "alpha": 0.0, "gamma": 0.5},
        "mc_dropout": {"kind": "mc_dropout", "members": 3, "dropout": 0.2, "layers": 2},
    },
    "detectors": ["libre", "no_hinge", "mc_dropout", "dnn"],
    "finetune": {"epochs": 1},
    "evaluation": {
        "test_size": 40,
        "batch_size": 40,
        "attacks": {
            "fgsm": {"kind": "fgsm", "eps": "16/255"},
            "pgd": {"kind": "pgd", "eps": "16/255", "step_size": "4/255", "steps": 2},
            "cw": {"kind": "pgd", "loss": "cw", "eps": "16/255", "step_size": "4/255", "steps": 2},
            # the overrides merge into the smoke attacks: make the other iterative ones short
            "bim": {"kind": "bim", "eps": "16/255", "step_size": "4/255", "steps": 2},
            "mim": {"kind": "mim", "eps": "16/255", "step_size": "4/255", "steps": 2},
            "tim": {
                "kind": "mim",
                "eps": "16/255",
                "step_size": "4/255",
                "steps": 2,
                "ti_kernel": 5,
                "ti_nsig": 3.0,
            },
            "di_mim": {"kind": "mim", "eps": "16/255", "step_size": "4/255", "steps": 2},
            "bim_l2": {"kind": "bim_l2", "eps": "16/255", "step_size": "4/255", "steps": 2},
            "pgd_l2": {"kind": "pgd_l2", "eps": "16/255", "step_size": "4/255", "steps": 2},
        },
        "transfer": ["pgd"],
        "spsa": {
            "methods": ["libre"],
            "size": 10,
            "attack": {"kind": "spsa", "eps": "16/255", "steps": 1, "samples": 4},
        },
        "adaptive": {"methods": ["libre"], "lambda": 1.0, "attacks": ["pgd"]},
        "baselines": {
            "kd": {"gamma": None, "per_class": 50},
            "lid": {"k": 5, "references": 200},
            "gda": {"ridge": 1.0e-6},
        },  # fmt: skip
    },
    "cost": {"batch_size": 40, "repeats": 1},
}


@pytest.mark.slow
def test_snakemake_builds_the_libre_dag_end_to_end_at_tiny_size(project_copy):
    """`snakemake libre report` in a copy of the project, one epoch and two-step attacks."""
    import yaml

    from reprise.papers.libre.metrics import METRICS
    from tests.conftest import build_tiny_paper

    out = build_tiny_paper(project_copy, "libre", TINY)
    for name in ("auroc_table", "tpr_at_fpr", "uncertainty_densities", "roc_curves"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
    detection = pd.read_parquet(out / "tables" / "detection.parquet")
    libre = set(detection.loc[detection["method"] == "libre", "input"])
    assert {"fgsm", "pgd", "cw", "transfer-pgd", "spsa", "adaptive-pgd"} <= libre
    assert set(detection["score"]) == {"feature_var", "softmax_var", "kd", "lid"}
    metrics = yaml.safe_load((out / "metrics.json").read_text())
    assert set(metrics) == set(METRICS.keys())
    assert metrics["top1_dnn"] is not None and metrics["libre_white_box_attacks_run"] == 10
    assert "**libre-detects-most-attacks**" in (out.parent / "REPORT.md").read_text()


def test_pretrain_takes_published_weights_instead_of_training(tmp_path):
    """`pretrained: <file>` (the ImageNet variant): torchvision's weights, not a training run
    (the train split is never read); a missing file is one clear error and no output."""
    from reprise.data.prepared import save_split
    from reprise.models import load_model
    from reprise.models.pretrained import IMAGENET_MEAN, IMAGENET_STD
    from reprise.papers.libre import steps
    from reprise.runtime import Runtime
    from tests.test_bottleneck_resnet import torchvision_file

    weights = tmp_path / "resnet50-0676ba61.pth"
    state = torchvision_file(weights)
    x = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    save_split(tmp_path / "test.pt", x, torch.tensor([0, 5, 999]), [f"c{i}" for i in range(1000)])
    model = {"arch": "resnet50", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    net = {"model": model, "pretrained": str(weights)}
    params = {
        "data": {"dataset": "imagenet"},
        "networks": {"dnn": net},
        "pretrain": {"epochs": 1, "batch_size": 2, "lr": 0.1, "monitor": {"test_size": 2}},
    }
    inputs = {"train": tmp_path / "never-read.pt", "test": tmp_path / "test.pt"}
    out = {"model": tmp_path / "dnn.pt", "history": tmp_path / "dnn.parquet"}
    steps.pretrain(params, inputs, out, Runtime(device_name="cpu"))
    dnn, ckpt = load_model(out["model"])
    assert torch.equal(dnn.state_dict()["head.weight"], state["fc.weight"])
    assert ckpt["pretrained"] == str(weights) and dnn.spec["arch"] == "resnet50"
    history = pd.read_parquet(out["history"])
    assert history["test_size"].tolist() == [2] and 0 <= history["test_acc"].item() <= 1

    net["pretrained"] = str(tmp_path / "absent.pth")
    out = {"model": tmp_path / "b.pt", "history": tmp_path / "b.parquet"}
    with pytest.raises(CheckpointError, match="absent.pth does not exist"):
        steps.pretrain(params, inputs, out, Runtime(device_name="cpu"))
    assert not out["model"].exists() and not out["history"].exists()


def test_the_imagenet_variant_plans_and_says_which_model(project_copy):
    """config/libre-imagenet.yaml switches the paper scale to ImageNet ResNet-50; the setting
    the report prints says which model each scale uses."""
    from reprise.config import Config
    from reprise.report import _paper_section
    from tests.conftest import run

    cmd = ["snakemake", "-n", "libre", "--cores", "1", "--config", "scale=paper"]
    p = run([*cmd, "--configfile", "config/libre-imagenet.yaml"], cwd=project_copy, merge=True)
    assert "data/prepared/imagenet/test.pt" in p.stdout and '"arch": "resnet50"' in p.stdout
    assert "libre_finetune" in p.stdout
    paper = {"title": "LiBRe", "paper": {"setting": "ImageNet ResNet-50"}, "figures": {}}
    cfg = Config(main={"scale": "paper"}, papers={"libre": paper})
    lines = _paper_section("libre", cfg, pd.DataFrame({"kind": []}), [], project_copy)
    assert "Setting (paper): ImageNet ResNet-50" in lines


def test_spsa_and_adaptive_draws_do_not_depend_on_the_attacks_listed_before_them():
    from reprise.data.prepared import ImageData
    from reprise.papers.libre.scoring import input_sets

    torch.manual_seed(0)
    dnn = build_model("small_cnn", 10, width=0.25, in_channels=1).eval()
    model = bayes.Refined(dnn, 3, "ensemble", 8).eval()
    test = ImageData(torch.rand(6, 1, 8, 8), torch.arange(6), [str(i) for i in range(10)])
    pgd = {"kind": "pgd", "eps": "16/255", "step_size": "4/255", "steps": 2}
    cfg = {
        "batch_size": 6,
        "spsa": {"methods": ["libre"], "size": 4,
                 "attack": {"kind": "spsa", "eps": "16/255", "steps": 1, "samples": 4}},
        "adaptive": {"methods": ["libre"], "lambda": 1.0, "attacks": ["pgd"]},
    }  # fmt: skip
    sets = []
    for attacks in ({"pgd": pgd}, {"fgsm": {"kind": "fgsm", "eps": "16/255"}, "pgd": pgd}):
        out = {}
        for name, x in input_sets("libre", model, test, {}, {**cfg, "attacks": attacks}):
            out[name] = x
            torch.rand(len(out))  # the caller's scoring may draw too, more for more sets
        sets.append(out)
    for name in ("spsa", "adaptive-pgd", "pgd"):
        assert torch.equal(sets[0][name], sets[1][name]), name
