"""Claims: verdicts per criterion, the report table and REPORT.md."""

import json

import pytest

from reprise import claims, report
from reprise.claims import validated_config
from reprise.yamlconf import load_yaml


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
    return validated_config({**load_yaml("config/config.yaml"), "papers": ["memorization"]})


def test_table_reads_metrics_and_marks_missing_as_not_run(tmp_path):
    cfg = _cfg()
    df = claims.claims_table(cfg, tmp_path)
    assert list(df["verdict"]) == [claims.NOT_RUN] * len(df)
    metrics = tmp_path / "smoke" / "memorization" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"digits_pgd_at_random_train_robust_acc": 0.25}))
    table = claims.claims_table(cfg, tmp_path)
    assert list(table.columns) == claims.COLUMNS
    df = table.set_index("claim_id")
    row = df.loc["pgd-at-memorizes-random-labels"]  # criterion at smoke: >= 0.5
    assert row.verdict == claims.NOT_REPRODUCED and row.reproduced_value == 0.25
    assert df.loc["random-labels-test-at-chance"].verdict == claims.NOT_RUN  # not in the file


def test_markdown_starts_with_the_summary_and_embeds_figures(tmp_path):
    cfg = _cfg()
    df = claims.claims_table(cfg, tmp_path)
    figs = {
        "memorization": [
            str(tmp_path / "smoke/memorization/figures/grad_norm.png"),
            str(tmp_path / "smoke/memorization/figures/grad_norm.pdf"),
        ]
    }
    md = report.to_markdown(df, cfg, figs, tmp_path / "smoke", {"memorization": 12.0})
    lines = md.splitlines()
    assert lines[2].startswith("| paper | reproduced | not reproduced | not run |")
    assert lines[4] == f"| [memorization](#memorization) | 0 | 0 | {len(df)} | 12 |"
    assert "![grad_norm](memorization/figures/grad_norm.png)" in md
    assert "grad_norm.pdf" not in md
    assert "| `pgd-at-memorizes-random-labels` | — | — | >= 0.5 | ⏸ not run" in md
    assert "<details><summary>The claims in full</summary>" in md


def test_terminal_table_aligns_every_column(tmp_path):
    df = claims.claims_table(_cfg(), tmp_path)
    text = report.to_terminal(df)
    rows = text.splitlines()[: len(df) + 2]
    starts = {r.index(" not run") for r in rows[2:]}
    assert len(starts) == 1  # the verdict column starts at the same place in every row
    assert "\033" not in text and "\033[33m" in report.to_terminal(df, colour=True)


def test_step_seconds_sums_the_steps_done_lines(tmp_path):
    logs = tmp_path / "smoke" / "p" / "logs"
    logs.mkdir(parents=True)
    (logs / "a.log").write_text("p a: params=...\np a done in 1.5 s\n")
    (logs / "b-x.log").write_text("p b done in 2.0 s (cpu 1.9 s)\n")
    (logs / "c.log").write_text("Traceback\n")  # a failed step has no time
    assert report.step_seconds(tmp_path, "smoke", "p") == 3.5
    assert report.step_seconds(tmp_path, "smoke", "other") is None


def test_report_groups_by_kind_and_leaves_sanity_checks_out_of_the_counts(tmp_path):
    cfg = validated_config({**load_yaml("config/config.yaml"), "papers": ["rejection"]})
    metrics = tmp_path / "smoke" / "rejection" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"pgd_at_auc_tcon_gain_pgd": 0.2}))
    df = claims.claims_table(cfg, tmp_path)
    assert df.set_index("claim_id").loc["tcon-oracle", "kind"] == "sanity"
    md = report.to_markdown(df, cfg, {}, tmp_path / "smoke")
    counted = len(df) - 1
    assert f"| [rejection](#rejection) | 0 | 0 | {counted} |" in md  # the summary row
    sanity = md.index("### Sanity checks")
    assert md.index("`tcon-oracle`") > sanity > md.index("`rr-auc-pgd`")


def test_metrics_measured_from_wall_clock_time_are_declared_timed():
    """Runs are compared less their timed metrics (tests/test_kill_resume.py): a table marks
    them, a group's `timed` must name its own keys, and the papers' timings are marked."""
    from reprise import papers
    from reprise.metric_table import MetricTable

    table = MetricTable()
    table.metric("speed", "a timing", timed=True)(lambda: 1.0)
    table.group({"a": "", "b_rtf": ""}, timed=("b_rtf",))(lambda: {"a": 1, "b_rtf": 2})
    assert table.timed == {"speed", "b_rtf"} and table.compute()["b_rtf"] == 2
    with pytest.raises(ValueError, match="not in the group"):
        table.group({"c": ""}, timed=("d",))
    assert {"libre_over_dnn_time", "mc_dropout_over_dnn_time"} == papers.timed_metrics("libre")
    assert {"dictation_rtf_ratio", "baseline_dictation_rtf"} <= papers.timed_metrics("flexit")
    assert not papers.timed_metrics("memorization")
