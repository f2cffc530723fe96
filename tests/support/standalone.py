"""`airflow standalone` (SQLite metadata, LocalExecutor; scheduler, dag-processor, triggerer, api-server) as
one process group for slow tests, with the project's DAGs and plugins and an open REST API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.processes import call_json, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Standalone:
    """Start with `start()`, stop with `stop()`; `api()` calls the REST API, `cli()` runs `airflow …`.

    `env` adds to (and wins over) the test's environment minus every AIRFLOW* variable of the test session.
    """

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.home = workdir / "airflow"
        self.log = workdir / "standalone.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        base.update(
            AIRFLOW_HOME=str(self.home),
            PATH=f"{Path(sys.executable).parent}:{base.get('PATH', '')}",
            PYTHONPATH=f"{ROOT}:{ROOT / 'plugins'}",
            AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__PARALLELISM="4",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS="pdm_orchestrator.sqlite_wait.CONNECT_ARGS",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{self.port}",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{self.port}/execution/",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="10",
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
            AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC="2",
        )
        base.update(env)
        if not base.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite").startswith("sqlite"):
            del base["AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS"]  # SQLite only: psycopg2 has no `timeout`
        self.env = base
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2"

    def start(self, timeout: float = 240) -> Standalone:
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "airflow", "standalone"],
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait(
            lambda: self.api("/monitor/health")["scheduler"]["status"] == "healthy",
            timeout,
            "standalone health",
        )
        return self

    def api(self, path: str, data: dict | None = None, method: str | None = None) -> Any:
        return call_json(f"{self.base}{path}", None, data, method)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def wait(self, predicate, timeout: float, what: str) -> Any:
        def died() -> str | None:
            if self.process is not None and self.process.poll() is not None:
                return f"airflow standalone exited with {self.process.returncode}"
            return None

        return wait_for(predicate, timeout, what, lambda: self.log.read_text()[-5000:], died)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Parsed and served, then unpaused (runs of a paused DAG, backfills included, stay queued)."""
        self.wait(lambda: self.api(f"/dags/{dag_id}"), timeout, f"{dag_id} parsed and served")
        self.api(f"/dags/{dag_id}", {"is_paused": False}, method="PATCH")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
