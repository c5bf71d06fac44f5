"""Model families: shapes, features/head split, width and norm options, save/load."""

import pytest
import torch
from torch import nn

from reprise.errors import CheckpointError, ConfigError
from reprise.io import save_checkpoint
from reprise.models import build_model, evaluating, load_model, save_model

ARCHS = ["small_cnn", "resnet18", "preact_resnet18", "wrn-16-2"]


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_forward_is_head_of_features(arch, norm):
    torch.manual_seed(0)
    model = build_model(arch, 7, width=0.25, norm=norm, in_channels=1).eval()
    x = torch.rand(3, 1, 8, 8)
    z = model.features(x)
    assert z.shape == (3, model.feature_dim)
    assert torch.allclose(model.head(z), model(x))
    assert model(x).shape == (3, 7)
    norms = {type(m) for m in model.modules()} & {nn.BatchNorm2d, nn.GroupNorm}
    assert norms == {nn.BatchNorm2d if norm == "bn" else nn.GroupNorm}


def test_paper_scale_sizes():
    """Parameter counts of the standard CIFAR architectures (10 classes)."""
    assert round(n_params(build_model("resnet18", 10)) / 1e6, 2) == 11.17
    preact = build_model("preact_resnet18", 10)
    assert round(n_params(preact) / 1e6, 2) == 11.17 and preact.feature_dim == 512
    wrn = build_model("wrn-28-10", 10)
    assert round(n_params(wrn) / 1e6, 2) == 36.48 and wrn.feature_dim == 640


def test_width_multiplier_narrows_every_family():
    for arch in ARCHS:
        wide, narrow = build_model(arch, 10), build_model(arch, 10, width=0.25)
        assert narrow.feature_dim == pytest.approx(wide.feature_dim / 4, abs=1)
        assert n_params(narrow) < n_params(wide) / 8


def test_normalisation_is_inside_the_model():
    plain = build_model("small_cnn", 10, width=0.25, in_channels=3)
    shifted = build_model("small_cnn", 10, width=0.25, in_channels=3, mean=[0.5], std=[0.25])
    weights = {k: v for k, v in plain.state_dict().items() if k not in ("mean", "std")}
    shifted.load_state_dict(weights, strict=False)
    x = torch.rand(2, 3, 8, 8)
    with evaluating(plain), evaluating(shifted):
        assert torch.allclose(shifted(x), plain((x - 0.5) / 0.25), atol=1e-5)


@pytest.mark.parametrize(
    "arch, options, match",
    [
        ("vgg16", {}, "model.arch"),
        ("wrn-27-10", {}, "6n \\+ 4"),
        ("small_cnn", {"norm": "ln"}, "model.norm"),
        ("small_cnn", {"depth": 3}, "bad options"),
        ("resnet18", {"in_channels": 3, "mean": [0.1, 0.2]}, "model.mean"),
        ("resnet18", {"std": [0.0]}, "model.std"),
    ],
)
def test_bad_options_are_config_errors(arch, options, match):
    with pytest.raises(ConfigError, match=match):
        build_model(arch, 10, **options)


def test_save_load_round_trip(tmp_path):
    model = build_model("preact_resnet18", 10, width=0.125, norm="gn", in_channels=1)
    save_model(tmp_path / "m.pt", model, epoch=3)
    loaded, ckpt = load_model(tmp_path / "m.pt")
    assert ckpt["epoch"] == 3 and loaded.spec == model.spec
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_load_refuses_foreign_checkpoints(tmp_path):
    save_checkpoint(tmp_path / "a.pt", {"weights": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="holds no model"):
        load_model(tmp_path / "a.pt")
    model = build_model("small_cnn", 10, width=0.25)
    state = model.state_dict()
    state.pop("head.bias")
    save_checkpoint(tmp_path / "b.pt", {"spec": model.spec, "state_dict": state})
    with pytest.raises(CheckpointError, match="does not fit"):
        load_model(tmp_path / "b.pt")


def test_evaluating_restores_each_submodule_mode():
    model = build_model("small_cnn", 10, width=0.25).train()
    frozen = model.body[1]
    frozen.eval()
    with evaluating(model):
        assert not any(m.training for m in model.modules())
    assert model.training and not frozen.training


def test_aux_head_sits_on_the_features_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, width=0.25, in_channels=1, aux_head={"outputs": 2})
    x = torch.rand(4, 1, 8, 8)
    with evaluating(model):
        z = model.features(x)
        assert torch.equal(model.head(z), model(x))
        assert model.aux(z).shape == (4, 2)
    layers = [type(m) for m in model.aux]
    assert layers == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert model.aux[0].out_features == model.feature_dim // 2
    # the classifier head is stored once, under the backbone
    assert [k for k in model.state_dict() if k.endswith("head.weight")] == ["base.head.weight"]
    save_model(tmp_path / "m.pt", model)
    loaded, _ = load_model(tmp_path / "m.pt")
    assert loaded.spec["aux_head"] == {"outputs": 2}
    with evaluating(model), evaluating(loaded):
        assert torch.equal(loaded.aux(loaded.features(x)), model.aux(z))


def test_aux_head_options_are_checked():
    with pytest.raises(ConfigError, match="model.aux_head"):
        build_model("small_cnn", 10, width=0.25, aux_head={"depth": 2})
    with pytest.raises(ConfigError, match="model.aux_head"):
        build_model("small_cnn", 10, width=0.25, aux_head={"outputs": 0})
    plain = build_model("small_cnn", 10, width=0.25, aux_head={"bn": False, "hidden": 3})
    assert [type(m) for m in plain.aux][1] is nn.Identity and plain.aux[0].out_features == 3
