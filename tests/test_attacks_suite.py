"""The attacks added for LiBRe (MIM, TIM, DI-MIM, FGSM/BIM/PGD-L2, SPSA and the named
suite): threat model, success on an undefended model, and agreement with torchattacks where
it has the attack (skipped when torchattacks is not installed)."""

import math

import pytest
import torch
import torch.nn.functional as F

from reprise.attacks import margin
from reprise.attacks.momentum import diverse_input, gaussian_kernel, mim
from reprise.attacks.spsa import estimate_gradient
from reprise.attacks.suite import KINDS, build_attack
from reprise.errors import ConfigError
from reprise.models import build_model
from tests.core_data import digits, trained_small_cnn

EPS = 0.15
SUITE = {
    "fgsm": {"kind": "fgsm", "eps": EPS},
    "bim": {"kind": "bim", "eps": EPS, "step_size": 0.02, "steps": 10},
    "pgd": {"kind": "pgd", "eps": EPS, "step_size": 0.02, "steps": 10},
    "cw_pgd": {"kind": "pgd", "eps": EPS, "step_size": 0.02, "steps": 10, "loss": "cw"},
    "mim": {"kind": "mim", "eps": EPS, "step_size": 0.02, "steps": 10},
    "tim": {"kind": "mim", "eps": EPS, "step_size": 0.02, "steps": 10, "ti_kernel": 3},
    "di_mim": {"kind": "mim", "eps": EPS, "step_size": 0.02, "steps": 10, "di_prob": 1.0},
    "fgsm_l2": {"kind": "fgsm_l2", "eps": EPS},
    "bim_l2": {"kind": "bim_l2", "eps": EPS, "step_size": 0.02, "steps": 10},
    "pgd_l2": {"kind": "pgd_l2", "eps": EPS, "step_size": 0.02, "steps": 10},
    "spsa": {"kind": "spsa", "eps": EPS, "steps": 10, "lr": 0.05, "samples": 64, "chunk": 64},
    # Croce and Hein's package; a custom pair at few iterations, as at smoke
    "autoattack": {
        "kind": "autoattack",
        "eps": EPS,
        "attacks": ["apgd-ce", "apgd-t"],
        "n_iter": 10,
        "target_classes": 3,
    },
}


@pytest.fixture(scope="module")
def model():
    return trained_small_cnn()


@pytest.fixture(scope="module")
def batch():
    test = digits("test")
    return test.x[:100], test.y[:100]


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


@pytest.mark.parametrize("name", SUITE)
def test_bound_and_success(model, batch, name):
    x, y = batch
    torch.manual_seed(0)
    x_adv = build_attack(name, SUITE[name])(model, x, y)
    d = (x_adv - x).flatten(1)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    if name.endswith("_l2"):  # ε per pixel × √D
        assert (d.norm(dim=1) <= EPS * math.sqrt(x[0].numel()) + 1e-5).all()
    else:
        assert (d.abs().amax(1) <= EPS + 1e-6).all()
    clean, adv = accuracy(model, x, y), accuracy(model, x_adv, y)
    assert clean > 0.9
    assert adv < clean - 0.3, f"{name}: accuracy {clean:.2f} -> {adv:.2f}"


def test_suite_names_every_kind_and_rejects_unknown():
    assert {spec["kind"] for spec in SUITE.values()} | {"cw"} == set(KINDS)
    with pytest.raises(ConfigError, match="kind"):
        build_attack("x", {"kind": "deepfool", "eps": 0.1})
    with pytest.raises(ConfigError, match="ti_kernel"):
        build_attack("x", {"kind": "mim", "eps": 0.1, "step_size": 0.1, "steps": 1, "ti_kernel": 4})


def test_gaussian_kernel_and_diverse_input():
    k = gaussian_kernel(5, 3.0)
    assert torch.isclose(k.sum(), torch.tensor(1.0)) and k[2, 2] == k.max()
    assert torch.equal(k, k.T) and torch.equal(k, k.flip(0))
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    out = diverse_input(x, 1.1, 1.0)
    assert out.shape == x.shape and not torch.equal(out, x)
    out.sum().backward()  # differentiable
    assert x.grad.abs().sum() > 0
    assert diverse_input(x, 1.1, 0.0) is x


def test_spsa_estimate_points_along_the_gradient(model, batch):
    x, y = batch[0][:8], batch[1][:8]
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(margin(model(xg), y).sum(), xg)
    torch.manual_seed(0)
    est = estimate_gradient(model.eval(), x, y, margin, delta=0.01, samples=2000, chunk=500)
    cos = F.cosine_similarity(est.flatten(1), g.flatten(1), dim=1)
    assert cos.min() > 0.5, cos


# --- agreement with torchattacks (exact for the deterministic attacks) -----------------


@pytest.fixture(scope="module")
def rgb():
    torch.manual_seed(1)
    net = build_model("small_cnn", 10, width=0.25).eval()
    x = torch.rand(16, 3, 12, 12)
    with torch.no_grad():
        y = net(x).argmax(1)
    return net, x, y


def test_against_torchattacks_fgsm_bim_mim_tim(rgb):
    ta = pytest.importorskip("torchattacks")
    net, x, y = rgb
    eps, alpha, steps = 8 / 255, 2 / 255, 5
    pairs = [
        (ta.FGSM(net, eps=eps), {"kind": "fgsm", "eps": eps}),
        (
            ta.BIM(net, eps=eps, alpha=alpha, steps=steps),
            {"kind": "bim", "eps": eps, "step_size": alpha, "steps": steps},
        ),
        (
            ta.MIFGSM(net, eps=eps, alpha=alpha, steps=steps, decay=1.0),
            {"kind": "mim", "eps": eps, "step_size": alpha, "steps": steps},
        ),
        (
            ta.TIFGSM(
                net,
                eps=eps,
                alpha=alpha,
                steps=steps,
                decay=1.0,
                len_kernel=5,
                nsig=3,
                diversity_prob=0.0,
            ),
            {"kind": "mim", "eps": eps, "step_size": alpha, "steps": steps, "ti_kernel": 5},
        ),
    ]
    for theirs, spec in pairs:
        ours = build_attack(spec["kind"], spec)(net, x, y)
        assert torch.allclose(ours, theirs(x, y), atol=1e-6), spec


def test_against_torchattacks_l2(rgb):
    ta = pytest.importorskip("torchattacks")
    net, x, y = rgb
    theirs = ta.PGDL2(net, eps=0.5, alpha=0.1, steps=5, random_start=False)(x, y)
    spec = {"kind": "bim_l2", "eps": 0.5, "step_size": 0.1, "steps": 5, "per_pixel": False}
    ours = build_attack("bim_l2", spec)(net, x, y)
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_mim_targeted_moves_towards_the_target(model, batch):
    x, y = batch
    target = (y + 1) % 10
    x_adv = mim(model, x, target, eps=0.3, step_size=0.03, steps=20, targeted=True)
    with torch.no_grad():
        hit = (model(x_adv).argmax(1) == target).float().mean().item()
    assert hit > 0.5


def test_autoattack_is_at_least_as_strong_as_pgd_and_refuses_unknown_attacks(model, batch):
    """AutoAttack's APGD-CE + APGD-T (the package's own code) finds at least the errors a
    PGD of the same budget finds, and a bad attack name is one ConfigError."""
    x, y = batch
    torch.manual_seed(0)
    pgd = build_attack("pgd", {**SUITE["pgd"], "eps": EPS / 2})(model, x, y)
    aa = build_attack("aa", {**SUITE["autoattack"], "eps": EPS / 2})(model, x, y)
    assert accuracy(model, aa, y) <= accuracy(model, pgd, y) + 1 / len(y)
    with pytest.raises(ConfigError, match="apgd-x"):
        build_attack("x", {"kind": "autoattack", "eps": 0.1, "attacks": ["apgd-x"]})
