"""The step registry is the one contract: every rule <paper>_<step> wires exactly its step's
named inputs and outputs, and asks for a GPU exactly when the step is a GPU step."""

import sys

import pytest

from reprise import papers
from reprise.errors import ConfigError
from reprise.steps import RuleView, Steps, contract_errors, narrow, one
from tests.conftest import run


def _registry():
    steps = Steps()

    @steps.register(inputs=("train", "tables*"), outputs=("model",), sections=("train",), gpu=True)
    def train(params, inputs, outputs, rt):
        pass

    return {"toy": steps}


def test_a_rule_that_matches_its_step_passes():
    rule = RuleView("toy_train", ("train", "tables"), ("model",), gpu=True)
    assert contract_errors([rule], _registry()) == []


@pytest.mark.parametrize(
    "rule, message",
    [
        (RuleView("toy_train", ("train",), ("model",), True), "named inputs ['train']"),
        (RuleView("toy_train", ("train", "tables"), ("net",), True), "named outputs ['net']"),
        (RuleView("toy_train", ("train", "tables"), ("model",), False), "needs resources"),
        (RuleView("toy_fit", (), (), False), "toy has no step 'fit'"),
    ],
)
def test_a_rule_that_differs_from_its_step_is_an_error(rule, message):
    errors = contract_errors([rule], _registry())
    assert len(errors) == 1 and message in errors[0]


def test_rules_of_other_workflow_parts_are_not_checked():
    assert contract_errors([RuleView("report", ("x",), (), False)], _registry()) == []


def test_every_step_of_every_paper_declares_what_its_rule_needs():
    for slug in papers.available():
        for name, step in papers.steps(slug).items():
            assert name.isidentifier(), (slug, name)  # the rule is <paper>_<step>
            assert step.help, f"{slug} {name} has no docstring (its --help line)"


def test_narrow_keeps_one_entry_and_one_returns_it():
    params = {"runs": ["a", "b"], "te": {"datasets": ["x", "y"]}, "nets": {"n": 1, "m": 2}}
    narrow(params, {"runs": "b", "te.datasets": "y", "nets": "m"})
    assert params == {"runs": ["b"], "te": {"datasets": ["y"]}, "nets": {"m": 2}}
    assert one(params, "runs") == "b" and one(params, "nets") == ("m", 2)
    with pytest.raises(ConfigError, match="has no entry 'z'"):
        narrow(params, {"runs": "z"})
    with pytest.raises(ConfigError, match="one entry of runs"):
        one({"runs": ["a", "b"]}, "runs")
    seeds = narrow({"seeds": [0, 1, 2]}, {"seeds": "1"})  # a wildcard is a string
    assert seeds == {"seeds": [1]} and isinstance(one(seeds, "seeds"), int)


def test_snakemake_refuses_a_rule_that_differs_from_its_step(project_copy):
    """The real workflow plans; the same workflow with one input renamed stops before any
    job, naming the rule and both sets of names."""
    snakemake = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--", "cecu2si2"]
    run(snakemake, cwd=project_copy)
    rules = project_copy / "rules" / "cecu2si2.smk"
    text = rules.read_text()
    wrong = "        golden=rules.cecu2si2_simulate.output.gold,"
    rules.write_text(text.replace("        gold=rules.cecu2si2_simulate.output.gold,", wrong))
    p = run(snakemake, cwd=project_copy, check=False, merge=True)
    assert p.returncode != 0
    assert "rule cecu2si2_calibrate: named inputs ['golden'] differ from step" in p.stdout
