"""The GitLab contract: what the hook promises, asserted the same way against the sandbox and a real GitLab.

Every test here takes `target`. It always runs against the sandbox GitLab; it runs against a real GitLab too
when GITLAB_CONTRACT_URL and GITLAB_CONTRACT_TOKEN are set (see docs/gitlab.md, "Contract tests"). Against a
real instance the assertions are about shapes and invariants, never about values only the sandbox knows, and
tests that write (pipelines, deployments) run only when a scratch project for them is named.
Fault injection has no real-GitLab counterpart; those tests live in test_hook_against_sandbox.py.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from include.deployments import ACTIVE_DEPLOYMENT_STATUSES
from include.pending import pending_from_compare
from include.pipelines import FINISHED_STATUSES
from include.sandbox.gitlab_server import SandboxGitLab
from tests.support.scenarios import APP, BACKGROUND, CLEANUP, NEW_SHA, OLD_SHA, RELEASE_TOOLS, world

pytestmark = pytest.mark.integration

SANDBOX_TOKEN = "contract-token-5e4d3c2b1a"
CONN_ID = "gitlab_contract"
NO_SUCH_ENVIRONMENT = "pdm-contract-no-such-environment"


@dataclass
class ContractTarget:
    """One GitLab the contract is checked against, and what may be read from or written to it."""

    name: str
    url: str
    token: str
    project: str
    environment: str
    compare: tuple[str, str] | None = None
    issues_project: str | None = None
    incident_labels: list[str] = field(default_factory=list)
    change_labels_all: list[str] = field(default_factory=list)
    change_labels_any: list[str] = field(default_factory=list)
    pipeline_project: str | None = None
    pipeline_ref: str = "master"
    deployment_project: str | None = None
    trigger_token: str | None = None
    admin_database: str | None = None
    sandbox: SandboxGitLab | None = None
    monkeypatch: Any = None

    def hook(self, token: str | None = None, **extra: Any):
        """A fresh GitLabHook on a connection to this target (the token only ever in the connection)."""
        from pdm_orchestrator.hooks.gitlab import GitLabHook

        extra = {"timeout": 20, "max_retries": 2, **extra}
        if self.trigger_token:
            extra["trigger_token"] = self.trigger_token
        conn = {"conn_type": "http", "host": self.url, "password": token or self.token, "extra": extra}
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        return GitLabHook(gitlab_conn_id=CONN_ID)


def _sandbox_world() -> dict[str, Any]:
    scenario = world(
        {
            "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb": BACKGROUND,
            "ee/db/post_migrate/20261121000000_remove_legacy_trace_column_from_ci_builds.rb": CLEANUP,
        },
        extra_deployments=[
            {"environment": "gprd", "sha": "3" * 40, "ref": "next", "status": "running", "created_at": "-5m"},
            {"environment": "gprd", "sha": "4" * 40, "ref": "next", "status": "blocked", "created_at": "-4m"},
            {"environment": "gprd", "sha": "5" * 40, "ref": "next", "status": "created", "created_at": "-3m"},
            {"environment": "gstg", "sha": "6" * 40, "ref": "next", "status": "running", "created_at": "-2m"},
        ],
    )
    scenario["projects"][1]["issues"] = [
        {"iid": 5, "title": "Degraded API", "labels": ["incident", "severity::2"], "state": "opened"},
        {"iid": 6, "title": "Old incident", "labels": ["incident", "severity::1"], "state": "closed"},
        {"iid": 7, "title": "Patroni upgrade", "labels": ["change::in-progress", "C2"], "state": "opened"},
        {"iid": 8, "title": "Minor change", "labels": ["change::in-progress", "C4"], "state": "opened"},
        {"iid": 9, "title": "Disk alert", "labels": ["incident", "severity::1"], "state": "opened"},
        {"iid": 10, "title": "Replica lag", "labels": ["incident", "severity::2"], "state": "opened"},
    ]
    return scenario


def _sandbox_target(monkeypatch) -> Iterator[ContractTarget]:
    server = SandboxGitLab(_sandbox_world(), token=SANDBOX_TOKEN).start()
    server.world.project(RELEASE_TOOLS).trigger_tokens.append("contract-trigger-token")
    server.world.admin_pending["main"] = [20261121000000, 20261120000000]
    try:
        yield ContractTarget(
            name="sandbox",
            url=server.url,
            token=SANDBOX_TOKEN,
            project=APP,
            environment="gprd",
            compare=(OLD_SHA, NEW_SHA),
            issues_project="gitlab-com/gl-infra/production",
            incident_labels=["severity::1", "severity::2"],
            change_labels_all=["change::in-progress"],
            change_labels_any=["C1", "C2"],
            pipeline_project=RELEASE_TOOLS,
            deployment_project=APP,
            trigger_token="contract-trigger-token",
            admin_database="main",
            sandbox=server,
            monkeypatch=monkeypatch,
        )
    finally:
        server.stop()


def _real_target(monkeypatch) -> ContractTarget:
    env = os.environ

    def labels(name: str, default: str) -> list[str]:
        return [item.strip() for item in env.get(name, default).split(",") if item.strip()]

    compare = env.get("GITLAB_CONTRACT_COMPARE")  # "FROM_SHA..TO_SHA"
    return ContractTarget(
        name="gitlab",
        url=env["GITLAB_CONTRACT_URL"],
        token=env["GITLAB_CONTRACT_TOKEN"],
        project=env.get("GITLAB_CONTRACT_PROJECT", "gitlab-org/gitlab"),
        environment=env.get("GITLAB_CONTRACT_ENVIRONMENT", "gprd"),
        compare=tuple(compare.split("..", 1)) if compare else None,  # type: ignore[arg-type]
        issues_project=env.get("GITLAB_CONTRACT_ISSUES_PROJECT"),
        incident_labels=labels("GITLAB_CONTRACT_INCIDENT_LABELS", "severity::1,severity::2"),
        change_labels_all=labels("GITLAB_CONTRACT_CHANGE_LABELS", "change::in-progress"),
        change_labels_any=labels("GITLAB_CONTRACT_CHANGE_CRITICALITIES", "C1,C2"),
        pipeline_project=env.get("GITLAB_CONTRACT_PIPELINE_PROJECT"),
        pipeline_ref=env.get("GITLAB_CONTRACT_PIPELINE_REF", "main"),
        deployment_project=env.get("GITLAB_CONTRACT_DEPLOYMENT_PROJECT"),
        trigger_token=env.get("GITLAB_CONTRACT_TRIGGER_TOKEN"),
        admin_database=env.get("GITLAB_CONTRACT_ADMIN_DATABASE"),
        monkeypatch=monkeypatch,
    )


@pytest.fixture(params=["sandbox", "gitlab"])
def target(request, monkeypatch) -> Iterator[ContractTarget]:
    if request.param == "gitlab":
        if not (os.environ.get("GITLAB_CONTRACT_URL") and os.environ.get("GITLAB_CONTRACT_TOKEN")):
            pytest.skip(
                "set GITLAB_CONTRACT_URL and GITLAB_CONTRACT_TOKEN to hold a real GitLab to the contract"
            )
        yield _real_target(monkeypatch)
        return
    yield from _sandbox_target(monkeypatch)


def _needs(value: Any, what: str) -> None:
    if not value:
        pytest.skip(f"this target names no {what}")


# -- deployments ----------------------------------------------------------------------------------------


def test_latest_successful_deployment_is_a_finished_success_of_that_environment(target):
    deployed = target.hook().latest_successful_deployment(target.project, target.environment)
    assert deployed is not None, f"no successful deployment of {target.environment} in {target.project}"
    assert re.fullmatch(r"[0-9a-f]{40}", deployed.sha)
    assert deployed.status == "success" and deployed.environment == target.environment
    assert deployed.finished_at is not None and deployed.finished_at.tzinfo is not None
    assert deployed.ref


def test_an_environment_without_deployments_has_none(target):
    assert target.hook().latest_successful_deployment(target.project, NO_SUCH_ENVIRONMENT) is None
    assert target.hook().active_deployments(target.project, NO_SUCH_ENVIRONMENT) == []


def test_active_deployments_are_active_and_of_that_environment(target):
    active = target.hook().active_deployments(target.project, target.environment)
    for deployment in active:
        assert deployment.status in ACTIVE_DEPLOYMENT_STATUSES
        assert deployment.environment == target.environment
    if target.sandbox:
        assert sorted(d.status for d in active) == ["blocked", "created", "running"]


def test_lists_are_followed_to_the_last_page(target):
    """The same answer with pages of 2 as with pages of 100: nothing beyond the first page is lost."""
    small, large = target.hook(per_page=2), target.hook(per_page=100)
    assert sorted(d.id for d in small.active_deployments(target.project, target.environment)) == sorted(
        d.id for d in large.active_deployments(target.project, target.environment)
    )
    if target.issues_project:
        args = (
            [target.issues_project],
            target.incident_labels,
            target.change_labels_all,
            target.change_labels_any,
        )
        assert sorted(i.iid for i in small.blocking_issues(*args)) == sorted(
            i.iid for i in large.blocking_issues(*args)
        )


# -- repository -----------------------------------------------------------------------------------------


def test_compare_yields_post_deploy_migrations_readable_at_the_new_sha(target):
    _needs(target.compare, "compare range (GITLAB_CONTRACT_COMPARE=FROM..TO)")
    hook = target.hook()
    from_sha, to_sha = target.compare
    files = pending_from_compare(hook.compare(target.project, from_sha, to_sha))
    for pending in files:
        assert re.match(r"(ee/)?db/post_migrate/\d{14}_\w+\.rb$", pending.path)
    readable = [f for f in files if not getattr(f, "deleted", False)][:3]
    for pending in readable:
        assert b"class " in hook.raw_file(target.project, pending.path, to_sha)
    if target.sandbox:
        assert [f.version for f in files] == ["20261120000000", "20261121000000"]


def test_compare_of_a_commit_with_itself_is_empty(target):
    hook = target.hook()
    deployed = hook.latest_successful_deployment(target.project, target.environment)
    assert deployed is not None
    assert hook.compare(target.project, deployed.sha, deployed.sha) == []


def test_a_missing_file_is_an_error_naming_the_endpoint_not_the_token(target):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    hook = target.hook()
    deployed = hook.latest_successful_deployment(target.project, target.environment)
    with pytest.raises(GitLabError) as error:
        hook.raw_file(target.project, "db/post_migrate/00000000000000_pdm_contract_missing.rb", deployed.sha)
    assert "404" in str(error.value) and "repository/files" in str(error.value)
    assert target.token not in str(error.value)


def test_an_unknown_project_is_a_404_naming_the_endpoint(target):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    with pytest.raises(GitLabError) as error:
        target.hook().latest_successful_deployment("pdm-contract/no-such-project-7f3a", target.environment)
    assert "404" in str(error.value) and "deployments" in str(error.value)
    assert target.token not in str(error.value)


def test_a_wrong_token_is_refused_with_401(target):
    from pdm_orchestrator.hooks.gitlab import GitLabError

    with pytest.raises(GitLabError) as error:
        target.hook(token="pdm-contract-wrong-token").latest_successful_deployment(
            target.project, target.environment
        )
    assert "401" in str(error.value) and "wrong-token" not in str(error.value)


# -- incidents and change requests ------------------------------------------------------------------------


def test_blocking_issues_are_open_and_carry_a_blocking_label(target):
    _needs(target.issues_project, "issues project (GITLAB_CONTRACT_ISSUES_PROJECT)")
    issues = target.hook().blocking_issues(
        [target.issues_project], target.incident_labels, target.change_labels_all, target.change_labels_any
    )
    for issue in issues:
        labels = set(issue.labels)
        incident = bool(labels & set(target.incident_labels))
        change = set(target.change_labels_all) <= labels and bool(labels & set(target.change_labels_any))
        assert incident or change, f"{issue.iid} carries no blocking label: {sorted(labels)}"
        assert issue.project == target.issues_project and issue.iid > 0
    if target.sandbox:
        assert sorted(i.iid for i in issues) == [5, 7, 9, 10]


# -- pipelines (write: a scratch project only) ---------------------------------------------------------------


def test_pipeline_create_find_active_status_and_cancel(target):
    _needs(target.pipeline_project, "scratch pipeline project (GITLAB_CONTRACT_PIPELINE_PROJECT)")
    hook = target.hook()
    decision = f"contract-{os.getpid()}-{id(target)}"
    variables = {"PDM_ENVIRONMENT": "contract", "PDM_DECISION_ID": decision}
    created = hook.create_pipeline(target.pipeline_project, target.pipeline_ref, variables)
    try:
        assert created.id > 0 and created.web_url.endswith(f"/pipelines/{created.id}")
        assert created.ref == target.pipeline_ref
        found = hook.find_pipeline_by_variable(
            target.pipeline_project, target.pipeline_ref, "PDM_DECISION_ID", decision
        )
        assert found is not None and found.id == created.id
        assert (
            hook.find_pipeline_by_variable(
                target.pipeline_project, target.pipeline_ref, "PDM_DECISION_ID", decision + "-other"
            )
            is None
        )
        active = hook.active_pipelines(
            target.pipeline_project, target.pipeline_ref, {"PDM_DECISION_ID": decision}
        )
        assert [p.id for p in active] in ([created.id], [])  # [] only if it already finished
    finally:
        hook.cancel_pipeline(target.pipeline_project, created.id)
    status = hook.pipeline(target.pipeline_project, created.id).status
    assert status in FINISHED_STATUSES or status == "canceling"


def test_pipeline_with_a_trigger_token(target):
    _needs(target.pipeline_project and target.trigger_token, "trigger token (GITLAB_CONTRACT_TRIGGER_TOKEN)")
    hook = target.hook()
    decision = f"contract-trigger-{os.getpid()}"
    created = hook.trigger_pipeline_with_token(
        target.pipeline_project, target.pipeline_ref, {"PDM_DECISION_ID": decision}
    )
    try:
        found = hook.find_pipeline_by_variable(
            target.pipeline_project, target.pipeline_ref, "PDM_DECISION_ID", decision
        )
        assert found is not None and found.id == created.id
    finally:
        hook.cancel_pipeline(target.pipeline_project, created.id)


# -- the rollback line (write: a scratch project only) ---------------------------------------------------------


def test_a_pdm_run_recorded_as_a_db_deployment_moves_the_rollback_line(target):
    _needs(target.deployment_project, "scratch deployment project (GITLAB_CONTRACT_DEPLOYMENT_PROJECT)")
    hook = target.hook()
    deployed = hook.latest_successful_deployment(target.deployment_project, target.environment)
    _needs(deployed, f"successful {target.environment} deployment in the deployment project")
    db_environment = f"db/{target.environment}"
    recorded = hook.record_deployment(target.deployment_project, db_environment, deployed.sha, deployed.ref)
    assert recorded.status == "running" and recorded.environment == db_environment
    finished = hook.update_deployment_status(target.deployment_project, recorded.id, "success")
    assert finished.status == "success"
    line = hook.latest_successful_deployment(target.deployment_project, db_environment)
    assert line is not None and line.id == recorded.id and line.sha == deployed.sha


# -- admin API -------------------------------------------------------------------------------------------------


def test_admin_pending_migrations_are_sorted_versions(target):
    _needs(target.admin_database, "database for the admin API (GITLAB_CONTRACT_ADMIN_DATABASE, admin token)")
    versions = target.hook().admin_pending_migrations(target.admin_database)
    assert versions == sorted(versions) and all(re.fullmatch(r"\d{14}", v) for v in versions)
    if target.sandbox:
        assert versions == ["20261120000000", "20261121000000"]


# -- GitLab's own facts (include/sandbox/gitlab_api.yaml) ------------------------------------------------


def _entity(target: ContractTarget, answer: dict[str, Any], entity: str) -> None:
    """The sandbox answers exactly the entity's fields; a real GitLab at least those, and otherwise only the
    fields some versions add (never one the table does not know, for entities the table lists in full)."""
    from include.sandbox import api_table

    fields = set(api_table.entity_fields(entity))
    known = fields | set(api_table.table()["entities"][entity].get("version_fields") or [])
    got = set(answer)
    if target.sandbox:
        assert got <= fields if api_table.entity_is_partial(entity) else got == fields, (entity, got ^ fields)
        return
    assert fields <= got, f"{entity}: GitLab lacks {sorted(fields - got)}"
    if not api_table.entity_is_partial(entity):
        assert got <= known, f"{entity}: fields the table does not know: {sorted(got - known)}"


def test_deployments_have_no_finished_at_and_gitlabs_fields(target):
    gl = target.hook().get_conn()
    found = gl.projects.get(target.project, lazy=True).deployments.list(
        environment=target.environment,
        status="success",
        order_by="finished_at",
        sort="desc",
        per_page=3,
        page=1,
    )
    assert found, "no successful deployment to look at"
    for item in found:
        data = item.asdict()
        _entity(target, data, "deployment")
        _entity(target, data["environment"], "environment_basic")
        assert "finished_at" not in data
        if data["deployable"] is not None:
            _entity(target, data["deployable"], "job")
            _entity(target, data["deployable"]["pipeline"], "pipeline_basic")


def test_pipelines_use_gitlabs_statuses_and_shapes(target):
    from include.pipelines import ALL_STATUSES

    project = target.pipeline_project or target.project
    listed = target.hook().get_conn().projects.get(project, lazy=True).pipelines.list(per_page=5, page=1)
    for item in listed:
        _entity(target, item.asdict(), "pipeline_list_item")
        assert item.status in ALL_STATUSES


def test_compare_shape_and_its_truncation_flag(target):
    _needs(target.compare, "compare range (GITLAB_CONTRACT_COMPARE)")
    old, new = target.compare
    answer = target.hook().get_conn().projects.get(target.project, lazy=True).repository_compare(old, new)
    _entity(target, answer, "compare")
    assert isinstance(answer["compare_timeout"], bool)
    for diff in answer["diffs"][:50]:
        _entity(target, diff, "diff")


def test_the_tree_lists_every_post_deploy_migration_at_a_sha(target):
    _needs(target.compare, "compare range (GITLAB_CONTRACT_COMPARE)")
    hook = target.hook()
    paths = hook.post_deploy_paths(target.project, target.compare[1])
    assert paths and all(p.startswith(("db/post_migrate/", "ee/db/post_migrate/")) for p in paths)
    entries = (
        hook.get_conn()
        .projects.get(target.project, lazy=True)
        .repository_tree(path="db/post_migrate", ref=target.compare[1], per_page=2, page=1)
    )
    for entry in entries:
        _entity(target, entry, "tree_object")
    if target.sandbox:
        assert paths == {p for p in target.sandbox.world.commit(target.sandbox.world.project(APP), NEW_SHA)["files"]
                         if p.startswith(("db/post_migrate/", "ee/db/post_migrate/"))}  # fmt: skip


def test_issues_carry_the_confidential_flag(target):
    _needs(target.issues_project, "issues project (GITLAB_CONTRACT_ISSUES_PROJECT)")
    gl = target.hook().get_conn()
    for issue in gl.projects.get(target.issues_project, lazy=True).issues.list(per_page=5, page=1):
        _entity(target, issue.asdict(), "issue")
        assert isinstance(issue.confidential, bool)


def test_the_admin_answer_is_an_object(target):
    _needs(target.admin_database, "admin database (GITLAB_CONTRACT_ADMIN_DATABASE)")
    gl = target.hook().get_conn()
    answer = gl.http_get("/admin/migrations/pending", query_data={"database": target.admin_database})
    _entity(target, answer, "admin_pending_migrations")
    assert answer["total_pending"] == len(answer["pending_migrations"])
    for item in answer["pending_migrations"]:
        _entity(target, item, "pending_migration")


def test_the_token_knows_its_user_role_and_scopes(target):
    hook = target.hook()
    me = hook.current_user()
    assert me["username"] and isinstance(me.get("is_admin", False), bool)
    assert hook.access_level(target.project) >= 20 or me.get("is_admin"), "the bot needs Reporter here"
    ok, message = hook.test_connection()
    assert ok and target.token not in message


def test_variables_of_own_pipelines_are_readable(target):
    _needs(target.pipeline_project, "pipeline project (GITLAB_CONTRACT_PIPELINE_PROJECT)")
    hook = target.hook()
    created = hook.create_pipeline(target.pipeline_project, target.pipeline_ref, {"PDM_CONTRACT": "own"})
    try:
        gl = hook.get_conn()
        variables = gl.http_get(
            f"/projects/{target.pipeline_project.replace('/', '%2F')}/pipelines/{created.id}/variables"
        )
        for variable in variables:
            _entity(target, variable, "pipeline_variable")
        assert {v["key"]: v["value"] for v in variables}.get("PDM_CONTRACT") == "own"
    finally:
        hook.cancel_pipeline(target.pipeline_project, created.id)


# Every endpoint and fact of the table has a contract test here (or, for what a real GitLab cannot be made to
# do, in test_hook_fidelity.py / tests/sandbox/test_roles.py against the sandbox).
COVERAGE = {
    "version": ["test_the_token_knows_its_user_role_and_scopes"],
    "current_user": ["test_the_token_knows_its_user_role_and_scopes"],
    "token_self": ["test_the_token_knows_its_user_role_and_scopes"],
    "get_project": ["test_the_token_knows_its_user_role_and_scopes"],
    "list_deployments": ["test_deployments_have_no_finished_at_and_gitlabs_fields"],
    "get_deployment": ["test_a_pdm_run_recorded_as_a_db_deployment_moves_the_rollback_line"],
    "create_deployment": ["test_a_pdm_run_recorded_as_a_db_deployment_moves_the_rollback_line"],
    "update_deployment": ["test_a_pdm_run_recorded_as_a_db_deployment_moves_the_rollback_line"],
    "compare": [
        "test_compare_shape_and_its_truncation_flag",
        "test_compare_yields_post_deploy_migrations_readable_at_the_new_sha",
    ],
    "tree": ["test_the_tree_lists_every_post_deploy_migration_at_a_sha"],
    "raw_file": ["test_compare_yields_post_deploy_migrations_readable_at_the_new_sha"],
    "list_pipelines": ["test_pipelines_use_gitlabs_statuses_and_shapes"],
    "get_pipeline": ["test_pipeline_create_find_active_status_and_cancel"],
    "pipeline_variables": ["test_variables_of_own_pipelines_are_readable"],
    "create_pipeline": ["test_pipeline_create_find_active_status_and_cancel"],
    "trigger_pipeline": ["test_pipeline_with_a_trigger_token"],
    "cancel_pipeline": ["test_pipeline_create_find_active_status_and_cancel"],
    "list_issues": [
        "test_issues_carry_the_confidential_flag",
        "test_blocking_issues_are_open_and_carry_a_blocking_label",
    ],
    "admin_pending_migrations": [
        "test_the_admin_answer_is_an_object",
        "test_admin_pending_migrations_are_sorted_versions",
    ],
    "deployment_finished_time": [
        "test_latest_successful_deployment_is_a_finished_success_of_that_environment"
    ],
    "deployment_updated_after_inclusive": ["test_roles.py::test_deployments_updated_after_is_inclusive"],
    "ci_deployment_not_updatable": ["test_roles.py::test_deployment_refs_and_ci_deployments"],
    "compare_truncates": [
        "test_hook_fidelity.py::test_truncated_compare_falls_back_to_the_tree_and_misses_nothing"
    ],
    "pipeline_variables_role": [
        "test_roles.py::test_pipeline_variables_only_for_maintainers_and_the_triggerer"
    ],
    "pipeline_variables_minimum_role": ["test_roles.py::test_the_pipeline_variables_minimum_role"],
    "canceling_status": ["test_pipeline_create_find_active_status_and_cancel"],
    "confidential_issues_hidden": [
        "test_roles.py::test_confidential_issues_are_silently_absent_below_reporter"
    ],
    "retry_after_outside_timeout": [
        "test_hook_fidelity.py::test_a_long_retry_after_fails_the_call_within_its_budget"
    ],
}


def test_every_endpoint_and_fact_of_the_table_is_covered():
    import pathlib

    from include.sandbox import api_table

    ids = {row["id"] for row in api_table.endpoints()} | {fact["id"] for fact in api_table.table()["facts"]}
    assert set(COVERAGE) == ids
    here = pathlib.Path(__file__).parent
    for names in COVERAGE.values():
        for name in names:
            file, _, test = name.rpartition("::")
            source = (
                (here / file if file else pathlib.Path(__file__))
                if file != "test_roles.py"
                else (here.parent / "sandbox" / file)
            )
            assert f"def {test}(" in source.read_text(), name
