"""PGD/FGSM correctness: the threat model is respected, the attack works, and it agrees with
a plain reference implementation written here."""

import pytest
import torch
import torch.nn.functional as F

from reprise.attacks import CW, PGD, attack_dataset, fgsm, margin, multitarget, pgd, target_margin
from reprise.errors import ConfigError
from reprise.metrics import accuracy
from reprise.models import build_model
from tests.core_data import digits, trained_small_cnn


@pytest.fixture(scope="module")
def model():
    return trained_small_cnn()


@pytest.fixture(scope="module")
def batch():
    test = digits("test")
    return test.x[:128], test.y[:128]


def linf(d):
    return d.flatten(1).abs().amax(1)


def l2(d):
    return d.flatten(1).norm(dim=1)


def reference_pgd(model, x, y, eps, alpha, steps, norm, start=None):
    """Madry et al.'s PGD written out plainly: mean CE, gradient step, project, clip."""
    model.eval()
    x_adv = x.clone() if start is None else start.clone()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        (g,) = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            if norm == "linf":
                x_adv = x_adv + alpha * g.sign()
                x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
            else:
                x_adv = x_adv + alpha * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
                d = x_adv - x
                factor = (eps / d.flatten(1).norm(dim=1)).clamp(max=1).view(-1, 1, 1, 1)
                x_adv = (x + d * factor).clamp(0, 1)
    return x_adv.detach()


@pytest.mark.parametrize("norm, eps, size", [("linf", 0.1, linf), ("l2", 1.0, l2)])
@pytest.mark.parametrize("loss", ["ce", "cw"])
@pytest.mark.parametrize("targeted", [False, True])
def test_respects_eps_and_the_unit_box(model, batch, norm, eps, size, loss, targeted):
    x, y = batch
    y = (y + 1) % 10 if targeted else y
    x_adv = pgd(
        model, x, y, eps=eps, step_size=eps / 2, steps=5, norm=norm, loss=loss, targeted=targeted
    )
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert (size(x_adv - x) <= eps + 1e-5).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv != x).any()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_eps_zero_changes_nothing(model, batch, norm):
    x, y = batch
    assert torch.equal(pgd(model, x, y, eps=0.0, step_size=0.1, steps=3, norm=norm), x)


def test_pgd_hurts_far_more_than_noise_of_the_same_size(model):
    test = digits("test")
    eps = 0.1
    clean = accuracy(model, test)
    g = torch.Generator().manual_seed(0)
    sign = torch.randint(0, 2, test.x.shape, generator=g).float() * 2 - 1  # a corner of the box
    noisy = accuracy(model, type(test)((test.x + eps * sign).clamp(0, 1), test.y, test.classes))
    robust = accuracy(model, test, attack=PGD(eps=eps, step_size=0.025, steps=10))
    assert clean > 0.9 and noisy > clean - 0.1  # measured: 0.99, 0.98, PGD 0.47
    assert clean - robust > 10 * (clean - noisy) and robust < noisy - 0.3


@pytest.mark.parametrize("norm, eps, alpha", [("linf", 0.1, 0.02), ("l2", 1.0, 0.25)])
def test_agrees_with_reference(model, batch, norm, eps, alpha):
    x, y = batch
    ours = pgd(model, x, y, eps=eps, step_size=alpha, steps=7, norm=norm, random_start=False)
    ref = reference_pgd(model, x, y, eps, alpha, 7, norm)
    assert torch.allclose(ours, ref, atol=1e-5)
    # random start: the same draw from the same generator state
    torch.manual_seed(1)
    ours = pgd(model, x, y, eps=eps, step_size=alpha, steps=7, norm=norm)
    if norm == "linf":
        torch.manual_seed(1)
        start = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        assert torch.allclose(
            ours, reference_pgd(model, x, y, eps, alpha, 7, norm, start), atol=1e-5
        )


def test_fgsm_is_one_full_step(model, batch):
    x, y = batch
    x_adv = fgsm(model, x, y, eps=0.1)
    x_req = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(x_req), y), x_req)
    assert torch.allclose(x_adv, (x + 0.1 * g.sign()).clamp(0, 1))


def test_parameters_gradients_and_modes_are_untouched(batch):
    x, y = batch
    model = build_model("small_cnn", 10, width=0.25, in_channels=1).train()
    frozen = model.body[1]
    frozen.eval()
    F.cross_entropy(model(x), y).backward()  # gradients a training step already holds
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    pgd(model, x, y, eps=0.1, step_size=0.03, steps=3)
    assert model.training and not frozen.training
    for n, p in model.named_parameters():
        assert torch.equal(p.grad, grads[n])
    for k, v in model.state_dict().items():  # BN running statistics too (eval mode)
        assert torch.equal(v, weights[k])


@pytest.mark.parametrize("attack", ["pgd", "momentum_pgd"])
def test_a_train_mode_attack_uses_batch_statistics_and_updates_the_running_ones(batch, attack):
    """bn="train" (Pang et al.'s and Rice et al.'s training attacks, BNeval=False): the
    attack's forward passes normalise by the batch and move BN's running statistics; the
    model's own modes come back afterwards."""
    from reprise.attacks.backtracking import momentum_pgd

    x, y = batch
    run = {"pgd": pgd, "momentum_pgd": momentum_pgd}[attack]
    kw = {"eps": 0.1, "step_size": 0.03, "steps": 3, "loss": "ce" if attack == "pgd" else margin}
    model = build_model("small_cnn", 10, width=0.25, in_channels=1).eval()
    bn = model.body[1]
    running = bn.running_mean.clone()
    torch.manual_seed(0)
    x_train = run(model, x, y, bn="train", **kw)
    assert not model.training and not torch.equal(bn.running_mean, running)
    assert bn.num_batches_tracked == 3 + (attack == "momentum_pgd")  # one per forward
    model.load_state_dict({**model.state_dict(), "body.1.running_mean": running})
    torch.manual_seed(0)
    x_eval = run(model, x, y, bn="eval", **kw)
    assert torch.equal(bn.running_mean, running)
    assert not torch.equal(x_train, x_eval)  # batch vs running statistics: other gradients


def test_an_unknown_bn_mode_is_refused():
    with pytest.raises(ConfigError, match="attack.bn = 'batch'"):
        PGD.from_config({"eps": 0.1, "step_size": 0.01, "steps": 1, "bn": "batch"})


def test_targeted_reaches_the_target(model, batch):
    x, y = batch
    target = (y + 3) % 10
    for loss in ("ce", "cw"):
        x_adv = pgd(model, x, target, eps=0.3, step_size=0.05, steps=20, loss=loss, targeted=True)
        assert (model(x_adv).argmax(1) == target).float().mean() > 0.8


def test_early_stop_leaves_successes_alone(model, batch):
    x, y = batch
    wrong = model(x).argmax(1) != y
    x_adv = pgd(model, x, y, eps=0.1, step_size=0.02, steps=10, random_start=False, early_stop=True)
    assert wrong.any() and torch.equal(x_adv[wrong], x[wrong])
    full = pgd(model, x, y, eps=0.1, step_size=0.02, steps=10, random_start=False)
    fooled = (model(x_adv).argmax(1) != y).float().mean()
    assert fooled >= (model(full).argmax(1) != y).float().mean() - 0.05


def test_extra_loss_sees_features_and_steers_the_attack(model, batch):
    x, y = batch
    seen = []

    def towards_zero(out, x_adv):  # an adaptive term: push class 0 up
        seen.append(out.features.shape)
        return 10 * (out.logits[:, 0] - out.logits.logsumexp(1))

    x_adv = pgd(model, x, y, eps=0.3, step_size=0.05, steps=10, extra=towards_zero)
    assert seen[0] == (len(x), model.feature_dim)
    assert (model(x_adv).argmax(1) == 0).float().mean() > 0.8


def test_margin_loss():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0]])
    assert torch.equal(margin(logits, torch.tensor([0, 1])), torch.tensor([-2.0, 3.0]))


def test_attack_dataset_is_batch_size_independent(model):
    data = digits("test").subset(100)
    attack = PGD(eps=0.1, step_size=0.03, steps=3, random_start=False)
    a = attack_dataset(model, data, attack, batch_size=100)
    b = attack_dataset(model, data, attack, batch_size=7)
    assert torch.allclose(a, b, atol=1e-6)


def test_from_config():
    attack = PGD.from_config({"eps": "8/255", "step_size": "2/255", "steps": 10, "norm": "linf"})
    assert attack.eps == pytest.approx(8 / 255) and attack.step_size == pytest.approx(2 / 255)
    for bad, match in [
        ({"eps": "8/0", "step_size": 0.1, "steps": 1}, "attack.eps"),
        ({"eps": 0.1, "step_size": 0.1, "steps": 1, "norm": "l1"}, "attack.norm"),
        ({"eps": 0.1, "step_size": 0.1, "steps": -1}, "attack.steps"),
        ({"eps": 0.1, "step_size": 0.1, "steps": 1, "alpha": 2}, "attack:"),
    ]:
        with pytest.raises(ConfigError, match=match):
            PGD.from_config(bad)


def test_multitarget_is_the_worst_of_the_targeted_runs(model, batch):
    x, y = batch
    x, y = x[:32], y[:32]
    attack = PGD(eps=0.1, step_size=0.03, steps=5, random_start=False)
    logits = torch.tensor([[1.0, 4.0, 2.0]])
    assert target_margin(2)(logits, torch.tensor([1])).item() == 1.0 - 4.0  # class (1+2)%3=0
    x_adv = multitarget(model, x, y, attack, num_classes=10)
    assert (linf(x_adv - x) <= 0.1 + 1e-6).all()
    ce = lambda z: F.cross_entropy(model(z), y, reduction="none")  # noqa: E731
    runs = torch.stack([ce(attack(model, x, y, loss=target_margin(k))) for k in range(1, 10)])
    assert torch.allclose(ce(x_adv), runs.amax(0), atol=1e-5)


@pytest.mark.parametrize("eps", [None, 0.2])
def test_cw_finds_small_adversarials(model, batch, eps):
    x, y = batch
    x, y = x[:32], y[:32]
    attack = CW(steps=30, search_steps=3, lr=0.05, initial_const=1.0, eps=eps)
    x_adv = attack(model, x, y)
    with torch.no_grad():
        fooled = model(x_adv).argmax(1) != y
    unchanged = (x_adv == x).flatten(1).all(1)
    assert fooled.float().mean() > 0.5 and (fooled | unchanged).all()  # failures return x
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    if eps is not None:
        assert (linf(x_adv - x) <= eps + 1e-6).all()


def test_cw_counts_only_inputs_whose_penalty_is_met(model, batch):
    x, y = batch
    x, y = x[:32], y[:32]
    attack = CW(steps=30, search_steps=3, lr=0.05, initial_const=1.0, eps=0.3)
    impossible = attack(model, x, y, penalty=lambda out, x_adv: torch.ones(len(x_adv)))
    assert torch.equal(impossible, x)

    def confident(out, x_adv):  # adaptive: the wrong prediction must also be confident
        return (0.9 - out.logits.float().softmax(1).amax(1)).clamp(min=0)

    x_adv = attack(model, x, y, penalty=confident)
    with torch.no_grad():
        p = model(x_adv).softmax(1)
    hit = p.argmax(1) != y
    assert hit.any() and (p.amax(1)[hit] >= 0.9 - 1e-4).all()


def test_cw_from_config():
    assert CW.from_config({"eps": "8/255", "steps": 5}).eps == pytest.approx(8 / 255)
    for bad, match in [({"distance": "l1"}, "cw.distance"), ({"c": 1}, "cw:")]:
        with pytest.raises(ConfigError, match=match):
            CW.from_config(bad)


def test_momentum_pgd_keeps_only_improving_steps_and_stops_inside_the_ball():
    """CCAT's attack: an objective whose maximum (0.3) lies inside the ball is found there;
    fixed sign steps would keep jumping around it, and never reach a worse point than x."""
    from reprise.attacks.backtracking import momentum_pgd

    x = torch.full((3, 1, 2, 2), 0.2)

    def loss(logits, y):
        return -((logits - 0.3) ** 2).sum(1)

    model, y0 = torch.nn.Flatten(), torch.zeros(3, dtype=torch.long)
    ball = dict(eps=0.5, step_size=0.07)
    x_adv = momentum_pgd(model, x, y0, **ball, steps=30, loss=loss)
    assert (x_adv - 0.3).abs().max() < 0.01
    # the momentum averages sign steps, as the official code: the first step is (1 - 0.9) lr
    one = momentum_pgd(model, x, y0, **ball, steps=1, loss=loss)
    assert (one - x).abs().max().item() == pytest.approx(0.007, rel=1e-4)
    # accepting by another score (CCAT: true-class CE from 0): a score that never improves
    # keeps every step and shrinks it each time: 0.07·0.1 + 0.07/1.5·0.19 + 0.07/1.5²·0.271
    rising = lambda logits, y: logits.sum(1)  # noqa: E731
    flat = momentum_pgd(
        model, x, y0, **ball, steps=3, loss=rising, accept=lambda lg, y: torch.zeros(len(y))
    )
    expected = 0.07 * 0.1 + 0.07 / 1.5 * 0.19 + 0.07 / 1.5**2 * 0.271
    assert (flat - x).abs().max().item() == pytest.approx(expected, rel=1e-4)
    plain = pgd(model, x, y0, **ball, steps=30, loss=loss, random_start=False)
    assert (plain - 0.3).abs().max() > 0.01  # the plain sign steps oscillate
    # on a trained model: inside the box, and the objective never below the start's
    m, test = trained_small_cnn(), digits("test")
    xb, yb = test.x[:32], test.y[:32]
    from reprise.training.methods import wrong_class_confidence

    out = momentum_pgd(m, xb, yb, eps=0.2, step_size=0.05, steps=5, loss=wrong_class_confidence)
    assert (out - xb).abs().max() <= 0.2 + 1e-6 and out.min() >= 0 and out.max() <= 1
    with torch.no_grad():
        assert torch.all(wrong_class_confidence(m(out), yb) >= wrong_class_confidence(m(xb), yb))
