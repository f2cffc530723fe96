"""Pipelines over sandbox time: create, trigger, progress, record the db/<env> deployment, cancel, retry."""

from __future__ import annotations

import urllib.request

import gitlab
import pytest

from tests.sandbox.conftest import APP, DEPLOYED, RELEASE_TOOLS, TRIGGER, client

PDM_VARIABLES = {"PDM_ENVIRONMENT": "gprd", "PDM_SHA": DEPLOYED, "PDM_PACKAGE": "17.7.202611200620"}


def _create(gl, **variables):
    project = gl.projects.get(RELEASE_TOOLS, lazy=True)
    return project.pipelines.create(
        {
            "ref": "master",
            "variables": [
                {"key": k, "value": v, "variable_type": "env_var"}
                for k, v in {**PDM_VARIABLES, **variables}.items()
            ],
        }
    )


def test_pipeline_lifecycle_records_the_db_deployment(sandbox, gl):
    created = _create(gl)
    assert created.status == "pending" and created.source == "api" and created.started_at is None
    assert created.web_url == f"{sandbox.url}/gitlab-org/release/tools/-/pipelines/{created.id}"
    recorded = sandbox.deployments(APP, environment="db/gprd")[-1]
    assert (recorded["status"], recorded["sha"], recorded["ref"]) == (
        "running",
        DEPLOYED,
        "17.7.202611200620",
    )
    assert recorded["deployable"]["pipeline"]["id"] == created.id

    sandbox.advance_clock(1.5)
    created.refresh()
    assert created.status == "running" and created.started_at and created.finished_at is None
    app = gl.projects.get(APP, lazy=True)
    assert [d.sha for d in app.deployments.list(environment="db/gprd", status="running", get_all=True)] == [
        DEPLOYED
    ]

    sandbox.advance_clock(3)
    created.refresh()
    assert created.status == "success" and created.duration == 3 and created.finished_at
    latest = app.deployments.list(
        environment="db/gprd", status="success", order_by="finished_at", sort="desc", per_page=1, page=1
    )[0]
    # recorded by the pipeline's job: the finish time is the job's (GitLab's deployment has no finished_at)
    assert latest.sha == DEPLOYED and latest.deployable["finished_at"] == created.finished_at
    assert app.deployments.list(environment="db/gprd", status="running", get_all=True) == []


def test_failed_pipeline_records_a_failed_deployment(sandbox, gl):
    sandbox.set_pipeline_behaviour(RELEASE_TOOLS, result="failed", running_seconds=10)
    created = _create(gl)
    sandbox.advance_clock(12)
    created.refresh()
    assert created.status == "failed" and created.duration == 10
    assert sandbox.deployments(APP, environment="db/gprd")[-1]["status"] == "failed"
    created.retry()
    created.refresh()
    assert created.status == "pending"
    assert sandbox.deployments(APP, environment="db/gprd")[-1]["status"] == "running"


def test_variables_are_kept_and_listed(sandbox, gl):
    created = _create(gl, EXTRA="1")
    variables = (
        gl.projects.get(RELEASE_TOOLS, lazy=True)
        .pipelines.get(created.id, lazy=True)
        .variables.list(get_all=True)
    )
    assert {v.key: v.value for v in variables} == {**PDM_VARIABLES, "EXTRA": "1"}
    assert {v.variable_type for v in variables} == {"env_var"}
    assert sandbox.created_pipelines(RELEASE_TOOLS)[0]["variables"]["EXTRA"] == "1"


def test_cancel_a_created_and_a_scenario_pipeline(sandbox, gl):
    project = gl.projects.get(RELEASE_TOOLS, lazy=True)
    created = _create(gl)
    sandbox.advance_clock(2)
    created.cancel()
    created.refresh()
    assert created.status == "canceling" and created.finished_at is None  # after_script runs meanwhile
    sandbox.advance_clock(1)
    created.refresh()
    assert created.status == "canceled" and created.finished_at
    sandbox.advance_clock(60)
    created.refresh()
    assert created.status == "canceled"
    assert sandbox.deployments(APP, environment="db/gprd")[-1]["status"] == "canceled"
    running = project.pipelines.get(900)
    assert running.status == "running"
    running.cancel()
    assert project.pipelines.get(900).status == "canceling"
    sandbox.advance_clock(1)
    assert project.pipelines.get(900).status == "canceled"
    project.pipelines.get(900, lazy=True).retry()
    assert project.pipelines.get(900).status == "pending"


def test_list_filters_and_order(sandbox, gl):
    project = gl.projects.get(RELEASE_TOOLS, lazy=True)
    first, second = _create(gl), _create(gl)
    assert [p.id for p in project.pipelines.list(get_all=True)] == [second.id, first.id, 900]  # id desc
    assert [p.id for p in project.pipelines.list(sort="asc", get_all=True)] == [900, first.id, second.id]
    assert [p.id for p in project.pipelines.list(status="running", get_all=True)] == [900]
    assert {p.id for p in project.pipelines.list(source="api", status="pending", get_all=True)} == {
        first.id,
        second.id,
    }
    assert project.pipelines.list(ref="not-master", get_all=True) == []
    listed = project.pipelines.list(status="running", get_all=True)[0].asdict()
    assert "started_at" not in listed and listed["web_url"].endswith(
        "/-/pipelines/900"
    )  # GitLab's short shape
    sandbox.advance_clock(10)
    done = project.pipelines.list(scope="finished", get_all=True)
    assert {p.id for p in done} == {first.id, second.id}
    with pytest.raises(gitlab.GitlabListError):
        project.pipelines.list(order_by="duration", get_all=True)


def test_trigger_token(sandbox):
    # A trigger needs no personal token: the trigger token is the credential.
    anonymous = gitlab.Gitlab(sandbox.url, retry_transient_errors=True)
    project = anonymous.projects.get(RELEASE_TOOLS, lazy=True)
    created = project.trigger_pipeline("master", TRIGGER, variables=PDM_VARIABLES)
    assert created.source == "trigger" and created.status == "pending"
    assert sandbox.created_pipelines(RELEASE_TOOLS)[0]["variables"] == PDM_VARIABLES
    with pytest.raises(gitlab.GitlabCreateError) as error:
        project.trigger_pipeline("master", "wrong-trigger-token")
    assert error.value.response_code == 404
    form = urllib.request.Request(
        f"{sandbox.url}/api/v4/projects/13083/trigger/pipeline",
        data=f"token={TRIGGER}&ref=master&variables[PDM_ENVIRONMENT]=gstg".encode(),
        method="POST",
    )
    with urllib.request.urlopen(form, timeout=5) as response:
        assert response.status == 201
    assert sandbox.created_pipelines(RELEASE_TOOLS)[-1]["variables"] == {"PDM_ENVIRONMENT": "gstg"}


def test_trigger_token_from_the_environment(sandbox, monkeypatch):
    monkeypatch.setenv("SANDBOX_GITLAB_TRIGGER_TOKEN", "env-trigger-token")
    project = client(sandbox).projects.get(RELEASE_TOOLS, lazy=True)
    assert project.trigger_pipeline("master", "env-trigger-token").id


def test_create_needs_a_ref(gl):
    with pytest.raises(gitlab.GitlabHttpError) as error:
        gl.http_post("/projects/13083/pipeline", post_data={"variables": []})
    assert error.value.response_code == 400 and "ref is missing" in error.value.error_message
    with pytest.raises(gitlab.GitlabCreateError) as error:  # the app repository knows its refs
        gl.projects.get(APP, lazy=True).pipelines.create({"ref": "no-such-branch"})
    assert error.value.response_code == 400


def test_pipeline_web_url_opens_a_page(sandbox, gl):
    created = _create(gl)
    with urllib.request.urlopen(created.web_url, timeout=5) as response:
        page = response.read().decode()
    assert f"pipeline #{created.id}" in page and "PDM_SHA=" + DEPLOYED in page and "pending" in page
