"""Each read endpoint's JSON shape and filters, and the deployment writes, through python-gitlab."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import gitlab
import pytest

from include.isotime import parse_iso_instant
from tests.sandbox.conftest import APP, BASE, DEPLOYED, INDEX_MIGRATION, MASTER, OLD_MIGRATION, PRODUCTION

GITLAB_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_project_by_id_or_encoded_path(gl):
    by_path, by_id = gl.projects.get(APP), gl.projects.get(278964)
    assert by_path.id == by_id.id == 278964
    assert by_path.path_with_namespace == APP and by_path.default_branch == "master"
    assert by_path.web_url.endswith("/gitlab-org/gitlab")


def test_deployment_shape(gl):
    latest = gl.projects.get(APP, lazy=True).deployments.list(
        environment="gprd", status="success", order_by="finished_at", sort="desc", per_page=1, page=1
    )
    data = latest[0].asdict()
    # API::Entities::Deployment: no finished_at, no tag (gitlab_api.yaml); recorded through the API, so
    # deployable is null and updated_at is the finish time.
    assert set(data) == {
        "id",
        "iid",
        "ref",
        "sha",
        "created_at",
        "updated_at",
        "status",
        "user",
        "environment",
        "deployable",
    }
    assert data["sha"] == DEPLOYED and data["ref"].startswith("17.7.") and data["status"] == "success"
    assert data["environment"]["name"] == "gprd"
    assert isinstance(data["environment"]["id"], int) and data["deployable"] is None
    for key in ("created_at", "updated_at"):
        assert GITLAB_TIME.match(data[key]), key
    finished = parse_iso_instant(data["updated_at"])
    assert timedelta(hours=2, minutes=59) < datetime.now(UTC) - finished < timedelta(hours=3, minutes=1)


def test_deployment_filters_and_order(gl):
    project = gl.projects.get(APP, lazy=True)
    gstg = project.deployments.list(environment="gstg", get_all=True)
    assert [d.status for d in gstg] == ["failed", "running"]
    assert [d.status for d in project.deployments.list(environment="gstg", sort="desc", get_all=True)] == [
        "running",
        "failed",
    ]
    assert [d.sha for d in project.deployments.list(status="running", get_all=True)] == [MASTER]
    by_created = project.deployments.list(order_by="created_at", sort="desc", get_all=True)
    assert [d.environment["name"] for d in by_created] == ["gstg", "gprd", "gstg", "db/gprd"]
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    recent = project.deployments.list(order_by="updated_at", updated_after=since, get_all=True)
    assert [d.environment["name"] for d in recent] == ["gstg"]
    finished = project.deployments.list(
        order_by="finished_at", status="success", finished_after=since, get_all=True
    )
    assert finished == []


@pytest.mark.parametrize(
    "params, message",
    [
        ({"order_by": "finished_at"}, "`finished_at` sort requires"),
        ({"order_by": "id", "updated_after": "2026-01-01T00:00:00Z"}, "`updated_at` filter requires"),
        ({"order_by": "finished_at", "finished_after": "2026-01-01T00:00:00Z"}, "combined with `success`"),
        ({"order_by": "name"}, "order_by does not have a valid value"),
        ({"status": "done"}, "status does not have a valid value"),
    ],
)
def test_deployment_queries_gitlab_refuses(gl, params, message):
    with pytest.raises(gitlab.GitlabListError) as error:
        gl.projects.get(APP, lazy=True).deployments.list(get_all=True, **params)
    assert error.value.response_code == 400 and message in error.value.error_message


def test_record_and_finish_a_deployment(sandbox, gl):
    project = gl.projects.get(APP, lazy=True)
    created = project.deployments.create(
        {"environment": "db/gstg", "sha": DEPLOYED, "ref": "17.7.x", "tag": False, "status": "running"}
    )
    assert created.status == "running" and created.environment["name"] == "db/gstg"
    deployment = project.deployments.get(created.id, lazy=True)
    deployment.status = "success"
    deployment.save()
    again = project.deployments.get(created.id)
    assert again.status == "success" and GITLAB_TIME.match(again.updated_at) and again.deployable is None
    assert sandbox.deployments(APP, environment="db/gstg")[0]["status"] == "success"
    with pytest.raises(gitlab.GitlabHttpError) as error:  # python-gitlab itself insists on status
        gl.http_post("/projects/278964/deployments", post_data={"environment": "db/gstg", "sha": DEPLOYED})
    assert error.value.response_code == 400 and "ref is missing" in error.value.error_message
    with pytest.raises(gitlab.GitlabGetError):
        project.deployments.get(999999)


def test_environments(gl):
    project = gl.projects.get(APP, lazy=True)
    names = [e.name for e in project.environments.list(get_all=True)]
    assert sorted(names) == ["db/gprd", "gprd", "gstg"]
    assert [e.name for e in project.environments.list(name="gprd", get_all=True)] == ["gprd"]
    one = project.environments.get(project.environments.list(name="gstg", get_all=True)[0].id)
    assert one.last_deployment["status"] == "running"


def test_compare_reports_add_rename_delete_and_modify(gl):
    answer = gl.projects.get(APP, lazy=True).repository_compare(BASE, MASTER)
    assert set(answer) >= {"commit", "commits", "diffs", "compare_timeout", "compare_same_ref", "web_url"}
    assert [c["id"] for c in answer["commits"]] == [DEPLOYED, MASTER] and answer["commit"]["id"] == MASTER
    assert answer["commits"][0]["title"] == "Add the token index"
    diffs = {d["new_path"]: d for d in answer["diffs"]}
    added = diffs["ee/db/post_migrate/20261120000000_add_index_on_builds_token.rb"]
    assert (added["new_file"], added["renamed_file"], added["deleted_file"]) == (True, False, False)
    assert added["a_mode"] == "0" and added["b_mode"] == "100644"
    assert added["diff"].startswith("@@ -0,0 +1,") and "+    add_concurrent_index" in added["diff"]
    renamed = diffs["lib/gitlab/sandbox/version.rb"]
    assert (
        renamed["renamed_file"] and renamed["old_path"] == "lib/gitlab/sandbox.rb" and renamed["diff"] == ""
    )
    deleted = diffs["db/post_migrate/20261102000000_to_be_deleted.rb"]
    assert deleted["deleted_file"] and deleted["b_mode"] == "0"
    modified = diffs["db/post_migrate/20261101000000_queue_old_backfill.rb"]
    assert not (modified["new_file"] or modified["deleted_file"] or modified["renamed_file"])
    assert "+# edited" in modified["diff"]
    assert len(answer["diffs"]) == 4 and answer["compare_same_ref"] is False


def test_compare_backwards_is_empty_unless_straight(gl):
    project = gl.projects.get(APP, lazy=True)
    assert project.repository_compare(MASTER, BASE)["diffs"] == []
    straight = project.repository_compare(MASTER, BASE, straight=True)
    assert {d["new_path"] for d in straight["diffs"] if d["new_file"]} == {
        "db/post_migrate/20261102000000_to_be_deleted.rb"
    }
    assert project.repository_compare(BASE, BASE)["compare_same_ref"] is True
    assert project.repository_compare(BASE[:8], "master")["commit"]["id"] == MASTER


def test_compare_with_an_unknown_sha_is_404(gl):
    with pytest.raises(gitlab.GitlabGetError) as error:
        gl.projects.get(APP, lazy=True).repository_compare(BASE, "f" * 40)
    assert error.value.response_code == 404


def test_raw_file_at_a_ref(gl):
    project = gl.projects.get(APP, lazy=True)
    path = "db/post_migrate/20261101000000_queue_old_backfill.rb"
    assert project.files.raw(file_path=path, ref=BASE) == OLD_MIGRATION.encode()
    assert project.files.raw(file_path=path, ref="master").endswith(b"# edited\n")
    index = "ee/db/post_migrate/20261120000000_add_index_on_builds_token.rb"
    assert project.files.raw(file_path=index, ref=DEPLOYED) == INDEX_MIGRATION.encode()
    with pytest.raises(gitlab.GitlabGetError) as error:
        project.files.raw(file_path=index, ref=BASE)
    assert error.value.response_code == 404 and error.value.error_message == "404 File Not Found"


def test_file_json_and_commit(gl):
    project = gl.projects.get(APP, lazy=True)
    index = "ee/db/post_migrate/20261120000000_add_index_on_builds_token.rb"
    found = project.files.get(file_path=index, ref=DEPLOYED)
    assert found.encoding == "base64" and base64.b64decode(found.content).decode() == INDEX_MIGRATION
    assert found.commit_id == DEPLOYED and found.file_name.endswith("token.rb")
    commit = project.commits.get(DEPLOYED)
    assert commit.id == DEPLOYED and commit.short_id == DEPLOYED[:8] and GITLAB_TIME.match(commit.created_at)


def test_issue_filters(gl):
    production = gl.projects.get(PRODUCTION, lazy=True)
    opened_incidents = production.issues.list(state="opened", labels=["incident"], get_all=True)
    assert [i.iid for i in opened_incidents] == [1]
    both = production.issues.list(labels=["change", "change::in-progress"], get_all=True)
    assert [i.iid for i in both] == [2] and both[0].labels == ["change", "C2", "change::in-progress"]
    assert {i.iid for i in production.issues.list(labels=["incident"], get_all=True)} == {1, 3}
    assert [i.iid for i in production.issues.list(labels="None", get_all=True)] == [4]
    assert [i.iid for i in production.issues.list(search="patroni", get_all=True)] == [2]
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert 4 not in {i.iid for i in production.issues.list(created_after=since, get_all=True)}
    assert {i.iid for i in gl.issues.list(state="opened", get_all=True)} == {1, 2, 4}
    one = production.issues.get(1)
    assert one.web_url.endswith("/gitlab-com/gl-infra/production/-/issues/1") and one.state == "opened"
    assert one.issue_type == "incident" and GITLAB_TIME.match(one.created_at) and one.closed_at is None


def test_admin_pending_migrations_and_mark(sandbox, gl):
    # lib/api/admin/migrations.rb presents an object, not a list
    main = gl.http_get("/admin/migrations/pending", query_data={"database": "main"})
    assert set(main) == {"pending_migrations", "database", "total_pending"}
    assert main["database"] == "main" and main["total_pending"] == 1
    assert set(main["pending_migrations"][0]) == {"version", "name", "filename", "status"}
    assert main["pending_migrations"][0]["version"] == 20261120000000
    assert gl.http_get("/admin/migrations/pending", query_data={"database": "ci"})["pending_migrations"] == []
    gl.http_post("/admin/migrations/20261120000000/mark", query_data={"database": "main"})
    assert gl.http_get("/admin/migrations/pending", query_data={"database": "main"})["total_pending"] == 0
    with pytest.raises(gitlab.GitlabHttpError) as error:  # a database GitLab knows, not configured here
        gl.http_get("/admin/migrations/pending", query_data={"database": "geo"})
    assert error.value.response_code == 404 and "is not configured" in error.value.error_message
    with pytest.raises(gitlab.GitlabHttpError) as error:  # a name GitLab does not know
        gl.http_get("/admin/migrations/pending", query_data={"database": "nosuch"})
    assert error.value.response_code == 400
    sandbox.set_pending_migrations("main", [20261121000000])
    answer = gl.http_get("/admin/migrations/pending", query_data={"database": "main"})
    assert answer["pending_migrations"][0]["version"] == 20261121000000
