"""The training loop: methods learn, runs are deterministic, hooks see every sample once per
epoch, checkpoints are weights-only and resumable, schedules and augmentation are right."""

import pandas as pd
import pytest
import torch

from reprise.attacks import PGD
from reprise.errors import ConfigError
from reprise.io import load_checkpoint, read_table
from reprise.metrics import accuracy
from reprise.models import build_model
from reprise.resume import Resume
from reprise.training import (
    CCAT,
    PGDAT,
    TRADES,
    Batch,
    Hook,
    Schedule,
    Standard,
    TrainConfig,
    ccat_target,
    crop_flip,
    epoch_generator,
    fit,
    radial_start,
    random_labels,
    wrong_class_confidence,
)
from tests.core_data import digits

ATTACK = PGD(eps=0.1, step_size=0.04, steps=2)
BASE = {"epochs": 2, "batch_size": 64, "lr": 0.05, "monitor": {"train_size": 128}}


def tiny_run(tmp_path, method, name="run", train_size=256, attack=ATTACK, **cfg):
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, width=0.25, in_channels=1)
    fitted = fit(
        model,
        method,
        digits("train").subset(train_size),
        TrainConfig.from_config({**BASE, **cfg}),
        resume=Resume(tmp_path / name),
        history_path=tmp_path / f"{name}.parquet",
        test=digits("test").subset(128),
        attack=attack,
    )
    return model, fitted.history


def test_the_monitor_measures_in_eval_mode_whatever_the_training_attack(tmp_path):
    """A config's training attack with bn: train (PGD-AT's, as Pang et al.) also gives the
    monitor's robust columns: measuring them must not move BN's running statistics."""
    train_mode = PGD(eps=0.1, step_size=0.04, steps=2, bn="train")
    method = PGDAT(train_mode)
    model_a, hist_a = tiny_run(tmp_path, method, name="a", attack=train_mode)
    model_b, hist_b = tiny_run(tmp_path, method, name="b", attack=ATTACK)
    pd.testing.assert_frame_equal(hist_a, hist_b)
    for k, v in model_a.state_dict().items():
        assert torch.equal(v, model_b.state_dict()[k]), k


def saved_state(directory):
    return load_checkpoint(directory / "state.pt")["state"]


def test_standard_training_learns(tmp_path):
    model, history = tiny_run(
        tmp_path, Standard(), train_size=None, epochs=3, lr=0.1, schedule={"kind": "cosine"}
    )
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert accuracy(model, digits("test")) > 0.85  # measured 0.9+


@pytest.mark.parametrize(
    "method",
    [PGDAT(ATTACK), TRADES(ATTACK, beta=6.0), CCAT(ATTACK, rho=10.0)],
    ids=["pgd_at", "trades", "ccat"],
)
def test_adversarial_methods_produce_the_table(tmp_path, method):
    _, history = tiny_run(tmp_path, method, monitor={"grad_norm": True, "train_size": 64})
    expected = {"epoch", "lr", "loss", "grad_norm_sq", "train_clean_acc", "train_robust_acc"}
    expected |= {"test_clean_acc", "test_robust_acc"}
    if method.name == "ccat":  # where its attack left the inputs
        expected |= {"ccat_lambda_mean", "ccat_delta_over_eps_median", "ccat_at_edge"}
        assert history["ccat_lambda_mean"].between(0, 1).all()
        assert history["ccat_at_edge"].between(0, 1).all()
    assert expected == set(history.columns)
    assert history["epoch"].tolist() == [1, 2]
    assert history.notna().all().all() and (history["grad_norm_sq"] > 0).all()
    assert (history["test_robust_acc"] <= history["test_clean_acc"] + 0.1).all()
    assert read_table(tmp_path / "run.parquet").equals(history)


def test_two_runs_are_identical(tmp_path):
    cfg = {"augment": {"crop": 1, "flip": True}, "monitor": {"grad_norm": True}}
    a, ha = tiny_run(tmp_path, PGDAT(ATTACK), "a", **cfg)
    b, hb = tiny_run(tmp_path, PGDAT(ATTACK), "b", **cfg)
    pd.testing.assert_frame_equal(ha, hb, check_exact=True)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


class Recorder(Hook):
    """Counts every sample per epoch (checkpointed), adds a constant to the loss and a zero
    term to the attack: neither may change the weights."""

    def __init__(self, n):
        self.counts = torch.zeros(n, dtype=torch.int64)
        self.orders, self.attack_calls = [], 0

    def start_epoch(self, model, data, epoch):
        self.orders.append([])

    def start_batch(self, model, batch):
        self.counts[batch.idx] += 1
        self.orders[-1].append(batch.idx.clone())

    def attack_extra(self, batch):
        def zero(out, x_adv):
            self.attack_calls += 1
            assert out.features is not None and len(out.logits) == len(batch.idx)
            return 0.0 * out.logits.sum(1)

        return zero

    def loss(self, model, batch):
        assert batch.adv is not None and batch.x_adv.shape == batch.x.shape
        return torch.tensor(1.0)

    def epoch_metrics(self):
        return {"seen": float(self.counts.sum())}

    def state_dict(self):
        return {"counts": self.counts.clone()}

    def load_state_dict(self, state):
        self.counts = state["counts"].clone()


def test_hooks_see_each_sample_once_per_epoch(tmp_path):
    hook = Recorder(256)
    model, history = tiny_run(tmp_path, PGDAT(ATTACK, hooks=[hook]), "hooked")
    plain, plain_history = tiny_run(tmp_path, PGDAT(ATTACK), "plain")
    for order in hook.orders:
        assert torch.equal(torch.cat(order).sort().values, torch.arange(256))
    assert not torch.equal(torch.cat(hook.orders[0]), torch.cat(hook.orders[1]))
    assert torch.equal(hook.counts, torch.full((256,), 2))
    assert hook.attack_calls == 2 * 4 * ATTACK.steps  # epochs x batches x steps
    assert history["seen"].tolist() == [256.0, 512.0]
    assert (history["loss"] - plain_history["loss"]).tolist() == pytest.approx([1.0, 1.0])
    for k, v in model.state_dict().items():
        assert torch.equal(v, plain.state_dict()[k]), k
    # per-sample state is checkpointed, and restored by a finished run's re-run
    ckpt = saved_state(tmp_path / "hooked")
    assert torch.equal(ckpt["method"]["hooks"][0]["counts"], hook.counts)
    again = Recorder(256)
    tiny_run(tmp_path, PGDAT(ATTACK, hooks=[again]), "hooked")
    assert torch.equal(again.counts, hook.counts) and again.orders == []


def test_checkpoint_is_weights_only_and_complete(tmp_path):
    tiny_run(tmp_path, Standard(), monitor={"best_by": "test_clean_acc"})
    ckpt = saved_state(tmp_path / "run")  # weights_only=True
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "method", "rng", "best"}
    assert set(ckpt["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert ckpt["optimizer"]["state"]  # momentum buffers
    best = ckpt["best"]
    assert best["metric"] == "test_clean_acc" and best["epoch"] in (1, 2)
    model = build_model("small_cnn", 10, width=0.25, in_channels=1)
    model.load_state_dict(best["state_dict"])


def test_a_checkpoint_of_another_config_is_not_resumed(tmp_path):
    tiny_run(tmp_path, Standard(), epochs=1)
    _, history = tiny_run(tmp_path, Standard(), epochs=1, lr=0.01)
    assert history["lr"].tolist() == [0.01]
    _, history = tiny_run(tmp_path, Standard(), epochs=1, lr=0.01)  # resumed: nothing to do
    assert history["lr"].tolist() == [0.01]
    other = build_model("small_cnn", 10, width=0.5, in_channels=1)  # another architecture
    cfg = TrainConfig.from_config({**BASE, "epochs": 1, "lr": 0.01})
    history = fit(
        other, Standard(), digits("train").subset(256), cfg, resume=Resume(tmp_path / "run")
    ).history
    assert history["lr"].tolist() == [0.01] and "train_clean_acc" in history


def test_schedules():
    lrs = lambda s: [s.lr(0.1, e, 10) for e in range(10)]  # noqa: E731
    assert lrs(Schedule()) == [0.1] * 10
    assert lrs(Schedule("step", step_size=4, gamma=0.5)) == pytest.approx(
        [0.1] * 4 + [0.05] * 4 + [0.025] * 2
    )
    assert lrs(Schedule("multistep", milestones=(5, 8))) == pytest.approx(
        [0.1] * 5 + [0.01] * 3 + [0.001] * 2
    )
    cosine = lrs(Schedule("cosine"))
    assert cosine[0] == 0.1 and cosine[5] == pytest.approx(0.05)
    assert all(a > b for a, b in zip(cosine, cosine[1:], strict=False))


def test_train_config_errors():
    with pytest.raises(ConfigError, match="schedule.kind"):
        TrainConfig.from_config({**BASE, "schedule": {"kind": "exp"}})
    with pytest.raises(ConfigError, match="train:"):
        TrainConfig.from_config({**BASE, "augment": {"cutout": 4}})


def test_crop_flip_crops_and_flips_each_image():
    x = torch.rand(64, 2, 5, 6)
    assert torch.equal(crop_flip(x, epoch_generator(0, 0), 0, False), x)
    out = crop_flip(x, epoch_generator(0, 0), 2, True)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    shifted = flipped = 0
    for img, src in zip(out, padded, strict=True):
        views = [src[:, i : i + 5, j : j + 6] for i in range(5) for j in range(5)]
        matches = [
            (v, f) for v in views for f in (False, True) if torch.equal(img, v.flip(2) if f else v)
        ]
        assert matches
        shifted += not any(torch.equal(v, src[:, 2:7, 2:8]) for v, _ in matches)
        flipped += any(f for _, f in matches)
    assert 0 < flipped < 64 and shifted > 32
    again = crop_flip(x, epoch_generator(0, 0), 2, True)
    assert torch.equal(out, again)  # fixed by (seed, epoch)


def test_random_labels():
    y = torch.arange(1000) % 10
    noisy = random_labels(y, 10, 1.0, seed=1)
    assert torch.equal(noisy, random_labels(y, 10, 1.0, seed=1))
    assert 0.85 < (noisy != y).float().mean() < 0.95  # 9 in 10 redraws differ
    assert torch.equal(random_labels(y, 10, 0.0, seed=1), y)
    assert 0.15 < (random_labels(y, 10, 0.3, seed=1) != y).float().mean() < 0.4


def test_ccat_target_interpolates_towards_uniform():
    y = torch.tensor([0, 1, 2])
    delta = torch.zeros(3, 1, 2, 2)
    delta[1, 0, 0, 0] = 0.05  # half of eps
    delta[2, 0, 1, 1] = -0.3  # beyond eps: uniform
    t = ccat_target(y, delta, eps=0.1, norm="linf", k=4, rho=1.0)
    expected = torch.tensor(
        [[1.0, 0, 0, 0], [0.125, 0.625, 0.125, 0.125], [0.25, 0.25, 0.25, 0.25]]
    )
    assert torch.allclose(t, expected)
    assert torch.allclose(
        ccat_target(y, delta, 0.1, "linf", 4, rho=2.0)[1, 1], torch.tensor(0.4375)
    )


def test_radial_start_spreads_radii_over_the_ball():
    torch.manual_seed(0)
    x = torch.full((2000, 1, 4, 4), 0.5)
    for norm in ("linf", "l2"):
        delta = (radial_start(x, 0.2, norm) - x).flatten(1)
        size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
        assert size.max() <= 0.2 + 1e-6
        # uniform radius: a quarter of the points within a quarter of eps, mean eps / 2
        assert 0.2 < (size < 0.05).float().mean() < 0.3
        assert abs(size.mean() - 0.1) < 0.01
    edge = radial_start(torch.ones(64, 1, 2, 2), 0.2, "linf")
    assert edge.max() <= 1 and edge.min() >= 0.8


def test_trades_crafts_in_eval_mode_whatever_the_shared_attack_says():
    """A config shares one training attack between PGD-AT (bn: train, as Pang et al.) and
    TRADES, whose official attack always runs in eval mode (attack_trades, BNeval=True)."""
    shared = PGD.from_config({"eps": 0.1, "step_size": 0.05, "steps": 2, "bn": "train"})
    assert TRADES(shared).attack.bn == "eval" and PGDAT(shared).attack.bn == "train"
    assert TRADES(shared).config()["attack"]["bn"] == "eval"


def test_ccat_reports_where_its_attack_left_the_inputs():
    """With no attack steps, half the batch stays at x (λ = 1) and half sits at a radius
    uniform in [0, ε] (λ = 1 - u at ρ = 1): mean λ 3/4, nothing at the edge."""
    torch.manual_seed(0)
    method = CCAT(PGD(eps=0.1, step_size=0.01, steps=0), rho=1.0)
    model = build_model("small_cnn", 10, width=0.25, in_channels=1)
    x = torch.full((1024, 1, 8, 8), 0.5)  # no clipping at [0, 1]
    y = torch.randint(0, 10, (1024,))
    method.start_epoch(model, None, 0)
    method.base_loss(model, Batch(x=x, y=y, idx=torch.arange(1024), epoch=0))
    stats = method.epoch_metrics()
    assert abs(stats["ccat_lambda_mean"] - 0.75) < 0.02, stats
    assert stats["ccat_at_edge"] < 0.01 and stats["ccat_delta_over_eps_median"] < 0.05
    method.start_epoch(model, None, 1)  # a new epoch starts from nothing
    assert "ccat_lambda_mean" not in method.epoch_metrics()


def test_ccat_attack_raises_a_wrong_class_confidence():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 0.0, 5.0]])
    y = torch.tensor([0, 2])
    expected = torch.log_softmax(logits, 1)[[0, 1], [2, 0]]
    assert torch.allclose(wrong_class_confidence(logits, y), expected)
    model = build_model("small_cnn", 10, width=0.25, in_channels=1).eval()
    x, y = digits("test").x[:32], digits("test").y[:32]
    x_adv = ATTACK(model, x, y, loss=wrong_class_confidence)
    with torch.no_grad():
        before = wrong_class_confidence(model(x), y).mean()
        after = wrong_class_confidence(model(x_adv), y).mean()
    assert after > before
