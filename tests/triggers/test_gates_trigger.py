"""The deferrable triggers run as the triggerer runs them (their async generator, under asyncio), against the
real sandbox GitLab over HTTP and the real Prometheus fixture: no fakes of the gates or the sources."""

from __future__ import annotations

import asyncio
import importlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from include.sandbox.gitlab_server import SandboxGitLab
from tests.support.policies import e2e_policy, write_policy
from tests.support.scenarios import RELEASE_TOOLS, world

TOKEN = "trigger-test-token-1a2b3c4d5e"
pytestmark = pytest.mark.integration


@pytest.fixture
def sources(prometheus_with_traffic, monkeypatch):
    """The sandbox GitLab (package baked 5h, nothing running) and Prometheus at 100 req/s on gprd."""
    server = SandboxGitLab(world({}), token=TOKEN).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_GITLAB_DEFAULT",
        json.dumps(
            {
                "conn_type": "http",
                "host": server.url,
                "password": TOKEN,
                "extra": {"timeout": 5, "max_retries": 0},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", prometheus_with_traffic.url)
    prometheus_with_traffic.set_traffic("gprd", 100.0)
    yield server
    server.stop()


@pytest.fixture
def checks(monkeypatch):
    """Every gate evaluation the trigger makes, with its time: the real evaluate_gates, counted."""
    import pdm_orchestrator.gate_checks as gate_checks

    made: list[datetime] = []
    real = gate_checks.evaluate_gates

    def counted(*args, **kwargs):
        made.append(datetime.now(UTC))
        return real(*args, **kwargs)

    monkeypatch.setattr(gate_checks, "evaluate_gates", counted)
    return made


def policy_file(tmp_path, locks=None, **kwargs) -> str:
    data = e2e_policy(**kwargs)
    data["gates"]["traffic"]["sustain"] = "3s"
    data["change_locks"] = locks or []
    return str(write_policy(tmp_path / "policy.yaml", data))


def gates_trigger(policy_path: str, deadline: datetime, poll_seconds: float = 60.0, overrides=None):
    from pdm_orchestrator.triggers.gates import GatesOpenTrigger

    return GatesOpenTrigger(
        environment="gprd",
        policy_path=policy_path,
        run_class="data",
        deadline=deadline.isoformat(),
        poll_seconds=poll_seconds,
        overrides=overrides,
    )


def run(trigger, timeout: float = 60) -> list:
    async def collect():
        return [event async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(collect(), timeout))


def by_gate(event) -> dict[str, dict]:
    return {r["gate"]: r for r in event.payload["results"]}


def test_window_opening_wakes_the_trigger_at_that_instant(sources, checks, tmp_path):
    """A change lock ends in a few seconds: the trigger sleeps until exactly then (2 checks), though polling
    is 60 s."""
    import pdm_orchestrator.gate_checks  # noqa: F401 - warm the imports, not the clock
    from include.policy import load_policy

    load_policy(policy_file(tmp_path))
    ends = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
    lock = {"name": "short freeze", "from": (ends - timedelta(hours=1)).isoformat(), "to": ends.isoformat()}
    events = run(gates_trigger(policy_file(tmp_path, [lock]), ends + timedelta(minutes=5)))
    assert len(events) == 1
    assert events[0].payload["status"] == "open"
    assert all(r["open"] for r in events[0].payload["results"])
    assert len(checks) == 2, (ends, checks)  # no busy polling
    assert ends <= checks[1] < ends + timedelta(seconds=1.5)


def test_gate_opens_when_traffic_drops(sources, checks, tmp_path, prometheus_with_traffic):
    """Traffic above the class threshold: polled every second; it opens after the rate drops and stays down."""
    path = policy_file(tmp_path, traffic_threshold=50)

    async def scenario():
        async def lower_later():
            await asyncio.sleep(2)
            await asyncio.to_thread(prometheus_with_traffic.set_traffic, "gprd", 10.0)

        lowering = asyncio.create_task(lower_later())
        events = [e async for e in gates_trigger(path, datetime.now(UTC) + timedelta(seconds=40), 1.0).run()]
        await lowering
        return events

    try:
        events = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        prometheus_with_traffic.set_traffic("gprd", 100.0)
    assert events[-1].payload["status"] == "open"
    assert by_gate(events[-1])["traffic"]["reason"].startswith(
        "traffic peaked at 10.0 req/s, below threshold 50.0"
    )
    assert 3 <= len(checks) <= 40


def test_deadline_passes_with_an_explicit_closed_outcome(sources, checks, tmp_path):
    deadline = datetime.now(UTC) + timedelta(seconds=3)
    events = run(gates_trigger(policy_file(tmp_path, traffic_threshold=50), deadline, poll_seconds=1.0))
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "closed" and payload["deadline"] == deadline.isoformat()
    assert by_gate(events[0])["traffic"]["reason"].startswith("traffic 100.0 req/s ≥ threshold 50.0")
    assert 2 <= len(checks) <= 5  # polled at 1 s, stopped at the deadline


def test_window_beyond_the_deadline_is_not_waited_for(sources, checks, tmp_path):
    ends = datetime.now(UTC) + timedelta(hours=2)
    lock = {
        "name": "long freeze",
        "from": "2026-01-01T00:00:00Z",
        "to": ends.replace(microsecond=0).isoformat(),
    }
    events = run(gates_trigger(policy_file(tmp_path, [lock]), datetime.now(UTC) + timedelta(minutes=5)))
    assert events[0].payload["status"] == "closed"
    assert by_gate(events[0])["window"]["reason"].startswith('data blocked by change lock "long freeze"')
    assert len(checks) == 1


def test_gitlab_fault_keeps_gates_closed_with_the_reason(sources, checks, tmp_path):
    sources.inject_fault(r"/deployments", status=503, count=1000)
    sources.inject_fault(r"/issues", status=503, count=1000)
    events = run(
        gates_trigger(policy_file(tmp_path), datetime.now(UTC) + timedelta(seconds=2), poll_seconds=1.0)
    )
    gates = by_gate(events[0])
    assert events[0].payload["status"] == "closed"
    assert gates["deploy_lock"]["reason"].startswith(
        "deploy lock unknown: GitLab GET /projects/:id/deployments"
    )
    assert gates["rollback_safety"]["reason"].startswith(
        "rollback safety unknown: GitLab GET /projects/:id/deployments"
    )
    assert gates["window"]["open"] and gates["traffic"]["open"]


def test_prometheus_fault_keeps_the_traffic_gate_closed(sources, checks, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", "http://127.0.0.1:9")
    events = run(
        gates_trigger(policy_file(tmp_path), datetime.now(UTC) + timedelta(seconds=2), poll_seconds=1.0)
    )
    traffic = by_gate(events[0])["traffic"]
    assert events[0].payload["status"] == "closed"
    assert traffic["reason"].startswith(
        "traffic unknown: http://127.0.0.1:9/api/v1/query_range: ConnectionError"
    )


def test_overridden_gate_does_not_hold_the_trigger(sources, checks, tmp_path):
    events = run(
        gates_trigger(
            policy_file(tmp_path, traffic_threshold=50),
            datetime.now(UTC) + timedelta(seconds=30),
            overrides={"traffic": "load test traffic, approved by the release manager"},
        )
    )
    assert events[0].payload["status"] == "open"
    assert not by_gate(events[0])["traffic"]["open"]  # still reported closed, but overridden
    assert len(checks) == 1


def test_gates_trigger_serialize_round_trips(tmp_path):
    trigger = gates_trigger(
        "config/policy.yaml", datetime(2026, 11, 25, 12, tzinfo=UTC), 30.0, {"window": "why"}
    )
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert kwargs["overrides"] == {"window": "why"} and kwargs["deadline"] == "2026-11-25T12:00:00+00:00"


# -- the pipeline trigger ------------------------------------------------------------------------------------


def test_pipeline_trigger_waits_for_the_pipeline_to_finish(sources):
    from pdm_orchestrator.hooks.gitlab import GitLabHook
    from pdm_orchestrator.triggers.pipeline import PipelineFinishedTrigger

    pipeline = GitLabHook().create_pipeline(RELEASE_TOOLS, "master", {"PDM_ENVIRONMENT": "gprd"})
    trigger = PipelineFinishedTrigger(
        gitlab_conn_id="gitlab_default", project=RELEASE_TOOLS, pipeline_id=pipeline.id, poll_seconds=0.5
    )
    events = run(trigger, timeout=30)
    assert len(events) == 1
    assert events[0].payload["status"] == "finished"
    assert events[0].payload["pipeline"]["id"] == pipeline.id
    assert events[0].payload["pipeline"]["status"] == "success"
    path, kwargs = trigger.serialize()
    assert PipelineFinishedTrigger(**kwargs).serialize() == (path, kwargs)


def test_pipeline_trigger_gives_up_after_consecutive_errors(sources):
    from pdm_orchestrator.triggers.pipeline import PipelineFinishedTrigger

    sources.inject_fault(r"/pipelines/", status=502, count=1000)
    trigger = PipelineFinishedTrigger(
        gitlab_conn_id="gitlab_default", project=RELEASE_TOOLS, pipeline_id=4242, poll_seconds=0.1,
        max_consecutive_errors=3,
    )  # fmt: skip
    events = run(trigger, timeout=30)
    assert events[0].payload["status"] == "error"
    assert events[0].payload["pipeline_id"] == 4242
    assert "GitLab GET /projects/:id/pipelines/:pipeline_id" in events[0].payload["message"]
