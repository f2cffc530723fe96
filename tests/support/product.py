"""ONE `make run` per pytest session, shared by tests/smoke and tests/ui (`pdm_product` fixture).

Starting `make run` (sandbox GitLab, Prometheus with 4 weeks of backfill, `airflow standalone`) takes minutes on
a loaded 2-core machine; every test that drives the product from outside uses this one instead of its own.
Tests share one world, so each test that needs pending work on an environment publishes a new package first
(`publish_package`): a new migration deployed to gstg and gprd, as an auto-deploy would, so no test depends on
what an earlier one ran. A test that edits the policy file restores it in a `finally`.

Ctrl-C must stop everything `make run` started: the fixture's teardown sends it and fails the session (an error
at teardown) when `make run` does not stop within 60 s or one of its ports is still listening.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import call_json, free_port, port_open, wait_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APPLICATION = "gitlab-org/gitlab"

# A schema-heavy migration (like the demo's add_concurrent_index): a known class, so no approval is asked.
MIGRATION = """# frozen_string_literal: true

class AddIndexTestTable{n}OnCreatedAt < Gitlab::Database::Migration[2.2]
  milestone '17.8'
  disable_ddl_transaction!

  INDEX_NAME = 'index_test_table_{n}_on_created_at'

  def up
    add_concurrent_index :test_table_{n}, :created_at, name: INDEX_NAME
  end

  def down
    remove_concurrent_index_by_name :test_table_{n}, INDEX_NAME
  end
end
"""


class MakeRun:
    """`make run` on free ports, with its own home, run dir and a copy of the local policy a test may edit."""

    def __init__(self, tmp: Path) -> None:
        self.ports = {name: free_port() for name in ("airflow", "gitlab", "exporter", "prometheus")}
        self.home = tmp / "airflow"
        self.run_dir = tmp / "run"
        # A copy of config/policy.local.yaml (what `make run` reads by default) so that tests may edit it.
        self.policy = tmp / "policy.yaml"
        shutil.copy(PROJECT_ROOT / "config" / "policy.local.yaml", self.policy)
        self.log = tmp / "make-run.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            PDM_RUN_DIR=str(self.run_dir),
            PDM_AIRFLOW_HOME=str(self.home),
            PDM_AIRFLOW_PORT=str(self.ports["airflow"]),
            PDM_SANDBOX_GITLAB_PORT=str(self.ports["gitlab"]),
            PDM_TRAFFIC_EXPORTER_PORT=str(self.ports["exporter"]),
            PDM_PROMETHEUS_PORT=str(self.ports["prometheus"]),
            PDM_POLICY_FILE=str(self.policy),
        )
        self.started = time.monotonic()
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                ["make", "run"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.base = f"http://127.0.0.1:{self.ports['airflow']}"
        self.gitlab = f"http://127.0.0.1:{self.ports['gitlab']}"
        self.token = ""
        self._packages = itertools.count(1)

    def wait(self, predicate, timeout: float, what: str) -> Any:
        def died():
            return f"make run exited with {self.proc.returncode}" if self.proc.poll() is not None else None

        return wait_for(predicate, timeout, what, lambda: self.log.read_text()[-4000:], died)

    def api(self, path: str, data=None, method=None) -> Any:
        return call_json(f"{self.base}/api/v2{path}", self.token, data, method)

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> Any:
        """Mark a task by hand, as an operator would from the UI. The API answers 500 when the task's own
        process writes the same row at that moment (a sensor deferring, SQLite busy): try again, a few times."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        for attempt in range(6):
            try:
                # SQLite: the API server may wait up to a minute for the lock (sqlite_wait.py).
                return call_json(f"{self.base}/api/v2{path}", self.token, {"new_state": state}, "PATCH", 90)
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == 5:
                    raise
            except TimeoutError:
                if attempt == 5:
                    raise
            time.sleep(3)
        return None

    def start(self) -> MakeRun:
        self.wait(
            lambda: call_json(f"{self.base}/api/v2/monitor/health")["scheduler"]["status"] == "healthy",
            400,
            "health",
        )
        password = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())[
            "admin"
        ]
        self.token = call_json(f"{self.base}/auth/token", None, {"username": "admin", "password": password})[
            "access_token"
        ]
        self.wait(
            lambda: {d["dag_id"] for d in self.api("/dags")["dags"]} >= {"pdm_gprd", "pdm_gstg"},
            240,
            "the PDM DAGs",
        )
        print(f"\nmake run ready after {time.monotonic() - self.started:.0f} s")
        return self

    def finished(self, dag_id: str, run_id: str, timeout: float = 300) -> dict:
        url = f"/dags/{dag_id}/dagRuns/{run_id}"
        self.wait(lambda: self.api(url)["state"] in ("success", "failed"), timeout, f"{run_id} to finish")
        # show_outcome sets the note right before its outcome task: give the API a moment to return it.
        time.sleep(2)
        return self.api(url)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        found = self.api(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
        return {t["task_id"]: t["state"] for t in found}

    def run_ids(self, dag_id: str) -> set[str]:
        return {r["dag_run_id"] for r in self.api(f"/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]}

    # -- the sandbox GitLab's control API ---------------------------------------------------------------
    def sandbox(self, path: str, data: dict | None = None) -> Any:
        token = (self.run_dir / "sandbox-gitlab-token").read_text().strip()
        return call_json(f"{self.gitlab}/-/sandbox/{path}", token, data, "POST" if data is not None else None)

    def publish_package(self, environments: tuple[str, ...] = ("gstg", "gprd")) -> str:
        """Deploy a new package with one more (schema-heavy) post-deploy migration to `environments`.

        Each call's deployments finish after the previous ones (the product takes the latest finished one as
        deployed) and more than 2 h ago, past the policy's general 1 h bake."""
        n = next(self._packages)
        state = self.sandbox("state")
        deployed = max(
            (
                d
                for d in state["projects"][APPLICATION]["deployments"]
                if d["environment"]["name"] == "gstg" and d["status"] == "success"
            ),
            key=lambda d: d["updated_at"] or "",  # a finished deployment's last update is its finish
        )
        sha = secrets.token_hex(20)
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M")
        version = f"{stamp}{n:02d}"
        self.sandbox(
            "commits",
            {
                "project": APPLICATION,
                "sha": sha,
                "message": f"Merge branch 'test-index-{n}' into 'master'",
                "files_from": deployed["sha"],
                "add": {
                    f"db/post_migrate/{version}_add_index_test_table_{n}_on_created_at.rb": MIGRATION.format(
                        n=n
                    )
                },
            },
        )
        finished = f"-{180 - n}m"
        for environment in environments:
            self.sandbox(
                "deployments",
                {
                    "project": APPLICATION,
                    "environment": environment,
                    "sha": sha,
                    "ref": f"17.8.{stamp}-{sha[:11]}.{sha[-11:]}",
                    "status": "success",
                    "created_at": f"-{181 - n}m",
                    "finished_at": finished,
                },
            )
        return sha

    def stop(self) -> list[str]:
        """Ctrl-C, as a person stops it; the names of the ports still listening afterwards."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            pytest.fail(f"make run did not stop within 60 s of Ctrl-C\n{self.log.read_text()[-3000:]}")
        time.sleep(2)
        return [name for name, port in self.ports.items() if port_open(port)]


@pytest.fixture(scope="session")
def pdm_product(tmp_path_factory) -> Iterator[MakeRun]:
    """The product as `make run` starts it, shared by the session's tests; stopped with Ctrl-C at the end."""
    run = MakeRun(tmp_path_factory.mktemp("make-run"))
    try:
        yield run.start()
    finally:
        still_open = run.stop()
        assert still_open == [], f"still listening after Ctrl-C: {still_open}\n{run.log.read_text()[-3000:]}"
