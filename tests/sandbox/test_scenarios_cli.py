"""Scenario files (the shipped demo, errors that name the key), the control API over HTTP, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import gitlab
import pytest

from include.isotime import parse_iso_instant
from include.sandbox.gitlab_server import SandboxGitLab, ScenarioError
from tests.sandbox.conftest import APP, PRODUCTION, RELEASE_TOOLS, TOKEN, scenario

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "include" / "sandbox" / "scenarios" / "demo.yaml"


def _control(sandbox, path, data=None, method="POST"):
    request = urllib.request.Request(
        f"{sandbox.url}/-/sandbox/{path}",
        data=json.dumps(data).encode() if data is not None else None,
        method=method,
        headers={"PRIVATE-TOKEN": TOKEN, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


# -- the demo world -------------------------------------------------------------------------------------
def _latest(project, environment):
    """The hook's question: the last successful deployment to `environment`."""
    return project.deployments.list(
        environment=environment, status="success", order_by="finished_at", sort="desc", per_page=1, page=1
    )[0]


def test_demo_has_three_pending_post_deploy_migrations_on_each_environment():
    with SandboxGitLab.from_file(DEMO, token=TOKEN) as sandbox:
        project = gitlab.Gitlab(sandbox.url, private_token=TOKEN).projects.get(APP, lazy=True)
        for environment in ("gstg", "gprd"):
            deployed, last_pdm = _latest(project, environment), _latest(project, f"db/{environment}")
            assert deployed.sha != last_pdm.sha and deployed.ref > last_pdm.ref
            diffs = project.repository_compare(last_pdm.sha, deployed.sha)["diffs"]
            added = sorted(d["new_path"] for d in diffs if d["new_file"] and "post_migrate/" in d["new_path"])
            assert len(added) == 3
            assert {p.split("/post_migrate/")[0] for p in added} == {"db", "ee/db"}
            sources = {p: project.files.raw(file_path=p, ref=deployed.sha).decode() for p in added}
            helpers = (
                "queue_batched_background_migration",
                "add_concurrent_index",
                "update_column_in_batches",
            )
            for helper in helpers:
                assert sum(helper in source for source in sources.values()) == 1, helper
            assert project.deployments.list(environment=environment, status="running", get_all=True) == []
            finished_text = (deployed.deployable or {}).get("finished_at") or deployed.updated_at
            finished = parse_iso_instant(finished_text)
            assert timedelta(hours=2) < datetime.now(UTC) - finished < timedelta(hours=8)  # a few hours ago
        head = project.commits.get("master")
        assert head.id != deployed.sha  # master is ahead of every package: its migration is not pending
        production = gitlab.Gitlab(sandbox.url, private_token=TOKEN).projects.get(
            "gitlab-com/gl-infra/production"
        )
        assert production.issues.list(state="opened", get_all=True) == []


def test_demo_pipeline_succeeds_after_about_twenty_seconds():
    with SandboxGitLab.from_file(DEMO, token=TOKEN) as sandbox:
        tools = gitlab.Gitlab(sandbox.url, private_token=TOKEN).projects.get(RELEASE_TOOLS, lazy=True)
        variables = {
            "PDM_ENVIRONMENT": "gprd",
            "PDM_SHA": "9a8b7c6d5e4f30211203948576a1b2c3d4e5f6a7",
            "PDM_PACKAGE": "p",
        }
        created = tools.pipelines.create(
            {"ref": "master", "variables": [{"key": k, "value": v} for k, v in variables.items()]}
        )
        sandbox.advance_clock(10)
        created.refresh()
        assert created.status == "running"
        sandbox.advance_clock(15)
        created.refresh()
        assert created.status == "success" and 15 <= created.duration <= 25
        assert sandbox.deployments(APP, environment="db/gprd")[-1]["status"] == "success"


def test_demo_classifies_as_intended():
    classification = pytest.importorskip("include.classification")
    with SandboxGitLab.from_file(DEMO, token=TOKEN) as sandbox:
        state = sandbox.state()["projects"][APP]["commits"]
        files = sandbox.world.project(APP).commits[state[1]["sha"]]["files"]
    classes = {
        path.rsplit("/", 1)[-1][:14]: classification.classify_source(source, path).migration_class.value
        for path, source in files.items()
        if path.startswith(("db/post_migrate/2026112", "ee/db/post_migrate/"))
    }
    assert classes == {
        "20261120093000": "background",
        "20261121140000": "schema_heavy",
        "20261122081500": "data",
    }


# -- scenario errors --------------------------------------------------------------------------------------
def _broken(change) -> dict:
    world = scenario()
    change(world)
    return world


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda w: w["projects"][0].pop("id"), "projects[0].id: missing"),
        (lambda w: w["projects"][0]["commits"][1].update(sha="xyz"), "projects[0].commits[1].sha: 'xyz'"),
        (
            lambda w: w["projects"][0]["commits"][1].update(files_from="d" * 40),
            "projects[0].commits[1].files_from",
        ),
        (lambda w: w["projects"][0]["commits"][1].update(delete=["nope.rb"]), "commits[1].delete: nope.rb"),
        (lambda w: w["projects"][0]["deployments"][1].update(status="done"), "deployments[1].status: 'done'"),
        (
            lambda w: w["projects"][0]["deployments"][0].update(created_at="yesterday"),
            "deployments[0].created_at",
        ),
        (
            lambda w: w["projects"][2]["pipeline_behaviour"].update(result="ok"),
            "pipeline_behaviour.result: 'ok'",
        ),
        (lambda w: w["projects"][1]["issues"][0].update(state="open"), "issues[0].state: 'open'"),
        (lambda w: w["projects"].append({"id": 13083, "path_with_namespace": "x/y"}), "13083 is used"),
        (lambda w: w.update(admin_pending_migrations={"main": ["v1"]}), "admin_pending_migrations.main"),
    ],
)
def test_scenario_errors_name_the_key(change, message):
    with pytest.raises(
        ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
    ):
        SandboxGitLab(_broken(change), token=TOKEN)


def test_scenario_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("projects:\n  - {id: 1}\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml: projects\[0\].path_with_namespace: missing"):
        SandboxGitLab.from_file(bad, token=TOKEN)
    with pytest.raises(ValueError, match="needs a token"):
        SandboxGitLab({"projects": []})
    assert SandboxGitLab({"token": "from-scenario", "projects": []}).token == "from-scenario"


# -- control API ------------------------------------------------------------------------------------------
def test_control_api_over_http(sandbox):
    deployment = _control(
        sandbox,
        "deployments",
        {"project": APP, "environment": "gprd", "sha": "e" * 40, "ref": "r", "status": "running"},
    )
    assert deployment["status"] == "running"
    assert _control(sandbox, f"deployments/{deployment['id']}", {"status": "success"})["status"] == "success"
    issue = _control(
        sandbox, "issues", {"project": PRODUCTION, "title": "API down", "labels": ["incident", "severity::1"]}
    )
    assert issue["iid"] == 5 and issue["state"] == "opened"
    assert _control(sandbox, f"issues/{issue['iid']}/close", {})["state"] == "closed"
    commit = _control(
        sandbox, "commits", {"project": APP, "sha": "d" * 40, "files_from": "c" * 40, "add": {"x.rb": "1"}}
    )
    assert "x.rb" in commit["files"]
    assert (
        _control(sandbox, "pipeline_behaviour", {"project": RELEASE_TOOLS, "result": "canceled"})["result"]
        == "canceled"
    )
    fault = _control(sandbox, "faults", {"path": "/version", "kind": "status", "status": 500, "count": 2})
    assert fault["fault"]["count"] == 2
    assert _control(sandbox, "faults", method="DELETE") == {"faults": []}
    before = _control(sandbox, "state", method="GET")["now"]
    assert _control(sandbox, "clock", {"advance_seconds": 7200})["now"] > before
    state = _control(sandbox, "state", method="GET")
    assert set(state) >= {"now", "projects", "requests", "faults", "admin_pending_migrations"}
    assert state["projects"][RELEASE_TOOLS]["pipelines"][0]["variables"] == {"DEPLOY_ENVIRONMENT": "gprd"}
    assert state["projects"][RELEASE_TOOLS]["created_pipelines"] == 0
    assert state["requests"]["POST /-/sandbox/deployments/:id"] == 1


def test_control_api_refuses_bad_input(sandbox):
    for path, body in (
        ("faults", {"kind": "status"}),
        ("faults", {"path": "/x", "kind": "boom"}),
        ("issues", {"title": "t"}),
    ):
        with pytest.raises(urllib.error.HTTPError) as error:
            _control(sandbox, path, body)
        assert error.value.code == 400, path


# -- the CLI ---------------------------------------------------------------------------------------------
def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SANDBOX_GITLAB_TOKEN"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return {**env, **extra}


def test_cli_serves_until_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "include.sandbox.gitlab_server", "--scenario", str(DEMO), "--port", "0"],
        cwd=ROOT,
        env=_env(SANDBOX_GITLAB_TOKEN=TOKEN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "sandbox GitLab serving" in line, process.stderr.read()
        url = line.rsplit(" at ", 1)[1].strip()
        assert gitlab.Gitlab(url, private_token=TOKEN).projects.get(APP).id == 278964
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_needs_a_token_and_a_good_scenario(tmp_path):
    command = [sys.executable, "-m", "include.sandbox.gitlab_server", "--scenario", str(DEMO), "--port", "0"]
    missing = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2 and "SANDBOX_GITLAB_TOKEN" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("projects:\n  - {id: 5, path_with_namespace: a/b, deployments: [{status: success}]}\n")
    command[4] = str(bad)
    broken = subprocess.run(
        command, cwd=ROOT, env=_env(SANDBOX_GITLAB_TOKEN=TOKEN), capture_output=True, text=True, timeout=30
    )
    assert broken.returncode == 1 and "projects[0].deployments[0].environment: missing" in broken.stderr
