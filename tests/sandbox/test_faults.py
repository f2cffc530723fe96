"""Each fault kind as python-gitlab (retry_transient_errors=True) experiences it over real HTTP."""

from __future__ import annotations

import time

import gitlab
import pytest
import requests

from tests.sandbox.conftest import APP, RELEASE_TOOLS, client

DEPLOYMENTS = "/api/v4/projects/:id/deployments"


def _deployments(gl):
    return gl.projects.get(APP, lazy=True).deployments.list(get_all=True)


def test_5xx_is_retried_then_succeeds(sandbox, gl):
    sandbox.inject_fault("/deployments$", "status", status=502, count=2)
    assert len(_deployments(gl)) == 4
    assert sandbox.request_count("GET", DEPLOYMENTS) == 3


def test_5xx_without_retries_surfaces(sandbox):
    sandbox.inject_fault("/deployments$", "status", status=503, count=1)
    with pytest.raises(gitlab.GitlabListError) as error:
        _deployments(client(sandbox, retry_transient_errors=False))
    assert error.value.response_code == 503


def test_rate_limit_honours_retry_after(sandbox, gl):
    sandbox.inject_fault("/deployments$", "rate_limit", retry_after=1, count=1)
    started = time.monotonic()
    assert len(_deployments(gl)) == 4
    assert time.monotonic() - started >= 1.0
    assert sandbox.request_count("GET", DEPLOYMENTS) == 2


def test_dropped_connection_is_retried_on_reads(sandbox, gl):
    sandbox.inject_fault("/deployments$", "drop", count=1)
    assert len(_deployments(gl)) == 4
    assert sandbox.request_count("GET", DEPLOYMENTS) == 2


def test_dropped_connection_without_retries_is_a_connection_error(sandbox):
    sandbox.inject_fault("/deployments$", "drop", count=1)
    with pytest.raises(requests.ConnectionError):
        _deployments(client(sandbox, retry_transient_errors=False))


def test_slow_answer_times_out_then_the_retry_succeeds(sandbox):
    sandbox.inject_fault("/deployments$", "slow", delay_seconds=1.5, count=1)
    started = time.monotonic()
    assert len(_deployments(client(sandbox, timeout=0.5))) == 4
    assert 0.5 <= time.monotonic() - started < 1.5


def test_slow_answer_within_the_timeout_is_just_late(sandbox, gl):
    sandbox.inject_fault("/deployments$", "slow", delay_seconds=0.5, count=1)
    started = time.monotonic()
    assert len(_deployments(gl)) == 4 and time.monotonic() - started >= 0.5


def test_malformed_json_surfaces_as_a_parsing_error(sandbox, gl):
    sandbox.inject_fault("/deployments$", "malformed_json", count=1)
    with pytest.raises(gitlab.GitlabParsingError):
        _deployments(gl)
    assert len(_deployments(gl)) == 4  # only the next N requests fail


def test_fault_matches_method_and_path_only(sandbox, gl):
    sandbox.inject_fault("/pipeline$", "status", status=500, method="POST", count=5)
    assert len(_deployments(gl)) == 4
    assert gl.projects.get(RELEASE_TOOLS, lazy=True).pipelines.list(get_all=True)
    sandbox.clear_faults()
    assert gl.projects.get(RELEASE_TOOLS, lazy=True).pipelines.create({"ref": "master"}).id


@pytest.mark.parametrize("kind", ["status", "drop", "malformed_json"])
def test_after_success_creates_the_pipeline_once_though_the_client_saw_an_error(sandbox, gl, kind):
    sandbox.inject_fault("/pipeline$", kind, status=502, method="POST", count=1, after_success=True)
    project = gl.projects.get(RELEASE_TOOLS, lazy=True)
    with pytest.raises((gitlab.GitlabError, requests.ConnectionError)):
        project.pipelines.create({"ref": "master"}, retry_transient_errors=False)
    assert len(sandbox.created_pipelines(RELEASE_TOOLS)) == 1


def test_after_success_with_client_retries_creates_twice(sandbox, gl):
    # Why the product's hook never retries a create: GitLab accepted the first POST.
    sandbox.inject_fault("/pipeline$", "status", status=502, method="POST", count=1, after_success=True)
    gl.projects.get(RELEASE_TOOLS, lazy=True).pipelines.create({"ref": "master"})
    assert len(sandbox.created_pipelines(RELEASE_TOOLS)) == 2


def test_bad_fault_is_refused(sandbox):
    with pytest.raises(ValueError, match="fault kind 'explode'"):
        sandbox.inject_fault("/x", "explode")
    with pytest.raises(ValueError, match="not a regular expression"):
        sandbox.inject_fault("(", "status")
