"""The ImageNet ResNets: torchvision's names and shapes (written out here from its layout,
since torchvision is not installed), loading a weights file, forward shapes."""

import pytest
import torch

from reprise.errors import CheckpointError
from reprise.models import build_model
from reprise.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, load_torchvision


def bn(prefix, n):
    keys = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    return {f"{prefix}.{k}": (() if k == "num_batches_tracked" else (n,)) for k in keys}


def torchvision_resnet50_shapes(counters=True):
    """Every key of torchvision.models.resnet50().state_dict() with its shape."""
    shapes = {"conv1.weight": (64, 3, 7, 7), **bn("bn1", 64)}
    inplanes = 64
    plan = zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True)
    for i, (planes, blocks) in enumerate(plan, start=1):
        for j in range(blocks):
            p = f"layer{i}.{j}"
            shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            shapes.update(bn(f"{p}.bn1", planes))
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            shapes.update(bn(f"{p}.bn2", planes))
            shapes[f"{p}.conv3.weight"] = (4 * planes, planes, 1, 1)
            shapes.update(bn(f"{p}.bn3", 4 * planes))
            if j == 0:
                shapes[f"{p}.downsample.0.weight"] = (4 * planes, inplanes, 1, 1)
                shapes.update(bn(f"{p}.downsample.1", 4 * planes))
            inplanes = 4 * planes
    shapes.update({"fc.weight": (1000, 2048), "fc.bias": (1000,)})
    if not counters:
        shapes = {k: s for k, s in shapes.items() if not k.endswith("num_batches_tracked")}
    return shapes


def torchvision_file(path, counters=True, drop=None, reshape=None):
    """A weights file as torchvision saves it: a plain dict of random tensors (without `drop`;
    layer4.2.conv3.weight of shape `reshape` when given)."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for k, shape in torchvision_resnet50_shapes(counters).items():
        if k == drop:
            continue
        if reshape is not None and k == "layer4.2.conv3.weight":
            shape = reshape
        counter = k.endswith("num_batches_tracked")
        state[k] = torch.tensor(7) if counter else torch.randn(shape, generator=gen)
    torch.save(state, path)
    return state


def imagenet_resnet50():
    return build_model("resnet50", 1000, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def test_resnet50_has_torchvision_s_names_shapes_and_size():
    model = imagenet_resnet50()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in ("mean", "std")}
    theirs = {k.replace("fc.", "head."): s for k, s in torchvision_resnet50_shapes().items()}
    assert ours == theirs and len(theirs) == 320
    assert sum(p.numel() for p in model.parameters()) == 25_557_032  # torchvision's count
    assert model.feature_dim == 2048


@pytest.mark.parametrize("counters", [True, False])  # files from before BatchNorm counted steps
def test_torchvision_weights_load_by_name(tmp_path, counters):
    state = torchvision_file(tmp_path / "resnet50-0676ba61.pth", counters)
    model = imagenet_resnet50()
    load_torchvision(model, tmp_path / "resnet50-0676ba61.pth")
    got = model.state_dict()
    assert torch.equal(got["layer4.2.bn3.running_var"], state["layer4.2.bn3.running_var"])
    assert torch.equal(got["head.weight"], state["fc.weight"])
    assert torch.equal(got["conv1.weight"], state["conv1.weight"])
    assert torch.allclose(got["mean"].flatten(), torch.tensor(IMAGENET_MEAN))


def test_forward_shapes_and_features_head_split():
    torch.manual_seed(0)
    model = build_model("resnet50", 5, width=0.0625).eval()
    x = torch.rand(2, 3, 64, 64)
    z = model.features(x)
    assert z.shape == (2, 128) and model(x).shape == (2, 5)
    assert torch.allclose(model.head(z), model(x))
    big = build_model("resnet152", 1000, width=0.0625).eval()
    assert big(torch.rand(1, 3, 224, 224)).shape == (1, 1000)
    assert len(big.layer3) == 36


def test_bad_weights_files_are_one_clear_error_and_load_nothing(tmp_path):
    model = imagenet_resnet50()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cases = {
        "absent.pth": (None, "does not exist"),
        "missing.pth": ({"drop": "layer3.1.bn2.weight"}, r"1 tensors missing \(layer3.1.bn2"),
        "shape.pth": ({"reshape": (2048, 512, 3, 3)}, "1 tensors of another shape"),
        "text.pth": ("not weights", "not a zip or pickle file"),
    }
    for name, (how, match) in cases.items():
        path = tmp_path / name
        if isinstance(how, dict):
            torchvision_file(path, **how)
        elif how is not None:
            path.write_text(how)
        with pytest.raises(CheckpointError, match=match):
            load_torchvision(model, path)
    small = build_model("resnet50", 10)  # a 10-class head does not take the 1000-class fc
    torchvision_file(tmp_path / "ok.pth")
    with pytest.raises(CheckpointError, match=r"head.weight"):
        load_torchvision(small, tmp_path / "ok.pth")
    torch.save({"model": {"conv1.weight": torch.zeros(1)}}, tmp_path / "nested.pth")
    with pytest.raises(CheckpointError, match="not a state dict of tensors"):
        load_torchvision(model, tmp_path / "nested.pth")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
