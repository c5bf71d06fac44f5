"""The `reprise` command: one clear error, exit 2, no partial output."""

import json

import pytest

from reprise import cli
from reprise.data.digits import prepare


def test_unknown_cli_argument_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["example", "train", "--bogus"])
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


def _train_args(tmp_path, **params):
    prepare(tmp_path, "train", tmp_path / "train.pt")
    p = {"train": {"epochs": 3, "lr": 0.5}, **params}
    return [
        "example",
        "train",
        "--params",
        json.dumps(p),
        "--input",
        f"train={tmp_path}/train.pt",
        "--output",
        f"model={tmp_path}/m.pt",
        "--output",
        f"history={tmp_path}/h.parquet",
    ]


def test_step_runs_and_writes_declared_outputs(tmp_path):
    assert cli.main(_train_args(tmp_path)) == 0
    assert (tmp_path / "m.pt").is_file() and (tmp_path / "h.parquet").is_file()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda a: a + ["--input", "extra=x"], "unknown --input 'extra'"),
        (lambda a: a[:-2], "missing --output history=PATH"),
        (lambda a: [x.replace("train.pt", "nothere.pt") for x in a], "nothere.pt does not exist"),
        (lambda a: a[:3] + ['{"train": {"epochs": 0, "lr": 1}}'] + a[4:], "epochs = 0"),
        (lambda a: a[:3] + ["{not json"] + a[4:], "--params is not valid JSON"),
    ],
)
def test_step_bad_input_is_one_error_and_no_output(tmp_path, capsys, mutate, message):
    assert cli.main(mutate(_train_args(tmp_path))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reprise: error:") and message in err[0]
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "h.parquet").exists()


def test_failed_step_removes_its_outputs(tmp_path, monkeypatch):
    from reprise.papers.example import steps

    def crash(*_a, **_k):
        raise RuntimeError("boom")

    monkeypatch.setattr(steps, "write_table", crash)  # dies after the model was saved
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(_train_args(tmp_path))
    assert not (tmp_path / "m.pt").exists()


def test_report_prints_table(capsys):
    assert cli.main(["report", "--results", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    assert "digits-accuracy" in out and "not run" in out
