"""End-to-end harness: real Airflow (`dag.test()`), the sandbox GitLab over HTTP, a real Prometheus and
PostgreSQL. Each test gets its own sandbox world, audit database and policy file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from include.audit import AuditStore, AuditTarget
from tests.support.policies import e2e_policy, write_policy

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS = PROJECT_ROOT / "dags"
TOKEN = "e2e-sandbox-token-0123456789"
# The bot's token in the end-to-end runs has the least roles docs/gitlab.md names (not the admin token):
# Reporter where it reads, Developer where it runs the PDM pipeline.
BOT_TOKEN = "e2e-bot-token-9876543210"
BOT_ROLES = {
    "gitlab-org/gitlab": "reporter",
    "gitlab-com/gl-infra/production": "reporter",
    "gitlab-org/release/tools": "developer",
}


@dataclass
class PdmWorld:
    """Everything one end-to-end run talks to, and handles to inspect it afterwards."""

    audit: AuditStore
    policy_path: Path
    traffic: Any
    monkeypatch: pytest.MonkeyPatch
    sandbox: Any = None

    def serve(self, scenario: dict[str, Any], *, admin: bool = False) -> Any:
        """Start the sandbox GitLab with this world and point the `gitlab_default` connection at it, with the
        bot's least-role token (or the admin token, for the admin API cross-check)."""
        from include.sandbox.gitlab_server import SandboxGitLab

        bot = {"token": BOT_TOKEN, "username": "pdm-bot", "roles": BOT_ROLES}
        scenario = {**scenario, "tokens": [*(scenario.get("tokens") or []), bot]}
        self.sandbox = SandboxGitLab(scenario, token=TOKEN).start(host="127.0.0.1", port=0)
        token = TOKEN if admin else BOT_TOKEN
        self.monkeypatch.setenv(
            "AIRFLOW_CONN_GITLAB_DEFAULT",
            json.dumps(
                {"conn_type": "http", "host": self.sandbox.url, "password": token, "extra": {"timeout": 10}}
            ),
        )
        return self.sandbox

    def use_policy(self, **kwargs: Any) -> None:
        write_policy(self.policy_path, e2e_policy(**kwargs))

    def run(self, dag_id: str = "pdm_gprd", conf: dict[str, Any] | None = None):
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(DAGS), safe_mode=False)
        assert not bag.import_errors, bag.import_errors
        return bag.get_dag(dag_id).test(run_conf=conf)

    def audit_kinds(self, run_id: str) -> list[str]:
        return [e.kind for e in self.audit.events(run_id=run_id)]

    def outcome(self, run_id: str) -> dict[str, Any]:
        outcomes = self.audit.events(run_id=run_id, kind="outcome")
        assert len(outcomes) == 1, [e.kind for e in self.audit.events(run_id=run_id)]
        return outcomes[0].payload


@pytest.fixture
def pdm_world(
    airflow_db, postgres_database, prometheus_with_traffic, tmp_path, monkeypatch
) -> Iterator[PdmWorld]:
    policy_path = write_policy(tmp_path / "policy.yaml", e2e_policy())
    audit = AuditStore(AuditTarget.from_uri(postgres_database))
    audit.migrate()
    prometheus_with_traffic.set_traffic("gprd", 100.0)
    prometheus_with_traffic.set_traffic("gstg", 100.0)
    monkeypatch.setenv("PDM_POLICY_FILE", str(policy_path))
    monkeypatch.setenv("PDM_PIPELINE_POLL_SECONDS", "1")
    monkeypatch.setenv("PDM_RETRY_DELAY_SECONDS", "1")
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", prometheus_with_traffic.url)
    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", postgres_database)
    state = PdmWorld(audit, policy_path, prometheus_with_traffic, monkeypatch)
    try:
        yield state
    finally:
        if state.sandbox is not None:
            state.sandbox.stop()
