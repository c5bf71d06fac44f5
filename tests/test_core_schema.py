"""workflow/schemas/core.schema.yaml: paper schemas reference its sections, a valid section
builds the objects, and its documented defaults are the code's defaults."""

import dataclasses

import jsonschema
import pytest

from reprise import config
from reprise.attacks import PGD
from reprise.errors import ConfigError
from reprise.models import build_model
from reprise.runtime import Runtime
from reprise.training import Augment, Monitor, Schedule, TrainConfig

CORE = config.schema("core.schema.yaml")
PAPER = {  # how a paper's scale schema uses the shared sections
    "type": "object",
    "additionalProperties": False,
    "properties": {
        name: {"$ref": f"core.schema.yaml#/$defs/{name}"}
        for name in ("model", "train", "attack", "accel")
    },
}
SECTION = {
    "model": {"arch": "wrn-34-10", "width": 0.125, "norm": "gn", "in_channels": 1},
    "train": {
        "epochs": 2,
        "batch_size": 128,
        "lr": 0.1,
        "weight_decay": 5e-4,
        "schedule": {"kind": "multistep", "milestones": [100, 105]},
        "augment": {"crop": 4, "flip": True},
        "monitor": {"test_size": 1000, "best_by": "test_robust_acc"},
    },
    "attack": {"eps": "8/255", "step_size": "2/255", "steps": 10, "loss": "cw"},
    "accel": {"bf16": "auto", "channels_last": False},
}


def test_core_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(CORE)


def test_a_valid_section_builds_everything():
    config.check(SECTION, PAPER, "config/papers/x.yaml")
    model = build_model(**SECTION["model"], num_classes=10)
    assert model.spec["arch"] == "wrn-34-10"
    cfg = TrainConfig.from_config(SECTION["train"])
    assert cfg.schedule.milestones == (100, 105) and cfg.augment == Augment(4, True)
    assert PGD.from_config(SECTION["attack"]).eps == pytest.approx(8 / 255)
    accel = Runtime().accel(**SECTION["accel"])
    assert accel.bf16 is False and accel.channels_last is False  # CPU: auto bf16 is off


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("model", "arch"), "wrn-28", "model.arch"),
        (("train", "schedule", "kind"), "exp", "train.schedule.kind"),
        (("train", "momentum"), 1.0, "train.momentum"),
        (("attack", "eps"), "8/x", "attack.eps"),
        (("attack", "norm"), "l1", "attack.norm"),
        (("accel", "bf16"), "yes", "accel.bf16"),
        (("train", "sched"), {}, "unknown key 'train.sched'"),
    ],
)
def test_bad_values_name_the_key(path, value, message):
    section = config.deep_merge(SECTION, {})
    node = section
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        config.check(section, PAPER, "config/papers/x.yaml")


def schema_defaults(name):
    props = CORE["$defs"][name]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v}


def code_defaults(cls):
    return {
        f.name: f.default
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING and not dataclasses.is_dataclass(f.default)
    }


@pytest.mark.parametrize(
    "name, cls",
    [
        ("train", TrainConfig),
        ("schedule", Schedule),
        ("augment", Augment),
        ("monitor", Monitor),
        ("attack", PGD),
    ],
)
def test_documented_defaults_are_the_code_defaults(name, cls):
    code = {k: list(v) if isinstance(v, tuple) else v for k, v in code_defaults(cls).items()}
    assert schema_defaults(name) == code


def test_aux_head_defaults_are_the_code_defaults():
    import inspect

    from reprise.models.aux_head import AuxHead

    params = inspect.signature(AuxHead).parameters
    code = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    props = CORE["$defs"]["model"]["properties"]["aux_head"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == code


def test_accel_compile_key_is_accepted_and_off_changes_nothing():
    import torch

    from reprise.runtime import Accel

    section = config.deep_merge(SECTION, {"accel": {"compile": False}})
    config.check(section, PAPER, "config/papers/x.yaml")
    assert Runtime().accel(**section["accel"]) == Runtime().accel(**SECTION["accel"])
    assert Runtime().accel().compile is False  # the schema's default is the code's
    outs = []
    for accel in (Accel.cpu(), Accel(torch.device("cpu"), compile=False)):
        torch.manual_seed(0)
        model = accel.model(build_model("small_cnn", 10).eval())
        assert model._compiled_call_impl is None  # nn.Module.compile was not called
        x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
        torch.manual_seed(1)
        outs.append(PGD(eps=8 / 255, step_size=2 / 255, steps=2)(model, x, y))
    assert torch.equal(outs[0], outs[1])
