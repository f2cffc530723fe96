"""Slack and Grafana payload builders: pure functions over a run notice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from include.notifications import (
    MAX_LISTED,
    MigrationLine,
    RunNotice,
    grafana_annotation,
    migrations_of,
    slack_message,
)

START = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
SNAPSHOT = {
    "deployed": {"sha": "2" * 40, "ref": "17.6.202611240620-2222222222a.3333333333b"},
    "run_class": "cleanup",
    "migrations": [
        {
            "path": "db/post_migrate/20261120000000_queue_backfill.rb",
            "version": "20261120000000",
            "name": "QueueBackfill",
            "class": "background",
        },
        {
            "path": "ee/db/post_migrate/20261121000000_remove_legacy.rb",
            "version": "20261121000000",
            "name": "",
            "class": "cleanup",
        },
    ],
}


def notice(**kwargs) -> RunNotice:
    values = dict(
        environment="gprd",
        dag_id="pdm_gprd",
        run_id="scheduled__2026-11-28T06:00:00+00:00",
        started_at=START,
        decision_id="gprd-22222222222-0123456789abcdef",
        run_class="cleanup",
        migrations=migrations_of(SNAPSHOT),
        pipeline_id=4711,
        pipeline_url="https://ops.example/gitlab-org/release/tools/-/pipelines/4711",
        package=SNAPSHOT["deployed"]["ref"],
    )
    values.update(kwargs)
    return RunNotice(**values)


def test_migrations_of_prefers_the_selected_prefix_and_names_files_without_a_class_name():
    assert [m.version for m in migrations_of(SNAPSHOT)] == ["20261120000000", "20261121000000"]
    assert migrations_of(SNAPSHOT)[1].name == "20261121000000_remove_legacy.rb"
    selected = dict(SNAPSHOT, selected=SNAPSHOT["migrations"][:1])
    assert migrations_of(selected) == (MigrationLine("20261120000000", "QueueBackfill", "background"),)
    assert migrations_of(dict(SNAPSHOT, selected=[])) == ()


def test_slack_start_lists_each_migration_with_its_class_and_links_the_pipeline():
    text = slack_message("start", notice())["text"]
    assert text.startswith(":arrow_forward: PDM started on *gprd*: 2 post-deploy migration(s)")
    assert "• `20261120000000` QueueBackfill — *background*" in text
    assert "• `20261121000000` 20261121000000_remove_legacy.rb — *cleanup*" in text
    assert "class(es) background, cleanup" in text
    assert "<https://ops.example/gitlab-org/release/tools/-/pipelines/4711|#4711>" in text
    assert "Decision: `gprd-22222222222-0123456789abcdef`" in text
    assert "Outcome" not in text


def test_slack_end_says_the_outcome_and_why():
    ok = slack_message("end", notice(outcome="pipeline_succeeded", reason="pipeline 4711 succeeded"))["text"]
    assert ok.startswith(":white_check_mark: PDM on *gprd* ended pipeline_succeeded")
    assert "Outcome: *pipeline_succeeded* — pipeline 4711 succeeded" in ok
    bad = slack_message("end", notice(outcome="pipeline_failed", reason="pipeline 4711 failed"))["text"]
    assert bad.startswith(":x: PDM on *gprd* ended pipeline_failed")


def test_slack_caps_a_long_list():
    many = tuple(MigrationLine(str(20260000000000 + i), f"M{i}", "background") for i in range(MAX_LISTED + 5))
    text = slack_message("start", notice(migrations=many))["text"]
    assert text.count("\n• `") == MAX_LISTED and "… and 5 more" in text


def test_grafana_start_is_a_point_and_end_a_region_tagged_by_env_class_and_outcome():
    start = grafana_annotation("start", notice())
    assert start == {
        "time": int(START.timestamp() * 1000),
        "tags": ["pdm", "gprd", "background", "cleanup"],
        "text": "PDM started on gprd: 2 post-deploy migration(s), pipeline #4711",
    }
    end_time = START + timedelta(minutes=42)
    end = grafana_annotation(
        "end", notice(outcome="pipeline_failed", reason="pipeline 4711 failed", ended_at=end_time)
    )
    assert end["time"] == start["time"] and end["timeEnd"] == int(end_time.timestamp() * 1000)
    assert end["tags"] == ["pdm", "gprd", "background", "cleanup", "pipeline_failed"]
    assert end["text"].endswith("— pipeline 4711 failed")


def test_payloads_are_plain_json_and_refuse_naive_times():
    for phase in ("start", "end"):
        json.dumps(slack_message(phase, notice()))
        json.dumps(grafana_annotation(phase, notice(outcome="noop", ended_at=START)))
    with pytest.raises(ValueError, match="no time zone"):
        grafana_annotation("start", notice(started_at=datetime(2026, 1, 1)))
