"""One real `airflow triggerer` holding N deferred gate waits (issue 9).

A throw-away Airflow home on a fresh PostgreSQL database, with a real api-server and scheduler
(LocalExecutor), the sandbox GitLab and a real Prometheus scraping the traffic exporter. For each N
(env BENCH_TRIGGERS, default "100,1000"):

1. start a fresh `airflow triggerer --capacity max(N, 1000)`, note its memory with nothing to run;
2. put N runs of the bench DAG (bench/triggerer_dag/) into `deferred` on a `GatesOpenTrigger` waiting on the
   traffic gate (rows written through Airflow's ORM by bench/support/seed_deferred.py, exactly what a worker
   leaves behind when `WaitForGatesOperator` defers: see that file for why);
3. wait until the triggerer has picked up all N and each has polled GitLab once, then sample the triggerer's
   memory (process tree: RSS and PSS) and CPU share (/proc/<pid>/stat over a window);
4. drop traffic below the threshold and, from the moment Prometheus reports it, time for every task instance
   (a) the trigger event (TI leaves `deferred`) and (b) the task resuming on a LocalExecutor worker
   (TI seen `running` or `success`), polling the metadata DB every 0.2 s. Resumes are timed until
   BENCH_RESUME_GRACE seconds (default 60) after the last trigger event: at N=1,000 one LocalExecutor on
   2 cores needs minutes to start them all, and the output says how many made it.

Other knobs: BENCH_SAMPLE_SECONDS (CPU window, 20), BENCH_EVENT_TIMEOUT (600), BENCH_PARALLELISM (8),
BENCH_KEEP_WORKDIR=1 keeps the Airflow home and logs for a look afterwards.

Every process it starts is stopped and the database dropped, also on Ctrl-C or failure. Figures are
printed with the load average: other work on the machine makes the CPU share noisy.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from include.sandbox.lifecycle import free_port  # noqa: E402 - once the project is on sys.path

SIZES = [int(n) for n in os.environ.get("BENCH_TRIGGERS", "100,1000").split(",") if n.strip()]
POLL_SECONDS = 5  # gates.poll_interval of the bench policy
SAMPLE_SECONDS = float(os.environ.get("BENCH_SAMPLE_SECONDS", "20"))
EVENT_TIMEOUT = float(os.environ.get("BENCH_EVENT_TIMEOUT", "600"))  # gate open → every trigger fired
# After the last trigger event, how long to keep timing resumes: a LocalExecutor on 2 cores starts a few
# tasks a second, so draining 1,000 resumes would take the bench past its ~10 minute budget.
RESUME_GRACE = float(os.environ.get("BENCH_RESUME_GRACE", "60"))
PARALLELISM = int(os.environ.get("BENCH_PARALLELISM", "8"))
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
DAG_ID = "pdm_bench_gate_wait"
TRAFFIC = 'sum(gitlab_component_ops:rate_5m{env="gprd"})'
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A step of the bench did not happen; the message says which and where to look."""


# --- process tree figures from /proc -------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (by parent pid), alive now."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of `pids` (field 14, 15 of /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def memory_mib(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) summed over `pids`, MiB. PSS shares pages between the forked processes fairly."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- infrastructure --------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, context: Callable[[], str]) -> Any:
    """Poll until truthy, else raise naming `what` with `context()` (log tails)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - not there yet
            last = exc
        time.sleep(0.5)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})\n{context()}")


@contextmanager
def metadata_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the Airflow metadata, dropped afterwards."""
    import psycopg2

    name = f"pdm_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(**PG, connect_timeout=5)
    except Exception as exc:
        raise BenchError(f"PostgreSQL on {PG['host']}:{PG['port']} is required: {exc}") from exc
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


class Processes:
    """Airflow components started by the bench, each in its own session, stopped by process group."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        out = (self.logs / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running[name] = process
        return process

    def stop(self, name: str) -> None:
        process = self.running.pop(name, None)
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def check_alive(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                raise BenchError(f"airflow {name} exited with {process.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, chars: int = 2500) -> str:
        path = self.logs / f"{name}.log"
        return f"--- {path}\n{path.read_text()[-chars:]}" if path.exists() else f"(no {path})"

    def tails(self) -> str:
        return "\n".join(self.tail(p.stem) for p in sorted(self.logs.glob("*.log")))


def run_airflow(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise BenchError(f"`airflow {' '.join(args)}` failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout


def airflow_env(home: Path, dags: Path, database: str, port: int, policy: Path, gitlab: str, token: str,
                prometheus: str) -> dict[str, str]:  # fmt: skip
    conn = f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{database}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        PYTHONPATH=f"{ROOT}:{ROOT / 'plugins'}",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM=str(PARALLELISM),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=conn,
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(16),
        AIRFLOW__API__SECRET_KEY=secrets.token_hex(16),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY="512",
        AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC="2",
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        PDM_BENCH_POLICY_FILE=str(policy),
        AIRFLOW_CONN_GITLAB_DEFAULT=json.dumps({"conn_type": "http", "host": gitlab, "password": token}),
        AIRFLOW_CONN_PROMETHEUS_DEFAULT=prometheus,
    )
    return env


# --- one measurement --------------------------------------------------------------------------------------


class MetadataReader:
    """Reads the bench TIs' states straight from the metadata DB (psycopg2, no Airflow import)."""

    def __init__(self, database: str) -> None:
        import psycopg2

        self.conn = psycopg2.connect(**{**PG, "dbname": database})
        self.conn.autocommit = True

    def states(self, prefix: str) -> dict[str, str]:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT run_id, coalesce(state, 'none') FROM task_instance WHERE dag_id = %s AND run_id LIKE %s",
                (DAG_ID, prefix + "%"),
            )
            return dict(cur.fetchall())

    def assigned_triggers(self, prefix: str) -> int:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
                "WHERE ti.dag_id = %s AND ti.run_id LIKE %s AND t.triggerer_id IS NOT NULL",
                (DAG_ID, prefix + "%"),
            )
            return cur.fetchone()[0]

    def triggerer_alive(self, since: datetime) -> bool:
        """A triggerer job heartbeat after `since` (so not the previous N's triggerer)."""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM job WHERE job_type = 'TriggererJob' AND state = 'running' "
                "AND latest_heartbeat > %s",
                (since,),
            )
            return cur.fetchone()[0] > 0

    def close(self) -> None:
        self.conn.close()


def measure(size: int, processes: Processes, env: dict[str, str], db: MetadataReader, sandbox, exporter,
            prometheus) -> dict[str, Any]:  # fmt: skip
    """Start a triggerer, give it `size` deferred gate waits, sample it, open the gate, time the resumes."""
    exporter.set_value("gprd", "ops", 5000.0)
    prometheus.wait_for_value(TRAFFIC, lambda v: v == 5000.0, timeout=60)
    name = f"triggerer-{size}"
    since = datetime.now(UTC)
    triggerer = processes.start(name, "triggerer", "--capacity", str(max(size, 1000)))
    wait_until(lambda: db.triggerer_alive(since), 120, f"{name} to register its job", processes.tails)
    time.sleep(POLL_SECONDS)  # its trigger-runner subprocess is up and idle
    idle_rss, idle_pss = memory_mib(process_tree(triggerer.pid))

    prefix = f"bench_n{size}_"
    seeded = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "support" / "seed_deferred.py"), str(size), prefix],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if seeded.returncode != 0:
        raise BenchError(f"seeding {size} deferred runs failed:\n{seeded.stderr[-3000:]}")
    seed_seconds = json.loads(seeded.stdout.strip().splitlines()[-1])["seconds"]
    deferred = db.states(prefix)
    if len(deferred) != size or set(deferred.values()) != {"deferred"}:
        raise BenchError(f"expected {size} deferred TIs, found {len(deferred)}: {set(deferred.values())}")

    loaded_at = time.monotonic()

    def all_loaded() -> bool:
        processes.check_alive()
        return db.assigned_triggers(prefix) >= size

    wait_until(all_loaded, 300, f"{name} to take all {size} triggers", lambda: processes.tail(name))
    # Every trigger logs its first gate check into the task's trigger log: wait until all N have checked.
    checked: set[Path] = set()
    task_logs = Path(env["AIRFLOW_HOME"]) / "logs" / f"dag_id={DAG_ID}"

    def all_checked() -> bool:
        processes.check_alive()
        for path in task_logs.glob(f"run_id={prefix}*/task_id=*/attempt=*.log.trigger.*.log"):
            if path not in checked and "gates closed" in path.read_text(errors="replace"):
                checked.add(path)
        return len(checked) >= size

    wait_until(
        all_checked, 600, f"all {size} triggers to log their first gate check", lambda: processes.tail(name)
    )
    load_seconds = time.monotonic() - loaded_at
    time.sleep(POLL_SECONDS)  # steady state: past the first, synchronised, round of checks

    tree = process_tree(triggerer.pid)
    cpu_before, wall_before, own_before = cpu_seconds(tree), time.monotonic(), time.process_time()
    requests_before = sum(sandbox.world.requests.values())
    time.sleep(SAMPLE_SECONDS)
    tree = process_tree(triggerer.pid)
    wall = time.monotonic() - wall_before
    cpu_share = (cpu_seconds(tree) - cpu_before) / wall
    sandbox_cpu = (time.process_time() - own_before) / wall  # this process: the sandbox GitLab's threads
    gitlab_rate = (sum(sandbox.world.requests.values()) - requests_before) / wall
    rss, pss = memory_mib(tree)
    load = os.getloadavg()
    still = db.states(prefix)
    if set(still.values()) != {"deferred"}:
        raise BenchError(f"TIs left deferred before the gate opened: {sorted(set(still.values()))}")

    # Open the gate: traffic drops; t0 is when Prometheus first reports it.
    exporter.set_value("gprd", "ops", 100.0)
    prometheus.wait_for_value(TRAFFIC, lambda v: v == 100.0, timeout=60)
    opened = time.monotonic()
    fired: dict[str, float] = {}
    resumed: dict[str, float] = {}
    deadline = opened + EVENT_TIMEOUT
    while time.monotonic() < deadline and len(resumed) < size:
        now = time.monotonic()
        processes.check_alive()
        for run_id, state in db.states(prefix).items():
            if state != "deferred" and run_id not in fired:
                fired[run_id] = now - opened
            if state in ("running", "success") and run_id not in resumed:
                resumed[run_id] = now - opened
        if len(fired) == size:
            deadline = min(deadline, opened + max(fired.values()) + RESUME_GRACE)
        time.sleep(0.2)
    final = db.states(prefix)
    processes.stop(name)
    return {
        "n": size,
        "seed_s": seed_seconds,
        "load_s": load_seconds,
        "idle_rss": idle_rss,
        "idle_pss": idle_pss,
        "rss": rss,
        "pss": pss,
        "cpu": cpu_share,
        "gitlab_rps": gitlab_rate,
        "sandbox_cpu": sandbox_cpu,
        "load": load,
        "fired": list(fired.values()),
        "resumed": list(resumed.values()),
        "final": {s: list(final.values()).count(s) for s in sorted(set(final.values()))},
        "processes": len(tree),
    }


def describe(delays: list[float], size: int) -> str:
    """p50/p95/max; when not all arrived, over those that did, and says how many."""
    if not delays:
        return f"none of {size} before the bench stopped waiting"
    done = "" if len(delays) == size else f" — only {len(delays)}/{size} before the bench stopped waiting"
    return (
        f"p50 {percentile(delays, 0.5):5.1f} s, p95 {percentile(delays, 0.95):5.1f} s, "
        f"max {max(delays):5.1f} s{done}"
    )


def report(r: dict[str, Any]) -> None:
    """The figures of one N, several lines."""
    n = r["n"]
    print(
        f"N={n}: seeded in {r['seed_s']:.0f} s; triggerer took and first-checked all in {r['load_s']:.0f} s"
    )
    print(
        f"  triggerer ({r['processes']} processes) idle: RSS {r['idle_rss']:.0f} MiB, PSS {r['idle_pss']:.0f} MiB;"
        f" holding {n}: RSS {r['rss']:.0f} MiB, PSS {r['pss']:.0f} MiB (incl. importing the gate code once)"
    )
    print(
        f"  CPU while waiting: {r['cpu'] * 100:.0f}% of a core over {SAMPLE_SECONDS:.0f} s; the sandbox GitLab"
        f" served {r['gitlab_rps']:.0f} requests/s ({r['sandbox_cpu'] * 100:.0f}% of a core);"
        f" load average {r['load'][0]:.2f} (1 min) {r['load'][1]:.2f} (5 min)"
    )
    print(f"  gate open → trigger event (TI leaves deferred): {describe(r['fired'], n)}")
    print(f"  gate open → task resumed (TI running/success):  {describe(r['resumed'], n)}")
    resumed = sorted(r["resumed"])
    if len(resumed) > 1 and resumed[-1] > resumed[0]:
        rate = (len(resumed) - 1) / (resumed[-1] - resumed[0])
        print(f"  resumes started at {rate:.1f}/s (LocalExecutor, parallelism {PARALLELISM})")
    print(f"  TI states when the bench stopped waiting: {r['final']}")


def summary(r: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """One line per N; the memory per wait is the slope between the smallest and this N (one-time costs
    such as importing the gate code cancel out)."""
    n = r["n"]
    smallest = min(results, key=lambda x: x["n"])
    if smallest["n"] < n:
        per_wait = f"{(r['pss'] - smallest['pss']) * 1024 / (n - smallest['n']):.0f} KiB/wait above N={smallest['n']}"
    else:
        per_wait = f"{(r['pss'] - r['idle_pss']) * 1024 / n:.0f} KiB/wait above idle"

    def short(delays: list[float]) -> str:
        if not delays:
            return "none"
        return f"p50 {percentile(delays, 0.5):.1f} / p95 {percentile(delays, 0.95):.1f} / max {max(delays):.1f} s"

    return (
        f"SUMMARY N={n}: triggerer PSS {r['pss']:.0f} MiB (RSS {r['rss']:.0f}; {per_wait}), "
        f"CPU {r['cpu'] * 100:.0f}% of a core; gate→event {short(r['fired'])}; "
        f"gate→resumed {short(r['resumed'])} ({len(r['resumed'])}/{n}); load {r['load'][0]:.2f}"
    )


def main() -> int:
    from include.sandbox.gitlab_server import SandboxGitLab
    from include.sandbox.prometheus_server import PrometheusServer
    from include.sandbox.traffic_exporter import TrafficExporter
    from tests.support.policies import e2e_policy, write_policy
    from tests.support.scenarios import world

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    token = "bench-token-0000"
    work = Path(tempfile.mkdtemp(prefix="pdm-bench-triggerer-"))
    results = []
    with ExitStack() as stack:
        if not os.environ.get("BENCH_KEEP_WORKDIR"):
            stack.callback(shutil.rmtree, work, ignore_errors=True)
        policy = e2e_policy(max_wait="30m")
        policy["gates"]["poll_interval"] = f"{POLL_SECONDS}s"
        policy_path = write_policy(work / "policy.yaml", policy)
        sandbox = SandboxGitLab(world(), token=token).start()
        stack.callback(sandbox.stop)
        exporter = TrafficExporter().start()
        stack.callback(exporter.stop)
        prometheus = PrometheusServer(work / "prometheus", [exporter.address]).start()
        stack.callback(prometheus.stop)
        database = stack.enter_context(metadata_database())
        dags = work / "dags"
        dags.mkdir()
        shutil.copy(ROOT / "bench" / "triggerer_dag" / "pdm_bench_gate_wait.py", dags)
        logs = work / "logs"
        logs.mkdir()
        port = free_port()
        env = airflow_env(
            work / "airflow", dags, database, port, policy_path, sandbox.url, token, prometheus.url
        )
        started = time.monotonic()
        run_airflow(env, "db", "migrate")
        run_airflow(env, "dags", "reserialize")
        processes = Processes(env, logs)
        stack.callback(processes.stop_all)
        processes.start("api-server", "api-server", "--port", str(port))
        processes.start("scheduler", "scheduler")
        wait_until(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5),
            180,
            "the api-server",
            processes.tails,
        )
        db = MetadataReader(database)
        stack.callback(db.close)
        print(
            f"set-up {time.monotonic() - started:.0f} s. Gate poll interval {POLL_SECONDS} s (each check reads "
            f"GitLab deployments, pipelines, issues and Prometheus); traffic sustain {policy['gates']['traffic']['sustain']}; "
            f"LocalExecutor parallelism {PARALLELISM}; {os.cpu_count()} cores",
            flush=True,
        )
        try:
            for size in SIZES:
                result = measure(size, processes, env, db, sandbox, exporter, prometheus)
                report(result)
                results.append(result)
                sys.stdout.flush()
        except BenchError:
            print(f"log tails from {logs}:\n{processes.tails()}", file=sys.stderr)
            raise
    if os.environ.get("BENCH_KEEP_WORKDIR"):
        print(f"work directory kept: {work}")
    for result in results:
        print(summary(result, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
