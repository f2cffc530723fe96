"""`pdm_gprd` end to end with `dag.test()` against the sandbox GitLab, PostgreSQL and Prometheus."""

from __future__ import annotations

import pytest

from tests.support.hitl import run_answering
from tests.support.policies import DAYS, e2e_policy, write_policy
from tests.support.scenarios import BACKGROUND, CLEANUP, NEW_SHA, RELEASE_TOOLS, world

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BACKGROUND_FILE = "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb"
CLEANUP_FILE = "ee/db/post_migrate/20261121000000_remove_legacy_trace_column_from_ci_builds.rb"


def _created(sandbox) -> list[dict]:
    return sandbox.created_pipelines(project=RELEASE_TOOLS)


def test_nothing_pending_is_a_recorded_noop(pdm_world):
    sandbox = pdm_world.serve(world())
    run = pdm_world.run()
    assert str(run.state).endswith("success")
    assert pdm_world.outcome(run.run_id)["outcome"] == "noop"
    assert pdm_world.audit_kinds(run.run_id)[:2] == ["run_started", "snapshot"]
    assert _created(sandbox) == []


def test_background_migration_with_gates_open_triggers_once_and_records_success(pdm_world, capfd, caplog):
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}))
    run = pdm_world.run()
    assert str(run.state).endswith("success")
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "pipeline_succeeded"
    assert (
        outcome["rollback_line"]["to"]["sha"] == NEW_SHA
        and outcome["rollback_line"]["from"]["sha"] == "1" * 40
    )
    created = _created(sandbox)
    assert len(created) == 1
    variables = created[0]["variables"]
    variables = {v["key"]: v["value"] for v in variables} if isinstance(variables, list) else variables
    assert variables["PDM_ENVIRONMENT"] == "gprd" and variables["PDM_SHA"] == NEW_SHA
    kinds = pdm_world.audit_kinds(run.run_id)
    for kind in ("run_started", "snapshot", "decision", "pipeline_requested", "pipeline_created", "outcome"):
        assert kind in kinds
    snapshot = pdm_world.audit.events(run_id=run.run_id, kind="snapshot")[0].payload
    assert [m["class"] for m in snapshot["migrations"]] == ["background"]
    decision = pdm_world.audit.events(run_id=run.run_id, kind="decision")[0].payload
    assert decision["go"] is True
    assert {g["gate"] for g in decision["gates"]} == {"window", "traffic", "deploy_lock", "rollback_safety"}
    # The pipeline recorded the run as a db/gprd deployment: the rollback line moved, nothing is pending now.
    again = pdm_world.run()
    assert pdm_world.outcome(again.run_id)["outcome"] == "noop"
    assert len(_created(sandbox)) == 1
    # The GitLab token never leaks: not in the task logs, XCom or the audit rows.
    assert_token_nowhere(capfd, pdm_world, run.run_id, caplog.text)


def assert_token_nowhere(capfd, pdm_world, run_id: str, caplog_text: str) -> None:
    import os
    import sqlite3

    from tests.e2e.conftest import TOKEN

    output = capfd.readouterr()
    assert "pipeline" in output.out + output.err + caplog_text  # the run's logs were captured
    assert TOKEN not in output.out + output.err + caplog_text
    for event in pdm_world.audit.events():
        assert TOKEN not in str(event.to_dict())
    metadata = sqlite3.connect(os.path.join(os.environ["AIRFLOW_HOME"], "airflow.db"))
    values = [str(row[0]) for row in metadata.execute("SELECT value FROM xcom WHERE run_id = ?", (run_id,))]
    metadata.close()
    assert values, "the run left XComs"
    assert all(TOKEN not in value for value in values)


def test_cleanup_migration_outside_its_window_waits_for_it(pdm_world):
    sandbox = pdm_world.serve(world({CLEANUP_FILE: CLEANUP}))
    run = pdm_world.run()
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "waiting_for_window"
    assert "window" in outcome["reason"]
    assert _created(sandbox) == []


def test_high_traffic_blocks_the_trigger(pdm_world):
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}))
    pdm_world.use_policy(traffic_threshold=50)  # the live rate (100 req/s) is above it
    run = pdm_world.run()
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "gates_closed"
    assert "traffic" in outcome["reason"]
    assert _created(sandbox) == []


def test_running_deployment_blocks_the_trigger(pdm_world):
    running = {
        "environment": "gprd",
        "sha": "3" * 40,
        "ref": "17.6.202611250620-3333333333a.4444444444b",
        "status": "running",
        "created_at": "-5m",
    }
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}, extra_deployments=[running]))
    run = pdm_world.run()
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "gates_closed"
    assert "deploy_lock" in outcome["reason"] and "running" in outcome["reason"]
    assert _created(sandbox) == []


def _window_closing_in(pdm_world, closes_in) -> None:
    """Background runs only in a window that closes `closes_in` from now; the policy predicts per batch
    (no past runs: 10m overhead + 10m per migration)."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    data = e2e_policy(now)
    data["windows"]["closing"] = {
        "days": DAYS,
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + closes_in).strftime("%H:%M"),
    }
    data["classes"]["background"]["windows"] = ["closing"]
    data["gates"]["deploy_lock"]["forecast"] = {
        "enabled": True,
        "per_migration_quantile": 50,
        "pipeline_overhead": "10m",
        "per_migration_default": "10m",
        "min_samples": 2,
        "safety_factor": 1.0,
    }
    write_policy(pdm_world.policy_path, data)


def test_a_batch_that_would_outlast_its_window_is_not_triggered(pdm_world):
    """The window gate judges the run's batch: one migration predicted 20m, the window closes in 15m."""
    from datetime import timedelta

    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}))
    _window_closing_in(pdm_world, timedelta(minutes=15))
    run = pdm_world.run()
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "waiting_for_window"  # the window gate is the one closed
    assert "batch of 1 predicted 20m would end" in outcome["reason"], outcome["reason"]
    assert "after the window closes" in outcome["reason"]
    assert _created(sandbox) == []


def test_a_batch_that_fits_its_window_is_triggered_and_recorded_for_the_next_prediction(pdm_world):
    from datetime import timedelta

    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}))
    _window_closing_in(pdm_world, timedelta(hours=3))
    run = pdm_world.run()
    assert pdm_world.outcome(run.run_id)["outcome"] == "pipeline_succeeded"
    assert len(_created(sandbox)) == 1
    decision = pdm_world.audit.events(run_id=run.run_id, kind="decision")[0].payload
    window = next(g for g in decision["gates"] if g["gate"] == "window")
    assert window["open"] and window["observed"]["batch"] == "batch of 1"
    # The run's per-batch facts are in the audit store for the next prediction.
    snapshot = pdm_world.audit.events(run_id=run.run_id, kind="snapshot")[0].payload
    assert snapshot["batch_classes"] == {"background": 1}
    assert [counts for counts, _ in pdm_world.audit.pdm_batches("gprd")] == [{"background": 1}]


def test_failed_pipeline_is_recorded_as_failure(pdm_world):
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}, pipeline_result="failed"))
    run = pdm_world.run()
    assert str(run.state).endswith("failed")
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "pipeline_failed"
    assert len(_created(sandbox)) == 1  # retries of the trigger task resumed the same pipeline


def test_weekly_report_dag_writes_html(pdm_world, tmp_path, monkeypatch):
    from include.audit import AuditEvent

    pdm_world.audit.record(
        AuditEvent("gprd", "pdm_gprd", "r1", "outcome", {"outcome": "noop", "reason": "nothing"})
    )
    monkeypatch.setenv("PDM_REPORT_DIR", str(tmp_path / "reports"))
    run = pdm_world.run("pdm_audit_report")
    assert str(run.state).endswith("success")
    (report,) = (tmp_path / "reports").glob("pdm-audit-*.html")
    assert "Runs per environment and outcome" in report.read_text()


def test_audit_unreachable_before_trigger_means_no_trigger(pdm_world, monkeypatch):
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}))
    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", "postgresql://postgres@127.0.0.1:9/nowhere")
    run = pdm_world.run()
    assert str(run.state).endswith("failed")
    assert _created(sandbox) == []


def test_audit_outage_after_trigger_keeps_the_outcome_and_writes_it_later(
    pdm_world, postgres_database, capfd, caplog
):
    """The database refuses connections while the pipeline runs; the outcome is written on a retry."""
    import threading
    import time

    import psycopg2

    name = postgres_database.rsplit("/", 1)[1]
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}, running_seconds=4))

    def outage():
        deadline = time.monotonic() + 60
        while not _created(sandbox) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # after pipeline_created was recorded
        admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        time.sleep(8)
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()

    thread = threading.Thread(target=outage)
    thread.start()
    run = pdm_world.run()
    thread.join()
    assert str(run.state).endswith("success")
    assert pdm_world.outcome(run.run_id)["outcome"] == "pipeline_succeeded"
    assert len(_created(sandbox)) == 1
    output = capfd.readouterr()
    assert "outcome NOT recorded" in output.out + output.err + caplog.text


def test_create_lost_after_gitlab_accepted_resumes_the_same_pipeline(pdm_world):
    """The create call fails after GitLab created the pipeline; the task's retry finds it, never a second."""
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}))
    sandbox.inject_fault("/pipeline$", "drop", method="POST", count=1, after_success=True)
    run = pdm_world.run()
    assert str(run.state).endswith("success")
    assert len(_created(sandbox)) == 1
    assert pdm_world.outcome(run.run_id)["outcome"] == "pipeline_succeeded"
    kinds = pdm_world.audit_kinds(run.run_id)
    assert kinds.count("pipeline_requested") == 1 and kinds.count("pipeline_created") == 1
    assert "task_failed" in kinds  # the first attempt's failure is on record too


def test_admin_api_disagreement_is_the_stricter_view(pdm_world):
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}), admin=True)  # the admin API needs admin
    sandbox.world.admin_pending["main"] = [20261120000000, 20261119000000]
    pdm_world.use_policy(admin_check_databases=["main", "ci"])
    # A human is asked now (Required Actions); rejecting ends the run as it ended before (nothing runs).
    run, _ = run_answering(pdm_world, "Reject", "views disagree")
    snapshot = pdm_world.audit.events(run_id=run.run_id, kind="snapshot")[0].payload
    assert snapshot["cross_check"]["only_in_admin_api"] == ["20261119000000"]
    assert pdm_world.outcome(run.run_id)["outcome"] == "rejected"
    assert _created(sandbox) == []


def test_selected_versions_runs_the_longest_allowed_prefix(pdm_world):
    """A background migration before a cleanup: only the background one runs now, named in PDM_VERSIONS."""
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND, CLEANUP_FILE: CLEANUP}))
    pdm_world.use_policy(execution_mode="selected_versions")
    run = pdm_world.run()
    assert pdm_world.outcome(run.run_id)["outcome"] == "pipeline_succeeded"
    (created,) = _created(sandbox)
    assert created["variables"]["PDM_VERSIONS"] == "20261120000000"


def test_selected_versions_with_a_blocked_first_migration_waits(pdm_world):
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND, CLEANUP_FILE: CLEANUP}))
    pdm_world.use_policy(execution_mode="selected_versions")
    run = pdm_world.run(conf={"class_filter": ["cleanup"]})
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "waiting_for_window" and "no prefix can run" in outcome["reason"]
    assert _created(sandbox) == []


UNKNOWN_FILE = "db/post_migrate/20261119000000_rebuild_project_statistics.rb"
UNKNOWN = """# frozen_string_literal: true

class RebuildProjectStatistics < Gitlab::Database::Migration[2.2]
  milestone '17.6'

  def up
    Projects::RefreshStatisticsService.new.execute
  end

  def down; end
end
"""


def test_selected_versions_with_an_unknown_first_migration_needs_a_human(pdm_world):
    """No window ever lets an unknown migration through: the run says a human is needed, not 'wait'."""
    sandbox = pdm_world.serve(world({UNKNOWN_FILE: UNKNOWN, BACKGROUND_FILE: BACKGROUND}))
    pdm_world.use_policy(execution_mode="selected_versions")
    run = pdm_world.run()
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "needs_human" and UNKNOWN_FILE in outcome["reason"]
    assert _created(sandbox) == []
