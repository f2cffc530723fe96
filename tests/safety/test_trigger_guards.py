"""Issue 14: the trigger task creates a pipeline only for what was decided, and never twice.

Unit tests of the trigger operator's guards with in-process gate evaluators and GitLab answers (pure
logic); the real processes are exercised by tests/e2e and the chaos campaign."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from include.gates.result import GateResult


@pytest.fixture
def operator_and_policy(tmp_path):
    from include.policy import load_policy
    from pdm_orchestrator.operators.pipeline import TriggerPdmPipelineOperator
    from tests.support.policies import e2e_policy

    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(e2e_policy()))
    operator = TriggerPdmPipelineOperator(
        task_id="trigger_pipeline", environment="gprd", policy_path=str(path), snapshot_task_id="classify"
    )
    return operator, load_policy(path).for_environment("gprd")


def _gates(**closed: str):
    def evaluate(policy, environment, cls, now, batch=None):
        return [
            GateResult(name, name not in closed, None, None, closed.get(name, "ok"))
            for name in ("window", "traffic", "deploy_lock", "rollback_safety")
        ]

    return evaluate


# -- hole 3: stale gates on retry or clear ------------------------------------------------------------
def test_every_gate_is_judged_again_before_the_create(operator_and_policy):
    """Fails before the fix: only the window was re-checked, so a retry created on stale traffic,
    deploy-lock and incident verdicts."""
    from airflow.sdk.exceptions import AirflowFailException

    operator, policy = operator_and_policy
    now = datetime.now(UTC)
    snapshot = {"run_class": "background"}
    for gate, reason in (
        ("traffic", "traffic 900 req/s ≥ threshold 600"),
        ("deploy_lock", "deployment 42 running"),
        ("rollback_safety", "incident #7 severity::1 open"),
    ):
        with pytest.raises(AirflowFailException, match=f"closed after the decision: gates closed: {gate}"):
            operator.check_gates_still_open(policy, snapshot, {}, now, _gates(**{gate: reason}))
    assert operator.check_gates_still_open(policy, snapshot, {}, now, _gates()).go


def test_overrides_still_apply_at_the_recheck(operator_and_policy):
    operator, policy = operator_and_policy
    params = {"override_gates": ["traffic"], "override_reason": "INC-1234 approved by the EOC"}
    verdict = operator.check_gates_still_open(
        policy, {"run_class": "background"}, params, datetime.now(UTC), _gates(traffic="busy")
    )
    assert verdict.go and verdict.overridden == {"traffic": "INC-1234 approved by the EOC"}


# -- the trigger task against the real sandbox GitLab, Prometheus and PostgreSQL ---------------------------
@pytest.fixture
def bench(tmp_path, postgres_database, prometheus_with_traffic, monkeypatch):
    from tests.safety.harness import start_bench

    made = start_bench(tmp_path, postgres_database, prometheus_with_traffic, monkeypatch, running_seconds=30)
    yield made
    made.sandbox.stop()


def _created(bench) -> list[dict]:
    from tests.support.scenarios import RELEASE_TOOLS

    return bench.sandbox.created_pipelines(project=RELEASE_TOOLS)


def test_first_run_creates_once_and_a_retry_resumes(bench):
    state, _ = bench.run("manual__1")
    assert state == "deferred" and len(_created(bench)) == 1
    state, _ = bench.run("manual__1")  # a retry of the same run: same decision, same pipeline
    assert state == "deferred" and len(_created(bench)) == 1


# -- hole 1: migrations that arrived during the wait ----------------------------------------------------
def test_a_package_deployed_during_the_wait_voids_the_decision(bench):
    """Fails before the fix: the pipeline was created and ran the new, unclassified cleanup too."""
    from tests.support.scenarios import APP, CLEANUP, NEW_SHA

    newer = "3" * 40
    bench.sandbox.add_commit(
        APP, sha=newer, files_from=NEW_SHA, add={"db/post_migrate/20261125000000_drop_old_column.rb": CLEANUP}
    )
    bench.sandbox.add_deployment(
        APP,
        environment="gprd",
        sha=newer,
        ref="17.6.202611250620",
        status="success",
        created_at="-3h",
        finished_at="-3h",
    )
    state, context = bench.run("manual__void")
    assert state == "skipped" and _created(bench) == []
    (void,) = bench.audit.events(run_id="manual__void", kind="decision_void")
    assert "deployed SHA changed" in void.payload["reason"]
    assert context["ti"].xcom_pull("trigger_pipeline", "halt")["outcome"] == "decision_void"


def test_pending_drift_sees_new_and_gone_versions():
    from include.decision import pending_drift

    snapshot = {"deployed": {"sha": "a"}, "migrations": [{"version": "1", "path": "p1"}]}
    assert pending_drift(snapshot, {"deployed": {"sha": "a"}, "files": [{"version": "1"}]}) is None
    grown = pending_drift(snapshot, {"deployed": {"sha": "a"}, "files": [{"version": "1"}, {"version": "2"}]})
    assert "1 new pending: 2" in grown
    assert "no longer pending: 1" in pending_drift(snapshot, {"deployed": {"sha": "a"}, "files": []})
    admin = {
        "deployed": {"sha": "a"},
        "files": [{"version": "1"}],
        "cross_check": {"only_in_admin_api": ["9"]},
    }
    assert "new pending: 9" in pending_drift(snapshot, admin)


def test_only_classified_versions_are_passed():
    from pdm_orchestrator.operators.pipeline import pipeline_variables

    templates = {"PDM_VERSIONS": "{versions}", "PDM_DECISION": "{decision_id}"}
    snapshot = {
        "migrations": [{"version": "1", "class": "background"}, {"version": "2", "class": "cleanup"}],
        "selected": [{"version": "1", "class": "background"}],
    }
    assert pipeline_variables(templates, "gprd", {}, "d", snapshot)["PDM_VERSIONS"] == "1"
    snapshot["selected"].append({"version": "3", "class": "background", "path": "smuggled.rb"})
    with pytest.raises(ValueError, match="smuggled.rb.*not classified"):
        pipeline_variables(templates, "gprd", {}, "d", snapshot)


# -- hole 2: two runs of one environment ----------------------------------------------------------------
def test_concurrent_runs_of_one_environment_create_one_pipeline(bench):
    """Fails before the fix: each run had its own decision id and so its own exactly-once guard; all three
    (scheduled, manual, backfill) created a pipeline."""
    from concurrent.futures import ThreadPoolExecutor

    runs = ["scheduled__2026-12-03T10:00:00+00:00", "manual__2026-12-03T10:00:00", "backfill__2026-12-03"]
    with ThreadPoolExecutor(len(runs)) as pool:
        states = [state for state, _ in pool.map(bench.run, runs)]
    assert sorted(states) == ["deferred", "skipped", "skipped"], states
    assert len(_created(bench)) == 1
    busy = bench.audit.events(kind="environment_busy")
    assert len(busy) == 2 and all("gprd" in e.payload["reason"] for e in busy)


def test_a_pdm_pipeline_running_in_gitlab_makes_the_environment_busy(bench):
    from tests.support.scenarios import RELEASE_TOOLS

    world = bench.sandbox.world
    world.add_pipeline(
        world.project(RELEASE_TOOLS),
        {"status": "running", "variables": {"PDM_ENVIRONMENT": "gprd"}},
        created_via_api=False,
    )
    state, context = bench.run("manual__second")
    assert state == "skipped" and _created(bench) == []
    assert "already running on gprd" in context["ti"].xcom_pull("trigger_pipeline", "halt")["reason"]
    from include.audit.lease import current_lease

    assert current_lease(bench.audit, "gprd") is None  # given back: nothing was created


def test_the_lease_expires_renews_and_is_released(postgres_audit_store):
    from datetime import timedelta

    from include.audit.lease import acquire_lease, release_lease

    store, now, hour = postgres_audit_store, datetime.now(UTC), timedelta(hours=1)
    assert acquire_lease(store, "gprd", "decision-a", hour, now=now).granted
    assert acquire_lease(store, "gprd", "decision-a", hour, now=now).granted  # the holder renews
    refused = acquire_lease(store, "gprd", "decision-b", hour, now=now)
    assert not refused.granted and refused.holder == "decision-a"
    assert acquire_lease(store, "gstg", "decision-b", hour, now=now).granted  # per environment
    assert acquire_lease(store, "gprd", "decision-b", hour, now=now + 2 * hour).granted  # a crashed holder
    assert not release_lease(store, "gprd", "decision-a") and release_lease(store, "gprd", "decision-b")


# -- hole 4: a create in flight -------------------------------------------------------------------------
def test_a_requested_create_without_a_record_is_looked_up_and_never_repeated(bench, monkeypatch):
    """Fails before the fix: the retry's single lookup missed a pipeline GitLab was still committing, and it
    created a second one."""
    from include.audit import AuditEvent
    from include.decision import decision_id
    from tests.support.scenarios import NEW_SHA

    decision = decision_id("pdm_gprd", "manual__inflight", "gprd", NEW_SHA)
    bench.audit.record(
        AuditEvent("gprd", "pdm_gprd", "manual__inflight", "pipeline_requested", {}, decision_id=decision)
    )
    state, context = bench.run("manual__inflight", inflight_lookup_seconds=1.5)
    assert state.startswith("failed: needs_human") and _created(bench) == []
    assert "nothing is created again" in context["ti"].xcom_pull("trigger_pipeline", "halt")["reason"]
    assert bench.audit.events(run_id="manual__inflight", kind="needs_human")


def test_a_create_in_flight_that_lands_during_the_lookup_is_resumed(bench, monkeypatch):
    import threading

    from include.audit import AuditEvent
    from include.decision import decision_id
    from tests.support.scenarios import NEW_SHA, RELEASE_TOOLS

    decision = decision_id("pdm_gprd", "manual__late", "gprd", NEW_SHA)
    bench.audit.record(
        AuditEvent("gprd", "pdm_gprd", "manual__late", "pipeline_requested", {}, decision_id=decision)
    )
    world = bench.sandbox.world

    def commit_late() -> None:
        world.add_pipeline(
            world.project(RELEASE_TOOLS),
            {"variables": {"PDM_ENVIRONMENT": "gprd", "PDM_DECISION_ID": decision}},
            created_via_api=True,
        )

    timer = threading.Timer(1.0, commit_late)
    timer.start()
    state, _ = bench.run("manual__late", inflight_lookup_seconds=8)
    timer.join()
    assert state == "deferred" and len(_created(bench)) == 1
    (created,) = bench.audit.events(run_id="manual__late", kind="pipeline_created")
    assert created.payload["id"] == _created(bench)[0]["id"]


# -- hole 5: waiting forever ----------------------------------------------------------------------------
def test_the_pipeline_wait_is_bounded_and_manual_is_deliberate():
    from datetime import timedelta

    from include.pipeline_wait import PARKED_MANUAL, TIMEOUT, WaitBounds, wait_verdict

    now = datetime.now(UTC)
    bounds = WaitBounds(deadline=now + timedelta(hours=1), manual_grace=timedelta(minutes=10))
    assert wait_verdict("running", now, bounds, None) is None
    assert wait_verdict("scheduled", now, bounds, None) is None  # a delayed job starts by itself
    assert wait_verdict("running", now + timedelta(hours=1), bounds, None) == TIMEOUT
    assert wait_verdict("manual", now, bounds, now - timedelta(minutes=5)) is None
    assert wait_verdict("manual", now, bounds, now - timedelta(minutes=10)) == PARKED_MANUAL


@pytest.mark.parametrize(
    ("status", "expected", "kwargs"),
    [
        ("manual", "manual", {"manual_grace_seconds": 0.5}),
        ("running", "timeout", {"manual_grace_seconds": 60}),
    ],
)
def test_the_trigger_stops_waiting_on_a_parked_or_endless_pipeline(bench, status, expected, kwargs):
    """Fails before the fix: the trigger polled a manual or endless pipeline forever."""
    import asyncio
    from datetime import timedelta

    from pdm_orchestrator.triggers.pipeline import PipelineFinishedTrigger
    from tests.support.scenarios import RELEASE_TOOLS

    world = bench.sandbox.world
    pipeline = world.add_pipeline(world.project(RELEASE_TOOLS), {"status": status}, created_via_api=False)
    trigger = PipelineFinishedTrigger(
        gitlab_conn_id="gitlab_default",
        project=RELEASE_TOOLS,
        pipeline_id=pipeline["id"],
        poll_seconds=0.2,
        deadline=(datetime.now(UTC) + timedelta(seconds=1.5)).isoformat(),
        **kwargs,
    )

    async def first_event():
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(asyncio.wait_for(first_event(), 20))
    assert event["status"] == expected and event["pipeline"]["id"] == pipeline["id"]


def test_a_stopped_wait_is_an_audited_failing_outcome(bench):
    from pdm_orchestrator.operators.pipeline import PdmRunHalted
    from pdm_orchestrator.run_steps import FAILED_OUTCOMES, summarize

    context = bench.context("manual__parked")
    pipeline = {
        "id": 7,
        "status": "manual",
        "web_url": "http://x/7",
        "created_at": datetime.now(UTC).isoformat(),
    }
    with pytest.raises(PdmRunHalted, match="pipeline_parked_manual"):
        bench.operator().execute_complete(context, {"status": "manual", "pipeline": pipeline})
    halt = context["ti"].xcom_pull("trigger_pipeline", "halt")
    outcome = summarize({}, {"go": True}, pipeline, ["trigger_pipeline"], halt)
    assert outcome["outcome"] == "pipeline_parked_manual" and outcome["outcome"] in FAILED_OUTCOMES
    assert bench.audit.events(run_id="manual__parked", kind="pipeline_parked_manual")
