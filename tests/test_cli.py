"""The `reprise` command: one clear error, exit 2, no partial output."""

import json
import re
import subprocess
import sys

import pytest

from reprise import cli, papers
from reprise.data.digits import prepare
from tests.tiny_runs import train_args


def test_unknown_cli_argument_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["memorization", "train_labels", "--bogus"])
    assert e.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["frobnicate"])
    assert e.value.code == 2


def test_validate_reports_bad_value(capsys):
    assert cli.main(["validate", "--set", "scale=huge"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "reprise: error: config: scale = \"huge\" is not allowed; expected one of 'smoke', 'paper'"
    ]


def test_validate_ok(capsys):
    assert cli.main(["validate"]) == 0
    assert "config OK" in capsys.readouterr().out


def _train_args(tmp_path):
    for split in ("train", "test"):
        prepare(tmp_path, split, tmp_path / f"{split}.pt")
    return train_args(tmp_path / "out", tmp_path, epochs=2)


OUTPUTS = ("out/model.pt", "out/history.parquet")


def _set_params(args, **train):
    """args with the --params JSON's random_labels.train updated."""
    params = json.loads(args[3])
    params["random_labels"]["train"].update(train)
    return [*args[:3], json.dumps(params), *args[4:]]


def test_step_runs_and_writes_declared_outputs(tmp_path):
    assert cli.main(_train_args(tmp_path)) == 0
    assert all((tmp_path / f).is_file() for f in OUTPUTS)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a + ["--input", "extra=x"], "unknown --input 'extra'"),
        (lambda a: a[:-2], "missing --output history=PATH"),
        (lambda a: [x.replace("train.pt", "nothere.pt") for x in a], "nothere.pt does not exist"),
        (lambda a: _set_params(a, epochs=0), "train.epochs = 0"),
        (lambda a: a[:3] + ["{not json"] + a[4:], "--params is not valid JSON"),
    ],
)
def test_step_bad_input_is_one_error_and_no_output(tmp_path, capsys, mutate, message):
    assert cli.main(mutate(_train_args(tmp_path))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reprise: error:") and message in err[0]
    assert not any((tmp_path / f).exists() for f in OUTPUTS)


def test_failed_step_removes_its_outputs(tmp_path, monkeypatch):
    import reprise.models

    def crash(*_a, **_k):
        raise RuntimeError("boom")

    monkeypatch.setattr(reprise.models, "save_model", crash)  # dies after the history table
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(_train_args(tmp_path))
    assert not any((tmp_path / f).exists() for f in OUTPUTS)


def test_report_prints_table(capsys):
    assert cli.main(["report", "--results", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    assert "pgd-at-memorizes-random-labels" in out and "not run" in out


def test_torch_is_imported_only_for_steps_that_declare_it(tmp_path):
    """A torch=True step sets up a loaded torch (seed, threads, device); a paper's steps
    module alone does not import torch, so its evaluate and figure steps start fast."""
    for paper in papers.available():
        code = f"import sys, reprise.papers.{paper}.steps; print('torch' in sys.modules)"
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert p.stdout.strip() == "False", (paper, p.stderr)
    train = [sys.executable, "-m", "reprise", *_train_args(tmp_path)]
    p = subprocess.run(train, capture_output=True, text=True, check=True)
    assert re.search(r"memorization train_labels: params=.* device=cpu$", p.stderr, re.M), p.stderr
