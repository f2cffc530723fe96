"""The sandbox's role model: tokens with a user, scopes and a role per project, refused as GitLab refuses."""

from __future__ import annotations

from typing import Any

import gitlab
import pytest

from include.sandbox.gitlab_server import SandboxGitLab
from include.sandbox.gitlab_world import ScenarioError
from tests.sandbox.conftest import APP, BASE, DEPLOYED, PRODUCTION, RELEASE_TOOLS, TOKEN, client, scenario

pytestmark = pytest.mark.integration

GUEST, REPORTER, DEVELOPER, MAINTAINER = (
    "tok-guest-1",
    "tok-reporter-2",
    "tok-developer-3",
    "tok-maintainer-4",
)
OUTSIDER, ADMIN_NO_MODE, READER = "tok-outsider-5", "tok-admin-nomode-6", "tok-readapi-7"


def _role_world(**release_tools: Any) -> dict[str, Any]:
    world = scenario()
    everywhere = [APP, PRODUCTION, RELEASE_TOOLS]
    world["tokens"] = [
        {"token": GUEST, "username": "guest-bot", "roles": dict.fromkeys(everywhere, "guest")},
        {"token": REPORTER, "username": "reporter-bot", "roles": dict.fromkeys(everywhere, "reporter")},
        {"token": DEVELOPER, "username": "developer-bot", "roles": dict.fromkeys(everywhere, "developer")},
        {"token": MAINTAINER, "username": "maintainer-bot", "roles": dict.fromkeys(everywhere, "maintainer")},
        {"token": OUTSIDER, "username": "outsider", "roles": {}},
        {"token": ADMIN_NO_MODE, "username": "admin-nomode", "admin": True, "admin_mode": False},
        {"token": READER, "username": "reader", "scopes": ["read_api"], "default_role": "maintainer"},
    ]
    world["projects"][2].update(release_tools)
    world["projects"][1]["issues"].append(
        {"iid": 9, "title": "Secret incident", "labels": ["incident"], "confidential": True}
    )
    return world


@pytest.fixture
def roles() -> Any:
    with SandboxGitLab(_role_world(), token=TOKEN) as server:
        yield server


def _status(call) -> int:
    try:
        call()
    except gitlab.exceptions.GitlabError as exc:
        return int(exc.response_code)
    return 200


def test_reads_need_reporter_and_membership(roles):
    def deployments(token):
        return lambda: client(roles, token).projects.get(APP, lazy=True).deployments.list(get_all=True)

    assert _status(deployments(OUTSIDER)) == 404  # private project: a non-member does not see it at all
    assert _status(deployments(GUEST)) == 403
    assert _status(deployments(REPORTER)) == 200
    compare = client(roles, GUEST).projects.get(APP, lazy=True).repository_compare
    assert _status(lambda: compare(BASE, DEPLOYED)) == 403
    assert (
        _status(
            lambda: client(roles, REPORTER).projects.get(APP, lazy=True).repository_compare(BASE, DEPLOYED)
        )
        == 200
    )
    assert client(roles, DEVELOPER).projects.get(APP).permissions["project_access"]["access_level"] == 30


def test_writes_need_developer_and_the_api_scope(roles):
    def create(token):
        return lambda: (
            client(roles, token).projects.get(RELEASE_TOOLS, lazy=True).pipelines.create({"ref": "master"})
        )

    assert _status(create(REPORTER)) == 403
    assert _status(create(DEVELOPER)) == 200
    with pytest.raises(gitlab.GitlabCreateError) as error:
        create(READER)()
    assert error.value.response_code == 403 and error.value.error_message == "insufficient_scope"


def test_pipeline_variables_only_for_maintainers_and_the_triggerer(roles):
    developer = client(roles, DEVELOPER).projects.get(RELEASE_TOOLS, lazy=True)
    own = developer.pipelines.create({"ref": "master", "variables": [{"key": "K", "value": "v"}]})
    assert [v.key for v in developer.pipelines.get(own.id, lazy=True).variables.list(get_all=True)] == ["K"]
    other = developer.pipelines.get(900, lazy=True).variables  # created by sandbox-bot
    assert _status(lambda: other.list(get_all=True)) == 403
    maintainer = client(roles, MAINTAINER).projects.get(RELEASE_TOOLS, lazy=True)
    assert (
        maintainer.pipelines.get(900, lazy=True).variables.list(get_all=True)[0].key == "DEPLOY_ENVIRONMENT"
    )
    mine = developer.pipelines.list(username="developer-bot", get_all=True)
    assert [p.id for p in mine] == [own.id]


@pytest.mark.parametrize(
    ("minimum", "developer", "maintainer"),
    [("developer", 201, 201), ("maintainer", 400, 201), ("owner", 400, 400), ("no_one_allowed", 400, 400)],
)
def test_the_pipeline_variables_minimum_role(minimum, developer, maintainer):
    with SandboxGitLab(_role_world(pipeline_variables_minimum_role=minimum), token=TOKEN) as server:
        for token, expected in ((DEVELOPER, developer), (MAINTAINER, maintainer)):
            project = client(server, token).projects.get(RELEASE_TOOLS, lazy=True)
            try:
                project.pipelines.create({"ref": "master", "variables": [{"key": "K", "value": "v"}]})
                got, message = 201, ""
            except gitlab.GitlabCreateError as exc:
                got, message = exc.response_code, str(exc.error_message)
            assert got == expected, (token, minimum)
            if got == 400:
                assert "Insufficient permissions to set pipeline variables" in message
            project.pipelines.create({"ref": "master"})  # without variables the setting does not apply
        shown = client(server, MAINTAINER).http_get(f"/projects/{RELEASE_TOOLS.replace('/', '%2F')}")
        assert shown["ci_pipeline_variables_minimum_override_role"] == minimum
        assert "ci_pipeline_variables_minimum_override_role" not in client(server, DEVELOPER).http_get(
            f"/projects/{RELEASE_TOOLS.replace('/', '%2F')}"
        )


def test_confidential_issues_are_silently_absent_below_reporter(roles):
    def titles(token):
        issues = (
            client(roles, token).projects.get(PRODUCTION, lazy=True).issues.list(state="opened", get_all=True)
        )
        return {i.title for i in issues}

    assert "Secret incident" not in titles(GUEST)  # no error: simply not there
    assert "Secret incident" in titles(REPORTER)


def test_admin_endpoint_needs_admin_mode(roles):
    def pending(token):
        return lambda: client(roles, token).http_get("/admin/migrations/pending")

    assert _status(pending(ADMIN_NO_MODE)) == 403
    assert _status(pending(MAINTAINER)) == 403
    assert _status(pending(TOKEN)) == 200


def test_deployment_refs_and_ci_deployments(roles):
    project = client(roles, DEVELOPER).projects.get(APP, lazy=True)
    with pytest.raises(gitlab.GitlabCreateError) as error:
        project.deployments.create(
            {
                "environment": "db/gprd",
                "sha": DEPLOYED,
                "ref": "no-such-ref",
                "tag": False,
                "status": "running",
            }
        )
    assert error.value.response_code == 400 and "does not exist" in str(error.value.error_message)
    ci = roles.add_deployment(
        APP, environment="gprd", sha=DEPLOYED, ref="17.7.ci", status="running", created_by="ci"
    )
    with pytest.raises(gitlab.GitlabUpdateError) as refused:
        deployment = project.deployments.get(ci["id"], lazy=True)
        deployment.status = "success"
        deployment.save()
    assert refused.value.response_code == 403 and "created using GitLab CI" in str(
        refused.value.error_message
    )


def test_compare_is_cut_at_the_diff_limits_and_the_tree_is_complete():
    world = scenario()
    world["diff_limits"] = {"max_files": 2, "max_lines": 50000}
    app = world["projects"][0]
    app["commits"].append(
        {
            "sha": "d" * 40,
            "files_from": app["commits"][1]["sha"],
            "add": {f"db/post_migrate/2026120{i}000000_m{i}.rb": f"class M{i}\nend\n" for i in range(5)},
        }
    )
    with SandboxGitLab(world, token=TOKEN) as server:
        project = client(server).projects.get(APP, lazy=True)
        cut = project.repository_compare(DEPLOYED, "d" * 40)
        assert cut["compare_timeout"] is True and len(cut["diffs"]) == 2
        whole = project.repository_compare(DEPLOYED, DEPLOYED)
        assert whole["compare_timeout"] is False
        tree = project.repository_tree(path="db/post_migrate", ref="d" * 40, get_all=True, per_page=2)
        assert sum(e["path"].startswith("db/post_migrate/2026120") for e in tree) == 5
        assert _status(lambda: project.repository_tree(path="nope", ref=BASE, get_all=True)) == 404


def test_scenario_tokens_are_validated():
    world = scenario()
    world["tokens"] = [{"token": "x", "username": "u", "roles": {APP: "superuser"}}]
    with pytest.raises(ScenarioError, match=r"tokens\[0\]\.roles"):
        SandboxGitLab(world, token=TOKEN)


def test_deployments_updated_after_is_inclusive(roles):
    """DeploymentsFinder compares updated_after with >=: a deployment updated exactly at the bound is kept."""
    added = roles.add_deployment(APP, environment="gprd", sha=DEPLOYED, ref="17.7.z", status="success")
    project = client(roles).projects.get(APP, lazy=True)
    found = project.deployments.list(order_by="updated_at", updated_after=added["updated_at"], get_all=True)
    assert added["id"] in [d.id for d in found]
