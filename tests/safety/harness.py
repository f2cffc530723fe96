"""A trigger task run in-process against the real sandbox GitLab, Prometheus and PostgreSQL audit store:
the operator's `execute` with a minimal task context (XCom in a dict), no Airflow scheduler."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from include.audit import AuditStore, AuditTarget
from include.sandbox.gitlab_server import SandboxGitLab
from tests.support.policies import e2e_policy, write_policy
from tests.support.scenarios import BACKGROUND, world

TOKEN = "safety-test-token-9a8b7c6d5e"
BACKGROUND_FILE = "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb"


@dataclass
class FakeTI:
    """The task instance surface the operator uses: XCom push and pull, by (task_id, key)."""

    task_id: str = "trigger_pipeline"
    xcom: dict[tuple[str, str], Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcom.get((task_ids, key))


@dataclass
class TriggerBench:
    """One environment's sources and a way to run the trigger task for a given run id."""

    sandbox: SandboxGitLab
    audit: AuditStore
    policy_path: Path
    snapshot: dict[str, Any]

    def context(self, run_id: str, params: dict[str, Any] | None = None, run_type: str = "manual") -> dict:
        ti = FakeTI()
        ti.xcom[("classify_pending", "return_value")] = self.snapshot
        dag_run = SimpleNamespace(
            dag_id="pdm_gprd", run_id=run_id, run_type=run_type, run_after=None, triggering_user_name="rm"
        )
        return {"ti": ti, "dag_run": dag_run, "params": params or {}}

    def operator(self, **kwargs: Any):
        from pdm_orchestrator.operators.pipeline import TriggerPdmPipelineOperator

        return TriggerPdmPipelineOperator(
            task_id="trigger_pipeline",
            environment="gprd",
            policy_path=str(self.policy_path),
            snapshot_task_id="classify_pending",
            poll_seconds=0.2,
            **kwargs,
        )

    def run(self, run_id: str, **kwargs: Any) -> tuple[str, dict]:
        """Execute the trigger task once: ("deferred" | "skipped" | "failed: <msg>" | "done", context)."""
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred

        context = self.context(run_id)
        try:
            self.operator(**kwargs).execute(context)
        except TaskDeferred:
            return "deferred", context
        except AirflowSkipException:
            return "skipped", context
        except AirflowFailException as exc:
            return f"failed: {exc}", context
        return "done", context


def start_bench(
    tmp_path: Path, postgres_database: str, prometheus, monkeypatch, **world_kwargs
) -> TriggerBench:
    from pdm_orchestrator import run_steps

    prometheus.set_traffic("gprd", 100.0)
    sandbox = SandboxGitLab(world({BACKGROUND_FILE: BACKGROUND}, **world_kwargs), token=TOKEN).start()
    policy_path = write_policy(tmp_path / "policy.yaml", e2e_policy(max_wait="60s"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_GITLAB_DEFAULT",
        json.dumps({"conn_type": "http", "host": sandbox.url, "password": TOKEN, "extra": {"timeout": 10}}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", prometheus.url)
    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", postgres_database)
    audit = AuditStore(AuditTarget.from_uri(postgres_database))
    audit.migrate()
    snapshot = run_steps.classify_pending(
        run_steps.discover_pending("gprd", str(policy_path)), str(policy_path)
    )
    return TriggerBench(sandbox, audit, policy_path, snapshot)
