"""Preflight against the sandbox GitLab with tokens of each role, and a real Prometheus."""

from __future__ import annotations

import json
from typing import Any

import pytest

from include.policy import load_policy
from include.preflight import Check, exit_code, render
from include.sandbox.gitlab_server import SandboxGitLab
from tests.support.policies import e2e_policy, write_policy
from tests.support.scenarios import APP, RELEASE_TOOLS, world

pytestmark = pytest.mark.integration

ADMIN = "preflight-admin-token-0a1b"
PRODUCTION = "gitlab-com/gl-infra/production"
EVERYWHERE = [APP, PRODUCTION, RELEASE_TOOLS]
TOKENS = {
    role: f"preflight-{role}-token-{index}"
    for index, role in enumerate(("guest", "reporter", "developer", "maintainer", "readapi", "outsider"))
}


def _scenario(**release_tools: Any) -> dict[str, Any]:
    scenario = world({})
    scenario["tokens"] = [
        {"token": TOKENS[role], "username": f"bot-{role}", "roles": dict.fromkeys(EVERYWHERE, role)}
        for role in ("guest", "reporter", "developer", "maintainer")
    ] + [
        {"token": TOKENS["readapi"], "username": "bot-readapi", "scopes": ["read_api"],
         "roles": dict.fromkeys(EVERYWHERE, "developer")},
        {"token": TOKENS["outsider"], "username": "bot-outsider", "roles": {}},
    ]  # fmt: skip
    scenario["projects"][2].update(release_tools)
    return scenario


@pytest.fixture
def run_preflight(tmp_path, monkeypatch):
    servers: list[SandboxGitLab] = []

    def run(
        token: str, scenario: dict[str, Any] | None = None, **policy_options: Any
    ) -> tuple[int, list[Check]]:
        from pdm_orchestrator.preflight import gitlab_checks

        sandbox = SandboxGitLab(scenario or _scenario(), token=ADMIN).start()
        servers.append(sandbox)
        conn = {"conn_type": "http", "host": sandbox.url, "password": token, "extra": {"timeout": 5}}
        monkeypatch.setenv("AIRFLOW_CONN_GITLAB_DEFAULT", json.dumps(conn))
        policy = load_policy(str(write_policy(tmp_path / "policy.yaml", e2e_policy(**policy_options))))
        checks = gitlab_checks(policy)
        print(render(checks))
        assert sandbox.created_pipelines(RELEASE_TOOLS) == []  # the probe never creates anything
        return exit_code(checks), checks

    yield run
    for sandbox in servers:
        sandbox.stop()


def _problems(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks if not c.ok}


def test_developer_is_enough(run_preflight):
    code, checks = run_preflight(TOKENS["developer"])
    assert code == 0, render(checks)
    text = render(checks)
    assert "token of bot-developer" in text and "may create pipelines with variables" in text
    assert "confidential incidents in gitlab-com/gl-infra/production: visible" in text


def test_maintainer_and_admin_pass_too(run_preflight):
    assert run_preflight(TOKENS["maintainer"])[0] == 0
    code, checks = run_preflight(ADMIN, admin_check_databases=["main"])
    assert code == 0, render(checks)
    assert "admin pending migrations (main): readable" in render(checks)


def test_reporter_cannot_run_the_pipeline(run_preflight):
    code, checks = run_preflight(TOKENS["reporter"])
    problems = _problems(checks)
    assert code == 1
    assert "needs Developer" in problems[f"role in {RELEASE_TOOLS}"].detail
    assert problems[f"role in {RELEASE_TOOLS}"].fix == f"add the bot user to {RELEASE_TOOLS} as Developer"
    assert f"pipeline variables readable in {RELEASE_TOOLS}" in problems


def test_guest_misses_confidential_incidents(run_preflight):
    code, checks = run_preflight(TOKENS["guest"])
    problems = _problems(checks)
    assert code == 1
    assert "invisible to the bot (Guest)" in problems[f"confidential incidents in {PRODUCTION}"].detail
    assert problems[f"role in {APP}"].fix == f"add the bot user to {APP} as Reporter"


def test_a_non_member_and_a_bad_token(run_preflight):
    code, checks = run_preflight(TOKENS["outsider"])
    assert code == 1 and "the bot is no role" in _problems(checks)[f"role in {APP}"].detail
    code, checks = run_preflight("preflight-wrong-token")
    assert code == 1 and list(_problems(checks)) == ["gitlab token"]


def test_read_api_token_cannot_create_the_pipeline(run_preflight):
    code, checks = run_preflight(TOKENS["readapi"])
    scopes = _problems(checks)["gitlab token scopes"]
    assert code == 1 and "`api`" in scopes.detail and "api" in scopes.fix


@pytest.mark.parametrize("token", ["developer", "maintainer"])
def test_the_pipeline_variables_setting_is_found(run_preflight, token):
    code, checks = run_preflight(TOKENS[token], _scenario(pipeline_variables_minimum_role="no_one_allowed"))
    problem = _problems(checks)[f"pipeline variables in {RELEASE_TOOLS}"]
    assert code == 1 and "no_one_allowed" in problem.detail and "developer" in problem.fix


def test_admin_endpoint_refused_or_absent(run_preflight):
    code, checks = run_preflight(TOKENS["developer"], admin_check_databases=["main"])
    assert code == 1 and "not an administrator" in _problems(checks)["admin pending migrations (main)"].detail
    old = _scenario()
    old["admin_migrations_endpoint"] = False
    code, checks = run_preflight(ADMIN, old, admin_check_databases=["main"])
    assert "predates this endpoint" in _problems(checks)["admin pending migrations (main)"].detail


def test_prometheus_fresh_data_and_the_cli(prometheus_with_traffic, tmp_path, monkeypatch, capsys):
    from pdm_orchestrator.preflight import main, prometheus_checks

    monkeypatch.setenv(
        "AIRFLOW_CONN_PROMETHEUS_DEFAULT",
        json.dumps({"conn_type": "http", "host": prometheus_with_traffic.url}),
    )
    policy_path = write_policy(tmp_path / "policy.yaml", e2e_policy())
    checks = prometheus_checks(load_policy(str(policy_path)), ["gprd"])
    assert exit_code(checks) == 0 and [c.name for c in checks] == [
        "prometheus reachable",
        "traffic query (gprd)",
    ]
    stale = e2e_policy()
    stale["gates"]["traffic"]["query"] = 'sum(no_such_metric{env="{environment}"})'
    checks = prometheus_checks(load_policy(str(write_policy(tmp_path / "stale.yaml", stale))), ["gstg"])
    assert "returns no data now" in _problems(checks)["traffic query (gstg)"].detail
    with SandboxGitLab(_scenario(), token=ADMIN) as sandbox:
        monkeypatch.setenv(
            "AIRFLOW_CONN_GITLAB_DEFAULT",
            json.dumps({"conn_type": "http", "host": sandbox.url, "password": ADMIN}),
        )
        assert main(["--policy", str(policy_path), "--environment", "gprd"]) == 0
        assert capsys.readouterr().out.strip().endswith("preflight: all checks passed")
        assert main(["--policy", str(policy_path), "--environment", "nope"]) == 1
        assert "unknown environment 'nope'" in capsys.readouterr().out
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROMETHEUS_DEFAULT", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": 9})
    )
    checks = prometheus_checks(load_policy(str(policy_path)), ["gprd"])
    assert list(_problems(checks)) == ["prometheus reachable"]


def test_airflow_test_connection(monkeypatch):
    from pdm_orchestrator.hooks.gitlab import GitLabHook

    with SandboxGitLab(_scenario(), token=ADMIN) as sandbox:
        for token, expected in ((TOKENS["developer"], True), ("preflight-wrong-token", False)):
            conn = {"conn_type": "http", "host": sandbox.url, "password": token}
            monkeypatch.setenv("AIRFLOW_CONN_GITLAB_DEFAULT", json.dumps(conn))
            ok, message = GitLabHook().test_connection()
            assert ok is expected, message
            assert token not in message
            assert ("bot-developer" if expected else "401") in message
