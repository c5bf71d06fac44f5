"""Claims: verdicts per criterion, the report table and REPORT.md."""

import json

import pytest

from reprise import claims, config


@pytest.mark.parametrize(
    "value, criterion, paper_value, verdict",
    [
        (0.95, {"min": 0.9}, None, claims.REPRODUCED),
        (0.85, {"min": 0.9}, None, claims.NOT_REPRODUCED),
        (0.5, {"min": 0.1, "max": 0.4}, None, claims.NOT_REPRODUCED),
        (0.3, {"min": 0.1, "max": 0.4}, None, claims.REPRODUCED),
        (54.0, {"tolerance": 2.0}, 55.66, claims.REPRODUCED),
        (50.0, {"tolerance": 2.0}, 55.66, claims.NOT_REPRODUCED),
        (50.0, {"target": 49.0, "tolerance": 2.0}, 55.66, claims.REPRODUCED),
        (50.0, {"tolerance": 2.0}, None, claims.NOT_RUN),  # nothing to compare with
        (None, {"min": 0.9}, None, claims.NOT_RUN),
        (float("nan"), {"min": 0.9}, None, claims.NOT_RUN),
        (0.95, None, None, claims.NOT_RUN),
    ],
)
def test_judge(value, criterion, paper_value, verdict):
    assert claims.judge(value, criterion, paper_value)[0] == verdict


def _cfg():
    return config.resolve({**config.load_yaml("config/config.yaml"), "papers": ["example"]})


def test_table_reads_metrics_and_marks_missing_as_not_run(tmp_path):
    cfg = _cfg()
    df = claims.claims_table(cfg, tmp_path)
    assert list(df["verdict"]) == [claims.NOT_RUN] * len(df)
    metrics = tmp_path / "smoke" / "example" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"test_accuracy": 0.5, "final_train_loss": 1.0}))
    df = claims.claims_table(cfg, tmp_path)
    row = df.set_index("claim_id").loc["digits-accuracy"]
    assert row.verdict == claims.NOT_REPRODUCED and row.reproduced_value == 0.5
    assert list(df.columns) == claims.COLUMNS


def test_markdown_links_figures_relative_to_the_report(tmp_path):
    df = claims.claims_table(_cfg(), tmp_path)
    figs = {
        "example": [
            str(tmp_path / "smoke/example/figures/a.png"),
            str(tmp_path / "smoke/example/figures/a.pdf"),
        ]
    }
    md = claims.to_markdown(df, "smoke", figs, tmp_path / "smoke")
    assert "[a](example/figures/a.png)" in md
    assert "a.pdf" not in md
    assert "| example | **digits-accuracy**" in md
    assert "1 claims: 0 reproduced, 0 not reproduced, 1 not run." in md
