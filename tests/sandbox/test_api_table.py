"""The sandbox answers exactly what GitLab's entities expose (include/sandbox/gitlab_api.yaml), no more.

Each entity's `fields` is what every supported GitLab version answers; the sandbox must answer exactly those
(for `partial` entities, a subset: GitLab's issue has ~40 fields, the sandbox never invents one).
"""

from __future__ import annotations

from typing import Any

import pytest

from include import pipelines
from include.deployments import ACTIVE_DEPLOYMENT_STATUSES, FINISHED_DEPLOYMENT_STATUSES
from include.sandbox import api_table
from include.sandbox.gitlab_world import DEPLOYMENT_STATUSES, PIPELINE_STATUSES
from tests.sandbox.conftest import APP, BASE, DEPLOYED, MASTER, PRODUCTION, RELEASE_TOOLS

pytestmark = pytest.mark.integration


def _conforms(answer: dict[str, Any], entity: str) -> None:
    expected = set(api_table.entity_fields(entity))
    got = set(answer)
    if api_table.entity_is_partial(entity):
        assert got <= expected, f"{entity}: fields GitLab does not have: {sorted(got - expected)}"
    else:
        assert got == expected, f"{entity}: extra {sorted(got - expected)}, missing {sorted(expected - got)}"


def test_every_table_row_cites_gitlab_and_names_a_role():
    for name, entity in api_table.table()["entities"].items():
        assert entity.get("source") and entity.get("fields"), name
    for row in api_table.endpoints():
        assert row.get("source") and row.get("role") and row.get("request"), row["id"]
        assert row.get("entity") in (None, *api_table.table()["entities"]), row["id"]
    for fact in api_table.table()["facts"]:
        assert fact.get("source") and fact.get("text"), fact["id"]


def test_status_sets_are_gitlabs():
    assert set(PIPELINE_STATUSES) == set(api_table.statuses("pipeline"))
    assert set(pipelines.ALL_STATUSES) == set(api_table.statuses("pipeline"))
    assert set(pipelines.HOLDING_STATUSES) == set(api_table.statuses("pipeline", "holding"))
    assert pipelines.FINISHED_STATUSES == set(api_table.statuses("pipeline", "completed"))
    assert {"canceling", "waiting_for_callback"} <= set(pipelines.HOLDING_STATUSES)
    assert set(DEPLOYMENT_STATUSES) == set(api_table.statuses("deployment"))
    assert set(ACTIVE_DEPLOYMENT_STATUSES) | set(FINISHED_DEPLOYMENT_STATUSES) <= set(DEPLOYMENT_STATUSES)


def test_deployments_api_created_and_ci_created(sandbox, gl):
    sandbox.add_deployment(
        APP, environment="gprd", sha=DEPLOYED, ref="17.7.ci", status="success", created_by="ci"
    )
    project = gl.projects.get(APP, lazy=True)
    listed = [d.asdict() for d in project.deployments.list(environment="gprd", get_all=True)]
    api_made = next(d for d in listed if d["deployable"] is None)
    ci_made = next(d for d in listed if d["deployable"] is not None)
    for deployment in (api_made, ci_made, project.deployments.get(ci_made["id"]).asdict()):
        _conforms(deployment, "deployment")
        _conforms(deployment["environment"], "environment_basic")
        _conforms(deployment["user"], "user_basic")
    _conforms(ci_made["deployable"], "job")
    _conforms(ci_made["deployable"]["pipeline"], "pipeline_basic")
    assert ci_made["deployable"]["finished_at"]


def test_pipelines_list_single_and_variables(sandbox, gl):
    project = gl.projects.get(RELEASE_TOOLS, lazy=True)
    created = project.pipelines.create({"ref": "master", "variables": [{"key": "A", "value": "1"}]})
    _conforms(created.asdict(), "pipeline")
    _conforms(project.pipelines.get(900).asdict(), "pipeline")
    _conforms(created.asdict()["user"], "user_basic")
    for item in project.pipelines.list(get_all=True):
        _conforms(item.asdict(), "pipeline_list_item")
    for variable in gl.http_get(f"/projects/13083/pipelines/{created.id}/variables"):
        _conforms(variable, "pipeline_variable")


def test_compare_diffs_tree_and_project(gl):
    project = gl.projects.get(APP, lazy=True)
    answer = project.repository_compare(BASE, MASTER)
    _conforms(answer, "compare")
    assert answer["diffs"]
    for diff in answer["diffs"]:
        _conforms(diff, "diff")
    for entry in project.repository_tree(path="db/post_migrate", ref=BASE, get_all=True):
        _conforms(entry, "tree_object")
    _conforms(gl.http_get("/projects/278964"), "project")


def test_issues_admin_and_user(gl):
    for issue in gl.projects.get(PRODUCTION, lazy=True).issues.list(get_all=True):
        _conforms(issue.asdict(), "issue")
        _conforms(issue.asdict()["author"], "user_basic")
    pending = gl.http_get("/admin/migrations/pending", query_data={"database": "main"})
    _conforms(pending, "admin_pending_migrations")
    for item in pending["pending_migrations"]:
        _conforms(item, "pending_migration")
    _conforms(gl.http_get("/user"), "user_self")
    assert set(gl.http_get("/personal_access_tokens/self")) == set(api_table.endpoint("token_self")["fields"])
