"""Deferred gate waits at scale: N GatesOpenTrigger coroutines in one asyncio loop, as a triggerer runs them,
against the sandbox GitLab and a real Prometheus. Prints memory and CPU while N runs wait on the traffic gate,
and the delay between traffic dropping below the threshold and every trigger firing."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".run" / "bench-airflow"))

SIZES = [int(n) for n in os.environ.get("BENCH_TRIGGERS", "100,1000").split(",")]
POLL_SECONDS = 5.0


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def wait_all(triggers, traffic, prometheus) -> tuple[float, float, float, float]:
    events: list[float] = []

    async def consume(trigger):
        async for _event in trigger.run():
            events.append(time.monotonic())
            return

    tasks = [asyncio.create_task(consume(t)) for t in triggers]
    await asyncio.sleep(POLL_SECONDS * 3)  # every trigger has polled and is waiting
    cpu_before = time.process_time()
    wall_before = time.monotonic()
    await asyncio.sleep(POLL_SECONDS * 4)
    cpu_share = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
    memory = rss_mib()
    await asyncio.to_thread(traffic.set_value, "gprd", "ops", 100.0)
    await asyncio.to_thread(
        prometheus.wait_for_value, 'sum(gitlab_component_ops:rate_5m{env="gprd"})', lambda v: v == 100.0
    )
    opened = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=600)
    delays = sorted(e - opened for e in events)
    return memory, cpu_share, delays[len(delays) // 2], delays[-1]


def main() -> None:
    from include.sandbox.gitlab_server import SandboxGitLab
    from include.sandbox.prometheus_server import PrometheusServer
    from include.sandbox.traffic_exporter import TrafficExporter
    from pdm_orchestrator.triggers.gates import GatesOpenTrigger
    from tests.support.policies import e2e_policy, write_policy
    from tests.support.scenarios import world

    token = "bench-token-0000"
    work = Path(tempfile.mkdtemp())
    policy = e2e_policy(max_wait="30m")
    policy["gates"]["poll_interval"] = f"{int(POLL_SECONDS)}s"
    policy_path = write_policy(work / "policy.yaml", policy)
    sandbox = SandboxGitLab(world(), token=token).start()
    exporter = TrafficExporter().start()
    prometheus = PrometheusServer(work / "prometheus", [exporter.address]).start()
    os.environ["AIRFLOW_CONN_GITLAB_DEFAULT"] = json.dumps(
        {"conn_type": "http", "host": sandbox.url, "password": token}
    )
    os.environ["AIRFLOW_CONN_PROMETHEUS_DEFAULT"] = prometheus.url
    try:
        print(
            f"poll interval {POLL_SECONDS:.0f} s; each poll reads GitLab (deployments, pipelines, issues) and Prometheus"
        )
        for size in SIZES:
            exporter.set_value("gprd", "ops", 5000.0)
            prometheus.wait_for_value('sum(gitlab_component_ops:rate_5m{env="gprd"})', lambda v: v == 5000.0)
            base = rss_mib()
            deadline = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
            triggers = [
                GatesOpenTrigger(
                    environment="gprd",
                    policy_path=str(policy_path),
                    run_class="background",
                    deadline=deadline,
                    poll_seconds=POLL_SECONDS,
                )
                for _ in range(size)
            ]
            memory, cpu, p50, worst = asyncio.run(wait_all(triggers, exporter, prometheus))
            print(
                f"N={size:5d}: RSS {memory:7.1f} MiB ({(memory - base) * 1024 / size:6.1f} KiB per wait), "
                f"CPU while waiting {cpu * 100:5.1f}% of a core, gate open → trigger fired p50 {p50:5.1f} s, max {worst:5.1f} s"
            )
    finally:
        prometheus.stop()
        exporter.stop()
        sandbox.stop()
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
