"""The hook on GitLab's real answers (issue 13): each mismatch between our old idea of GitLab and GitLab's
source, reproduced by the sandbox, and the hook doing the right thing with the least role it needs."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from include.pending import pending_from_compare
from include.sandbox.gitlab_server import SandboxGitLab
from tests.support.scenarios import APP, BACKGROUND, CLEANUP, NEW_SHA, OLD_SHA, RELEASE_TOOLS, world

TOKEN = "fidelity-admin-token-1a2b3c"
DEVELOPER = "fidelity-developer-token-4d5e"
GUEST = "fidelity-guest-token-6f70"
PRODUCTION = "gitlab-com/gl-infra/production"
pytestmark = pytest.mark.integration

PENDING = {
    "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb": BACKGROUND,
    "ee/db/post_migrate/20261121000000_remove_legacy_trace_column_from_ci_builds.rb": CLEANUP,
}


def _scenario(**top: Any) -> dict[str, Any]:
    scenario = world(PENDING)
    everywhere = [APP, PRODUCTION, RELEASE_TOOLS]
    scenario["tokens"] = [
        {"token": DEVELOPER, "username": "pdm-bot", "roles": dict.fromkeys(everywhere, "developer")},
        {"token": GUEST, "username": "pdm-guest", "roles": dict.fromkeys(everywhere, "guest")},
    ]
    scenario.update(top)
    return scenario


@pytest.fixture
def make_hook(monkeypatch):
    started: list[SandboxGitLab] = []

    def make(scenario: dict[str, Any] | None = None, token: str = TOKEN, **extra: Any):
        from pdm_orchestrator.hooks.gitlab import GitLabHook

        if scenario is not None or not started:
            started.append(SandboxGitLab(scenario or _scenario(), token=TOKEN).start())
        sandbox = started[-1]
        conn = {"conn_type": "http", "host": sandbox.url, "password": token, "extra": {"timeout": 5, **extra}}
        monkeypatch.setenv("AIRFLOW_CONN_GITLAB_DEFAULT", json.dumps(conn))
        return GitLabHook(), sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


def test_finish_time_of_api_recorded_and_ci_run_deployments(make_hook):
    """GitLab's deployment has no finished_at: API records (deployable null) finish at updated_at, CI ones
    when their job finished."""
    hook, sandbox = make_hook()
    api_made = hook.latest_successful_deployment(APP, "gprd")
    assert api_made is not None and api_made.finished_at is not None
    assert (
        timedelta(hours=4, minutes=59)
        < datetime.now(UTC) - api_made.finished_at
        < timedelta(hours=5, minutes=1)
    )
    sandbox.add_deployment(
        APP, environment="gprd", sha=NEW_SHA, ref="17.7.ci", status="success", created_by="ci",
        created_at="-3h", finished_at="-2h",
    )  # fmt: skip
    ci_made = hook.latest_successful_deployment(APP, "gprd")
    assert ci_made.ref == "17.7.ci"
    assert (
        timedelta(hours=1, minutes=59)
        < datetime.now(UTC) - ci_made.finished_at
        < timedelta(hours=2, minutes=1)
    )
    running = sandbox.add_deployment(APP, environment="gprd", sha=NEW_SHA, ref="r", status="running")
    assert next(d for d in hook.active_deployments(APP, "gprd") if d.id == running["id"]).finished_at is None


def test_truncated_compare_falls_back_to_the_tree_and_misses_nothing(make_hook):
    many = {f"app/models/file_{i}.rb": "x\n" * 3 for i in range(30)}  # sorted before db/: they fill the limit
    scenario = _scenario(diff_limits={"max_files": 10, "max_lines": 50000})
    scenario["projects"][0]["commits"][1]["add"].update(many)
    hook, sandbox = make_hook(scenario)
    raw = hook.get_conn().projects.get(APP, lazy=True).repository_compare(OLD_SHA, NEW_SHA)
    assert raw["compare_timeout"] is True
    assert not pending_from_compare(raw["diffs"])  # GitLab's cut answer alone would miss both PDMs
    found = pending_from_compare(hook.compare(APP, OLD_SHA, NEW_SHA))
    assert [f.path for f in found] == sorted(PENDING)
    assert sandbox.request_count("GET", "/api/v4/projects/:id/repository/tree") == 4  # 2 dirs × 2 SHAs


def test_truncated_compare_with_an_unlistable_tree_fails_closed(make_hook):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    scenario = _scenario(diff_limits={"max_files": 1, "max_lines": 50000})
    hook, sandbox = make_hook(scenario)
    sandbox.inject_fault(r"/repository/tree", status=500, count=50)
    with pytest.raises(GitLabError, match="repository/tree"):
        hook.compare(APP, OLD_SHA, NEW_SHA)


def test_admin_pending_migrations_shape_and_404s(make_hook):
    from pdm_orchestrator.hooks.gitlab import AdminCheckUnavailable, GitLabError

    scenario = _scenario(admin_pending_migrations={"main": [20261120000000, 20261121000000], "ci": []})
    hook, _ = make_hook(scenario)
    assert hook.admin_pending_migrations("main") == ["20261120000000", "20261121000000"]
    assert hook.admin_pending_migrations("ci") == []
    with pytest.raises(AdminCheckUnavailable, match="does not run database 'geo'"):
        hook.admin_pending_migrations("geo")
    with pytest.raises(GitLabError, match="HTTP 400"):
        hook.admin_pending_migrations("nosuch")
    old, _ = make_hook(_scenario(admin_migrations_endpoint=False))
    with pytest.raises(AdminCheckUnavailable, match="predates this endpoint"):
        old.admin_pending_migrations("main")


def test_exactly_once_lookup_needs_only_developer(make_hook):
    """The bot reads variables only of its own pipelines: no 403 on others' pipelines, its own found."""
    hook, sandbox = make_hook(token=DEVELOPER)
    admin = sandbox.world.project(RELEASE_TOOLS)
    sandbox.world.add_pipeline(admin, {"ref": "master", "status": "running", "user": "release-bot",
                                        "variables": {"PDM_DECISION_ID": "d-1"}}, created_via_api=False)  # fmt: skip
    assert hook.find_pipeline_by_variable(RELEASE_TOOLS, "master", "PDM_DECISION_ID", "d-1") is None
    mine = hook.create_pipeline(
        RELEASE_TOOLS, "master", {"PDM_DECISION_ID": "d-1", "PDM_ENVIRONMENT": "gprd"}
    )
    found = hook.find_pipeline_by_variable(
        RELEASE_TOOLS, "master", "PDM_DECISION_ID", "d-1", datetime.now(UTC) - timedelta(hours=1)
    )
    assert found is not None and found.id == mine.id


def test_deploy_lock_counts_unreadable_pipelines_as_holding(make_hook):
    hook, sandbox = make_hook(token=DEVELOPER)
    project = sandbox.world.project(RELEASE_TOOLS)
    other = sandbox.world.add_pipeline(
        project, {"ref": "master", "status": "waiting_for_callback", "user": "release-bot",
                  "variables": {"PDM_ENVIRONMENT": "gstg"}}, created_via_api=False,
    )  # fmt: skip
    held = hook.active_pipelines(RELEASE_TOOLS, "master", {"PDM_ENVIRONMENT": "gprd"})
    assert [p.id for p in held] == [other["id"]] and "unreadable" in held[0].note
    admin, _ = make_hook(token=TOKEN)
    assert admin.active_pipelines(RELEASE_TOOLS, "master", {"PDM_ENVIRONMENT": "gprd"}) == []
    assert [p.status for p in admin.active_pipelines(RELEASE_TOOLS, "master")] == ["waiting_for_callback"]


def test_pipeline_variables_setting_is_detected_and_explained(make_hook):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    scenario = _scenario()
    scenario["projects"][2]["pipeline_variables_minimum_role"] = "no_one_allowed"
    hook, sandbox = make_hook(scenario, token=DEVELOPER)
    with pytest.raises(GitLabError, match="ci_pipeline_variables_minimum_override_role") as error:
        hook.create_pipeline(RELEASE_TOOLS, "master", {"PDM_ENVIRONMENT": "gprd"})
    assert "Insufficient permissions to set pipeline variables" in str(error.value)
    assert sandbox.created_pipelines(RELEASE_TOOLS) == []


def test_blocking_issues_fail_closed_below_reporter(make_hook):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    scenario = _scenario()
    scenario["projects"][1]["issues"] = [
        {"iid": 3, "title": "Secret", "labels": ["incident"], "confidential": True, "state": "opened"}
    ]
    hook, _ = make_hook(scenario, token=GUEST)
    with pytest.raises(GitLabError, match="confidential incidents are invisible below Reporter"):
        hook.blocking_issues([PRODUCTION], ["incident"])
    developer, _ = make_hook(token=DEVELOPER)
    assert [i.iid for i in developer.blocking_issues([PRODUCTION], ["incident"])] == [3]


def test_a_long_retry_after_fails_the_call_within_its_budget(make_hook):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    hook, sandbox = make_hook(max_call_seconds=3)
    sandbox.inject_fault(r"/deployments", kind="rate_limit", retry_after=60, count=5)
    started = time.monotonic()
    with pytest.raises(GitLabError, match="Retry-After 60 s"):
        hook.latest_successful_deployment(APP, "gprd")
    assert time.monotonic() - started < 3
    sandbox.clear_faults()
    sandbox.inject_fault(r"/deployments", kind="rate_limit", retry_after=1, count=1)
    assert hook.latest_successful_deployment(APP, "gprd") is not None  # a short wait is still obeyed


def test_recording_needs_an_existing_ref(make_hook):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    hook, _ = make_hook()
    deployed = hook.latest_successful_deployment(APP, "gprd")
    recorded = hook.record_deployment(APP, "db/gprd", deployed.sha, deployed.ref)
    assert hook.update_deployment_status(APP, recorded.id, "success").finished_at is not None
    with pytest.raises(GitLabError, match="HTTP 400"):
        hook.record_deployment(APP, "db/gprd", deployed.sha, "no-such-branch")


def test_slow_transient_errors_stop_at_the_budget(make_hook):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    hook, sandbox = make_hook(max_call_seconds=2, max_retries=10)  # 10 backoffs alone would take ~100 s
    sandbox.inject_fault(r"/deployments", status=502, count=50)
    started = time.monotonic()
    with pytest.raises(GitLabError, match="max_call_seconds"):
        hook.latest_successful_deployment(APP, "gprd")
    assert time.monotonic() - started < 5
