"""Config validation: one clear message naming key, value and what is allowed."""

import copy

import pytest

from reprise import config, papers
from reprise.claims import validated_config
from reprise.errors import ConfigError
from reprise.yamlconf import deep_merge, load_yaml
from tests.tiny_runs import train_params


def base():
    return load_yaml("config/config.yaml")


def test_shipped_config_is_valid():
    cfg = validated_config(base())
    assert cfg.scale == "smoke"
    assert cfg.enabled
    for slug in cfg.papers:
        assert set(cfg.papers[slug]) >= {"smoke", "paper", "claims"}


def test_defaults_are_filled():
    cfg = validated_config({"scale": "paper", "papers": []})
    assert cfg.main["seeds"] == [0]
    assert cfg.main["plot"]["formats"] == ["png", "pdf"]
    assert cfg.main["data_root"] == "data"


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"scale": "huge"}, "scale = \"huge\" is not allowed; expected one of 'smoke', 'paper'"),
        ({"papers": ["nonsense"]}, "'nonsense', which is not implemented in this checkout"),
        ({"seeds": [-1]}, "seeds.0 = -1 is not allowed; expected integer >= 0"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"plot": {"dpi": 10}}, "plot.dpi = 10 is not allowed; expected integer >= 50"),
    ],
)
def test_bad_main_config(change, expected):
    with pytest.raises(ConfigError) as e:
        validated_config({**base(), **change})
    assert expected in str(e.value)
    assert "\n" not in str(e.value)


def test_known_but_unimplemented_paper_is_refused(monkeypatch):
    monkeypatch.setattr(papers, "available", lambda: ("memorization",))
    with pytest.raises(ConfigError, match="'poisoning', which is not implemented"):
        validated_config({**base(), "papers": ["poisoning"]})


def _paper_override(slug, section):
    return {**base(), "overrides": {slug: section}}


def test_negative_epochs_names_the_key():
    raw = _paper_override("memorization", {"smoke": {"te": {"train": {"epochs": -3}}}})
    expected = r"memorization.yaml: smoke.te.train.epochs = -3 .* integer >= 1"
    with pytest.raises(ConfigError, match=expected):
        validated_config(raw)


def test_claim_with_unknown_metric_is_refused():
    claims = copy.deepcopy(load_yaml("config/papers/memorization.yaml")["claims"])
    claims[0]["metric"] = "accuracy_nobody_writes"
    with pytest.raises(ConfigError, match="reads metric 'accuracy_nobody_writes', which no step"):
        validated_config(_paper_override("memorization", {"claims": claims}))


def test_claim_criterion_shape_is_checked():
    claims = copy.deepcopy(load_yaml("config/papers/memorization.yaml")["claims"])
    claims[0]["criteria"]["smoke"] = {"target": 0.5}  # target without tolerance
    with pytest.raises(ConfigError, match="tolerance"):
        validated_config(_paper_override("memorization", {"claims": claims}))


def test_overrides_for_unknown_paper():
    with pytest.raises(ConfigError, match="overrides names unknown paper"):
        validated_config({**base(), "overrides": {"nope": {}}})


def test_step_params_are_checked():
    train = papers.steps("memorization")["train_labels"].sections
    params = train_params(epochs=2)
    config.check_step_params("memorization", params, train)
    with pytest.raises(ConfigError, match="does not read 'optimiser'"):
        config.check_step_params("memorization", {**params, "optimiser": {}}, train)
    with pytest.raises(ConfigError, match="lacks section 'random_labels'"):
        config.check_step_params("memorization", {}, train)  # an empty {} is not enough
    params["random_labels"]["train"]["lr"] = 0
    with pytest.raises(ConfigError, match="--params random_labels: train.lr = 0 is not allowed"):
        config.check_step_params("memorization", params, train)
    with pytest.raises(ConfigError, match="--params plot"):
        config.check_step_params("memorization", {"plot": {"formats": ["gif"]}}, ("plot",))


def test_deep_merge_keeps_siblings():
    merged = deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 5}})
    assert merged == {"a": {"b": 5, "c": 2}}
