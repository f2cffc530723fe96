"""Auth (401/403, every header GitLab accepts) and GitLab's pagination, as python-gitlab sees them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import gitlab
import pytest

from tests.sandbox.conftest import APP, READ_ONLY, RELEASE_TOOLS, TOKEN, USER, client


def test_auth_with_the_admin_token(sandbox, gl):
    gl.auth()
    assert gl.user.username == "sandbox-bot" and gl.user.is_admin is True
    assert gl.version()[0] == "17.7.0-sandbox"


@pytest.mark.parametrize("token", ["", "not-a-token"])
def test_missing_or_wrong_token_is_401(sandbox, token):
    with pytest.raises(gitlab.GitlabAuthenticationError) as error:
        client(sandbox, token=token).projects.get(APP)
    assert error.value.response_code == 401
    assert json.loads(error.value.response_body) == {"message": "401 Unauthorized"}


def test_bearer_and_job_token_headers_are_accepted(sandbox):
    assert gitlab.Gitlab(sandbox.url, oauth_token=TOKEN).projects.get(APP).id == 278964
    assert gitlab.Gitlab(sandbox.url, job_token=TOKEN).projects.get(APP).id == 278964


def test_read_only_token_reads_but_cannot_write(sandbox):
    reader = client(sandbox, token=READ_ONLY)
    project = reader.projects.get(RELEASE_TOOLS)
    with pytest.raises(gitlab.GitlabCreateError) as error:
        project.pipelines.create({"ref": "master"})
    # GitLab answers a read_api token's write with insufficient_scope (not the plain 403 of a role refusal)
    assert error.value.response_code == 403 and error.value.error_message == "insufficient_scope"
    assert sandbox.created_pipelines(RELEASE_TOOLS) == []


def test_admin_api_needs_an_admin(sandbox):
    user = client(sandbox, token=USER)
    user.auth()
    assert user.user.is_admin is False
    with pytest.raises(gitlab.GitlabHttpError) as error:
        user.http_get("/admin/migrations/pending", query_data={"database": "main"})
    assert error.value.response_code == 403


def test_control_api_needs_the_admin_token(sandbox):
    request = urllib.request.Request(f"{sandbox.url}/-/sandbox/state", headers={"PRIVATE-TOKEN": USER})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    assert error.value.code == 403


def test_unknown_project_and_path_are_404(gl):
    with pytest.raises(gitlab.GitlabGetError) as error:
        gl.projects.get("gitlab-org/nope")
    assert error.value.response_code == 404 and error.value.error_message == "404 Project Not Found"
    with pytest.raises(gitlab.GitlabHttpError) as error:
        gl.http_get("/no/such/endpoint")
    assert error.value.response_code == 404


def test_get_all_follows_every_page(sandbox, gl):
    for number in range(41):
        sandbox.add_deployment(
            APP, environment="gstg", sha=f"{number:040x}", ref=f"r{number}", status="success"
        )
    project = gl.projects.get(APP, lazy=True)
    before = sandbox.request_count("GET", "/api/v4/projects/:id/deployments")
    everything = project.deployments.list(environment="gstg", get_all=True)
    assert len(everything) == 43  # 2 from the scenario + 41
    assert [d.id for d in everything] == sorted(d.id for d in everything)  # default: order_by id, asc
    assert sandbox.request_count("GET", "/api/v4/projects/:id/deployments") - before == 3  # 20 + 20 + 3
    assert len(list(project.deployments.list(environment="gstg", iterator=True, per_page=100))) == 43


def test_pagination_headers_are_gitlabs(sandbox, gl):
    for number in range(5):
        sandbox.add_deployment(APP, environment="gstg", sha=f"{number:040x}", ref="r", status="success")
    page = gl.http_list(
        "/projects/278964/deployments",
        iterator=True,
        query_data={"per_page": 3, "page": 2, "environment": "gstg"},
    )
    assert (page.current_page, page.prev_page, page.next_page, page.per_page) == (2, 1, 3, 3)
    assert (page.total, page.total_pages) == (7, 3)
    request = urllib.request.Request(
        f"{sandbox.url}/api/v4/projects/gitlab-org%2Fgitlab/deployments?environment=gstg&per_page=3&page=3",
        headers={"PRIVATE-TOKEN": TOKEN},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        headers, items = response.headers, json.loads(response.read())
    assert len(items) == 1 and headers["X-Next-Page"] == "" and headers["X-Prev-Page"] == "2"
    links = {part.split("; ")[1]: part.split("; ")[0].strip("<> ") for part in headers["Link"].split(", ")}
    assert set(links) == {'rel="prev"', 'rel="first"', 'rel="last"'}
    assert links['rel="first"'].startswith(f"{sandbox.url}/api/v4/projects/gitlab-org%2Fgitlab/deployments?")
    assert "environment=gstg" in links['rel="last"'] and "page=3" in links['rel="last"']


def test_per_page_is_capped_at_100(sandbox, gl):
    for number in range(105):
        sandbox.add_issue("gitlab-com/gl-infra/production", title=f"issue {number}")
    page = gl.http_list("/issues", iterator=True, per_page=500)
    assert page.per_page == 100 and page.total == 109 and page.total_pages == 2
