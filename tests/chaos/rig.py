"""The real parts a chaos campaign runs against, started and stopped together: PostgreSQL audit database
(reached by Airflow through a TCP proxy the campaign can cut), the sandbox GitLab, a real Prometheus scraping
a settable exporter, and `airflow standalone` (scheduler, LocalExecutor task processes, triggerer)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import psycopg2

from include.audit import AuditStore, AuditTarget
from include.sandbox.gitlab_server import SandboxGitLab
from include.sandbox.prometheus_server import PrometheusServer
from include.sandbox.traffic_exporter import TrafficExporter
from tests.support.policies import e2e_policy, write_policy
from tests.support.processes import free_port
from tests.support.scenarios import world
from tests.support.standalone import Standalone

TOKEN = "chaos-sandbox-token-5f4e3d2c1b"
PG = {
    "host": os.environ.get("PDM_TEST_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("PDM_TEST_PG_PORT", "5432")),
}
PG_USER = os.environ.get("PDM_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("PDM_TEST_PG_DB", "test")


class TcpProxy:
    """A TCP forwarder to PostgreSQL that can be taken down (listener closed, live connections cut) and
    brought back on the same port: the audit database "down and restarted" as the tasks see it, without
    touching the PostgreSQL server other work shares."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.up()

    def up(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            for attempt in range(50):  # the old listener may take a moment to go
                try:
                    listener.bind(("127.0.0.1", self.port))
                    break
                except OSError:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
            listener.listen(64)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, []
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
            except OSError:
                pass
            listener.close()
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        raise OSError("closed")
                    (b if src is a else a).sendall(data)
        except (OSError, ValueError):
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass


class Rig:
    """Everything one campaign talks to; `stop()` undoes all of it (the database is dropped)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.database = f"pdm_chaos_{uuid.uuid4().hex[:10]}"
        self.admin = psycopg2.connect(user=PG_USER, dbname=PG_ADMIN_DB, connect_timeout=5, **PG)
        self.admin.autocommit = True
        with self.admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.database}"')
            cur.execute(f'CREATE DATABASE "{self.database}_meta"')  # Airflow's: concurrent runs lock SQLite
        self.direct_uri = f"postgresql://{PG_USER}@{PG['host']}:{PG['port']}/{self.database}"
        self.audit = AuditStore(AuditTarget.from_uri(self.direct_uri))
        self.audit.migrate()
        self.proxy = TcpProxy((PG["host"], PG["port"]))
        self.sandbox: SandboxGitLab | None = None
        self.exporter: TrafficExporter | None = None
        self.prometheus: PrometheusServer | None = None
        self.airflow: Standalone | None = None

    def start(self, env_extra: dict[str, str] | None = None) -> Rig:
        self.sandbox = SandboxGitLab(world({}, running_seconds=3), token=TOKEN).start()
        self.exporter = TrafficExporter().start()
        self.exporter.set_value("gprd", "ops", 100.0)
        self.prometheus = PrometheusServer(self.workdir / "prometheus", [self.exporter.address]).start()
        self.prometheus.wait_until_scraped()
        policy = e2e_policy(max_wait="90s")
        policy["environments"]["gprd"]["schedule"] = True  # scheduled and backfill runs beside manual ones
        policy_path = write_policy(self.workdir / "policy.yaml", policy)
        proxied = f"postgresql://{PG_USER}@127.0.0.1:{self.proxy.port}/{self.database}"
        env = {
            "PDM_POLICY_FILE": str(policy_path),
            "PDM_PIPELINE_POLL_SECONDS": "1",
            "PDM_RETRY_DELAY_SECONDS": "2",
            "PDM_INFLIGHT_LOOKUP_SECONDS": "15",
            "PDM_PIPELINE_TIMEOUT_SECONDS": "180",
            "AIRFLOW_CONN_GITLAB_DEFAULT": json.dumps(
                {
                    "conn_type": "http",
                    "host": self.sandbox.url,
                    "password": TOKEN,
                    "extra": {"timeout": 5, "max_retries": 2},
                }
            ),
            "AIRFLOW_CONN_PROMETHEUS_DEFAULT": self.prometheus.url,
            "AIRFLOW_CONN_PDM_AUDIT": proxied,
            "AIRFLOW__CORE__PARALLELISM": "6",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                f"postgresql+psycopg2://{PG_USER}@{PG['host']}:{PG['port']}/{self.database}_meta"
            ),
            **(env_extra or {}),
        }
        self.airflow = Standalone(self.workdir, env).start()
        self.airflow.wait_for_dag("pdm_gprd")
        return self

    def set_traffic(self, value: float) -> None:
        assert self.exporter and self.prometheus
        self.exporter.set_value("gprd", "ops", value)
        if value == value:  # not NaN: wait until Prometheus has it
            self.prometheus.wait_for_value(
                'sum(gitlab_component_ops:rate_5m{env="gprd"})', lambda seen: seen == value, 20
            )

    def kill_task(self, pid: int) -> bool:
        """SIGKILL a task process, only if it is a descendant of the standalone this rig started."""
        assert self.airflow and self.airflow.process
        try:
            victim = psutil.Process(pid)
            if self.airflow.process.pid not in {p.pid for p in victim.parents()}:
                return False
            os.kill(pid, signal.SIGKILL)
            victim.wait(timeout=10)
            return True
        except (psutil.NoSuchProcess, ProcessLookupError, psutil.TimeoutExpired):
            return False

    def stop(self) -> None:
        for stop in (
            lambda: self.airflow and self.airflow.stop(),
            lambda: self.sandbox and self.sandbox.stop(),
            lambda: self.prometheus and self.prometheus.stop(),
            lambda: self.exporter and self.exporter.stop(),
            self.proxy.down,
        ):
            try:
                stop()
            except Exception:  # noqa: BLE001 - tear everything down whatever failed
                pass
        with self.admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            cur.execute(f'DROP DATABASE IF EXISTS "{self.database}_meta" WITH (FORCE)')
        self.admin.close()

    def api(self, path: str, data: dict[str, Any] | None = None, method: str | None = None) -> Any:
        """The REST API, patient with a loaded machine: timeouts and 5xx are asked again (4xx are not)."""
        import urllib.error

        from tests.support.processes import call_json

        assert self.airflow
        for attempt in range(6):
            try:
                return call_json(f"{self.airflow.base}{path}", None, data, method, timeout=30)
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == 5:
                    raise
            except (TimeoutError, urllib.error.URLError, ConnectionError):
                if attempt == 5:
                    raise
            time.sleep(2)
        raise AssertionError("unreachable")
