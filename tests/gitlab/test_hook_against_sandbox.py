"""GitLabHook over HTTP against the sandbox GitLab (python-gitlab, real sockets): exact values of a known
world, and the faults only a sandbox can inject. The contract both the sandbox and a real GitLab are held to
is test_contract.py."""

from __future__ import annotations

import json
import time

import pytest

from include.sandbox.gitlab_server import SandboxGitLab
from tests.support.scenarios import APP, BACKGROUND, CLEANUP, NEW_SHA, OLD_SHA, RELEASE_TOOLS, world

TOKEN = "hook-test-token-9f8e7d6c5b4a"
pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox():
    scenario = world(
        {
            "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb": BACKGROUND,
            "ee/db/post_migrate/20261121000000_remove_legacy_trace_column_from_ci_builds.rb": CLEANUP,
        },
        extra_deployments=[
            {"environment": "gprd", "sha": "3" * 40, "ref": "next", "status": "running", "created_at": "-5m"}
        ],
    )
    scenario["projects"][1]["issues"] = [
        {"iid": 5, "title": "Degraded API", "labels": ["incident", "severity::2"], "state": "opened"},
        {"iid": 6, "title": "Old incident", "labels": ["incident", "severity::1"], "state": "closed"},
        {"iid": 7, "title": "Patroni upgrade", "labels": ["change::in-progress", "C2"], "state": "opened"},
        {"iid": 8, "title": "Minor change", "labels": ["change::in-progress", "C4"], "state": "opened"},
    ]
    server = SandboxGitLab(scenario, token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def hook(sandbox, monkeypatch):
    from pdm_orchestrator.hooks.gitlab import GitLabHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_GITLAB_DEFAULT",
        json.dumps({"conn_type": "http", "host": sandbox.url, "password": TOKEN, "extra": {"timeout": 5}}),
    )
    return GitLabHook()


def test_deployed_package_and_rollback_line(hook):
    deployed = hook.latest_successful_deployment(APP, "gprd")
    assert deployed.sha == NEW_SHA and deployed.package.major == 17 and deployed.finished_at is not None
    assert hook.latest_successful_deployment(APP, "db/gprd").sha == OLD_SHA
    assert hook.latest_successful_deployment(APP, "nowhere") is None


def test_active_deployments_hold_the_environment(hook):
    active = hook.active_deployments(APP, "gprd")
    assert [(d.status, d.ref) for d in active] == [("running", "next")]


def test_pending_files_by_compare_and_contents(hook):
    from include.pending import pending_from_compare

    files = pending_from_compare(hook.compare(APP, OLD_SHA, NEW_SHA))
    assert [f.version for f in files] == ["20261120000000", "20261121000000"]
    assert b"queue_batched_background_migration" in hook.raw_file(APP, files[0].path, NEW_SHA)


def test_blocking_issues(hook):
    issues = hook.blocking_issues(
        ["gitlab-com/gl-infra/production"],
        ["severity::1", "severity::2"],
        ["change::in-progress"],
        ["C1", "C2"],
    )
    assert sorted(i.iid for i in issues) == [5, 7]


def test_pipeline_create_find_status_and_cancel(hook, sandbox):
    created = hook.create_pipeline(
        RELEASE_TOOLS, "master", {"PDM_ENVIRONMENT": "gprd", "PDM_DECISION_ID": "d-42"}
    )
    assert created.status in ("created", "pending") and created.web_url.endswith(f"/pipelines/{created.id}")
    found = hook.find_pipeline_by_variable(RELEASE_TOOLS, "master", "PDM_DECISION_ID", "d-42")
    assert found.id == created.id
    assert hook.find_pipeline_by_variable(RELEASE_TOOLS, "master", "PDM_DECISION_ID", "other") is None
    assert [p.id for p in hook.active_pipelines(RELEASE_TOOLS, "master", {"PDM_ENVIRONMENT": "gprd"})] == [
        created.id
    ]
    hook.cancel_pipeline(RELEASE_TOOLS, created.id)
    # GitLab cancels through `canceling` (after_script runs); meanwhile it still holds the environment
    assert hook.pipeline(RELEASE_TOOLS, created.id).status == "canceling"
    assert [p.id for p in hook.active_pipelines(RELEASE_TOOLS, "master")] == [created.id]
    sandbox.advance_clock(1)
    assert hook.pipeline(RELEASE_TOOLS, created.id).status == "canceled"


def test_pipeline_progresses_and_records_db_deployment(hook, sandbox):
    created = hook.create_pipeline(
        RELEASE_TOOLS,
        "master",
        {"PDM_ENVIRONMENT": "gprd", "PDM_SHA": NEW_SHA, "PDM_PACKAGE": "pkg", "PDM_DECISION_ID": "x"},
    )
    assert hook.latest_successful_deployment(APP, "db/gprd").sha == OLD_SHA
    sandbox.advance_clock(10)
    assert hook.pipeline(RELEASE_TOOLS, created.id).status == "success"
    assert hook.latest_successful_deployment(APP, "db/gprd").sha == NEW_SHA


def test_transient_errors_are_retried(hook, sandbox):
    sandbox.inject_fault("/deployments", "status", status=502, count=2)
    assert hook.latest_successful_deployment(APP, "gprd").sha == NEW_SHA
    sandbox.inject_fault("/deployments", "rate_limit", retry_after=1, count=1)
    started = time.monotonic()
    assert hook.latest_successful_deployment(APP, "gprd").sha == NEW_SHA
    assert time.monotonic() - started >= 0.9  # Retry-After honoured


def test_persistent_failure_names_the_endpoint_not_the_token(hook, sandbox):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    sandbox.inject_fault("/deployments", "status", status=500, count=100)
    with pytest.raises(GitLabError) as error:
        hook.latest_successful_deployment(APP, "gprd")
    assert "deployments" in str(error.value) and "500" in str(error.value)
    assert TOKEN not in str(error.value)


def test_malformed_answer_is_an_error_not_a_result(hook, sandbox):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    sandbox.inject_fault("/deployments", "malformed_json", count=1)
    with pytest.raises(GitLabError):
        hook.active_deployments(APP, "gprd", ["running"])


def test_wrong_token_is_refused(sandbox, monkeypatch):
    from pdm_orchestrator.hooks.gitlab import GitLabError, GitLabHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_GITLAB_DEFAULT",
        json.dumps({"conn_type": "http", "host": sandbox.url, "password": "wrong"}),
    )
    with pytest.raises(GitLabError, match="401"):
        GitLabHook().latest_successful_deployment(APP, "gprd")


def test_pagination_follows_every_page(hook, sandbox):
    for i in range(130):
        sandbox.add_deployment(APP, environment="gstg", sha=f"{i:040d}", ref="r", status="running")
    assert len(hook.active_deployments(APP, "gstg", ["running"])) == 130


def test_record_a_pdm_run_as_db_deployment(hook):
    recorded = hook.record_deployment(APP, "db/gprd", NEW_SHA, "17.6.202611240620-2222222222a.3333333333b")
    assert recorded.status == "running" and recorded.environment == "db/gprd"
    assert hook.latest_successful_deployment(APP, "db/gprd").sha == OLD_SHA
    assert hook.update_deployment_status(APP, recorded.id, "success").status == "success"
    assert hook.latest_successful_deployment(APP, "db/gprd").sha == NEW_SHA


def test_admin_pending_migrations(hook, sandbox):
    sandbox.world.admin_pending["main"] = [20261121000000, 20261120000000]
    assert hook.admin_pending_migrations("main") == ["20261120000000", "20261121000000"]


def test_trigger_token(sandbox, monkeypatch):
    from pdm_orchestrator.hooks.gitlab import GitLabHook

    sandbox.world.project(RELEASE_TOOLS).trigger_tokens.append("trigger-abc")
    monkeypatch.setenv(
        "AIRFLOW_CONN_GITLAB_DEFAULT",
        json.dumps(
            {
                "conn_type": "http",
                "host": sandbox.url,
                "password": TOKEN,
                "extra": {"trigger_token": "trigger-abc"},
            }
        ),
    )
    created = GitLabHook().trigger_pipeline_with_token(RELEASE_TOOLS, "master", {"PDM_DECISION_ID": "t-1"})
    assert created.id and sandbox.created_pipelines(RELEASE_TOOLS)[0]["variables"] == {
        "PDM_DECISION_ID": "t-1"
    }


def test_create_that_fails_after_gitlab_accepted_is_found_not_repeated(hook, sandbox):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    sandbox.inject_fault("/pipeline$", "status", status=502, method="POST", count=1, after_success=True)
    with pytest.raises(GitLabError, match="502"):
        hook.create_pipeline(RELEASE_TOOLS, "master", {"PDM_DECISION_ID": "d-7"})
    assert (
        len(sandbox.created_pipelines(RELEASE_TOOLS)) == 1
    )  # GitLab did create it; no client retry made a second
    found = hook.find_pipeline_by_variable(RELEASE_TOOLS, "master", "PDM_DECISION_ID", "d-7")
    assert found is not None
