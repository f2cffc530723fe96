"""The sandbox's own HTTP surface: auth, pagination headers, the control API and each fault kind."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import pytest

from include.sandbox.gitlab_server import SandboxGitLab
from tests.support.scenarios import APP, RELEASE_TOOLS, world

TOKEN = "sandbox-http-token-11223344"


@pytest.fixture
def sandbox():
    server = SandboxGitLab(world(), token=TOKEN).start()
    yield server
    server.stop()


def call(sandbox, path, data=None, method=None, token=TOKEN):
    request = urllib.request.Request(
        f"{sandbox.url}{path}", data=json.dumps(data).encode() if data is not None else None, method=method
    )
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("PRIVATE-TOKEN", token)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def test_auth_and_not_found(sandbox):
    for token, code in ((None, 401), ("wrong", 401)):
        with pytest.raises(urllib.error.HTTPError) as error:
            call(sandbox, "/api/v4/projects/1", token=token)
        assert error.value.code == code and json.loads(error.value.read()) == {"message": "401 Unauthorized"}
    with pytest.raises(urllib.error.HTTPError) as error:
        call(sandbox, "/api/v4/projects/999999")
    assert error.value.code == 404 and b"404 Project Not Found" in error.value.read()


def test_pagination_headers(sandbox):
    status, headers, body = call(
        sandbox, "/api/v4/projects/gitlab-org%2Fgitlab/deployments?per_page=2&page=1"
    )
    assert status == 200 and len(json.loads(body)) == 2
    assert (headers["X-Page"], headers["X-Per-Page"], headers["X-Total"], headers["X-Next-Page"]) == (
        "1",
        "2",
        "4",
        "2",
    )
    assert 'rel="next"' in headers["Link"] and 'rel="last"' in headers["Link"]


def test_control_api_moves_the_world(sandbox):
    call(
        sandbox,
        "/-/sandbox/deployments",
        {"project": APP, "environment": "gprd", "sha": "9" * 40, "ref": "x", "status": "running"},
        "POST",
    )
    call(
        sandbox,
        "/-/sandbox/issues",
        {"project": "gitlab-com/gl-infra/production", "title": "API down", "labels": ["severity::1"]},
        "POST",
    )
    call(sandbox, "/-/sandbox/pipeline_behaviour", {"project": RELEASE_TOOLS, "result": "failed"}, "POST")
    _, _, body = call(sandbox, "/-/sandbox/state")
    state = json.loads(body)
    assert any(d["status"] == "running" for d in state["projects"][APP]["deployments"])
    assert state["projects"]["gitlab-com/gl-infra/production"]["issues"][0]["labels"] == ["severity::1"]
    before = state["now"]
    _, _, body = call(sandbox, "/-/sandbox/clock", {"advance_seconds": 3600}, "POST")
    assert json.loads(body)["now"] > before


@pytest.mark.parametrize("kind", ["status", "rate_limit", "slow", "drop", "malformed_json"])
def test_each_fault_kind(sandbox, kind):
    call(
        sandbox,
        "/-/sandbox/faults",
        {
            "path": "/deployments",
            "kind": kind,
            "status": 503,
            "retry_after": 2,
            "delay_seconds": 1,
            "count": 1,
        },
        "POST",
    )
    started = time.monotonic()
    path = "/api/v4/projects/278964/deployments"
    if kind == "status":
        with pytest.raises(urllib.error.HTTPError) as error:
            call(sandbox, path)
        assert error.value.code == 503
    elif kind == "rate_limit":
        with pytest.raises(urllib.error.HTTPError) as error:
            call(sandbox, path)
        assert error.value.code == 429 and error.value.headers["Retry-After"] == "2"
    elif kind == "slow":
        assert call(sandbox, path)[0] == 200 and time.monotonic() - started >= 1
    elif kind == "drop":
        with pytest.raises((urllib.error.URLError, ConnectionError, socket.error)):
            call(sandbox, path)
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(call(sandbox, path)[2])
    assert call(sandbox, path)[0] == 200  # only the next N requests fail
