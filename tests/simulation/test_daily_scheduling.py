"""Issue 17's levers in the simulator: the forecast's precision/recall, and the daily candidate policy."""

from __future__ import annotations

from datetime import timedelta

from include.classification.classes import MigrationClass
from include.policy import load_policy
from include.policy.model import ForecastSettings
from include.simulation.engine import simulate
from include.simulation.forecast_quality import measure
from include.simulation.inputs import load_world_settings
from include.simulation.policies import OrchestratorPolicy
from include.simulation.scores import score
from include.simulation.world import HEAVY_CLASSES, generate_world
from tests.conftest import PROJECT_ROOT
from tests.simulation.support import tiny_world

DAILY = PROJECT_ROOT / "config" / "policy-daily.yaml"


def test_a_regular_cadence_is_forecast_without_error():
    world = tiny_world([(float(m), 60.0) for m in range(0, 7 * 1440, 180)], [])
    settings = ForecastSettings(enabled=True, gap_percentile=5, weekly_pattern=False)
    found = measure(world, settings, horizon=60.0, every=15.0)
    # Only the first deployment's successor is missed: one start teaches no gap yet.
    assert found.false_positive == 0 and found.false_negative == 3
    assert found.precision == 1.0 and found.recall is not None and found.recall > 0.98


def test_missing_history_is_counted_as_missed_starts():
    world = tiny_world([(100.0, 60.0), (3000.0, 60.0)], [])
    found = measure(world, ForecastSettings(enabled=True), horizon=60.0, every=15.0)
    assert found.false_negative > 0 and found.recall is not None and found.recall < 1


def test_daily_policy_is_valid_and_uses_the_levers():
    policy = load_policy(str(DAILY)).for_environment("gprd")
    forecast = policy.gates.deploy_lock.forecast
    assert forecast.enabled and forecast.per_migration_quantile == 50 and not forecast.weekly_pattern
    for cls in HEAVY_CLASSES:
        assert "weekday_nights" in policy.class_rule(cls).windows
    assert not policy.class_rule(MigrationClass.UNKNOWN).automatic


def test_daily_policy_runs_heavy_work_only_in_its_windows_and_fits_them():
    """Two weeks of seed 3: every run starts in its class's window and its heavy work is never at peak."""
    from include.simulation.engine import View

    settings = load_world_settings()
    policy = load_policy(str(DAILY)).for_environment("gprd")
    world = generate_world(settings, 2, 3)
    orchestrator = OrchestratorPolicy(policy, "gprd", settings.review_times)
    outcome = simulate(world, orchestrator)
    assert outcome.runs, "the daily policy ran nothing in two weeks"
    for run in outcome.runs:
        # Judged as the run was: the learned window with the traffic profile the DAG had stored that day.
        view = View(world, run.start, int(run.start // 5), [], None)
        profile, error = orchestrator._profile(view)
        verdict = policy.window_verdict(run.run_class, world.at(run.start), profile, error)
        assert verdict.allowed, (world.at(run.start), run.run_class)
    scores = score(world, outcome, policy)
    assert scores.heavy_peak_min == 0 and scores.bake_violations == 0 and scores.incident_rollbacks == 0
    assert max(r.start for r in outcome.runs) - min(r.start for r in outcome.runs) > timedelta(
        days=5
    ) / timedelta(minutes=1)


# -- the starvation guard (gates.deploy_lock.forecast.max_hold) -------------------------------------------


def _overlapping_forecast(held: timedelta | None, max_hold: timedelta | None):
    from datetime import UTC, datetime

    from include.gates.deploy_forecast import DeployForecast, DeploymentExpectation, DurationEstimate

    now = datetime(2026, 1, 6, 22, 0, tzinfo=UTC)
    expected = DeploymentExpectation(now + timedelta(minutes=30), "test cadence", 10)
    duration = DurationEstimate(timedelta(hours=1), "test batch")
    return now, DeployForecast(expected, duration, held=held, max_hold=max_hold)


def test_an_overlap_closes_the_gate_until_the_batch_was_held_max_hold():
    from include.gates.deploy_lock import DeployLockObservation, evaluate_deploy_lock

    for held, max_hold, is_open in [
        (None, timedelta(hours=36), False),  # no PDM run known: the guard stays off (fail closed)
        (timedelta(hours=35), timedelta(hours=36), False),
        (timedelta(hours=36), None, False),  # no max_hold: the overlap always closes the gate
        (timedelta(hours=36), timedelta(hours=36), True),
    ]:
        now, forecast = _overlapping_forecast(held, max_hold)
        result = evaluate_deploy_lock(now, DeployLockObservation(forecast=forecast))
        assert result.open is is_open, (held, max_hold, result.reason)
        if is_open:
            assert "accepted" in result.reason and "max_hold 1d 12h" in result.reason


def test_the_guard_does_not_accept_a_deployment_expected_within_max_hold_lead():
    """Past max_hold, the overlap is accepted only when the next deployment is at least max_hold_lead away:
    one expected sooner would wait nearly the whole run, so the guard takes the gap after it."""
    from dataclasses import replace

    from include.gates.deploy_lock import DeployLockObservation, evaluate_deploy_lock

    now, forecast = _overlapping_forecast(timedelta(hours=40), timedelta(hours=36))  # expected in 30m
    for lead, is_open in [(None, True), (timedelta(minutes=30), True), (timedelta(minutes=31), False)]:
        result = evaluate_deploy_lock(
            now, DeployLockObservation(forecast=replace(forecast, max_hold_lead=lead))
        )
        assert result.open is is_open, (lead, result.reason)


def test_deploy_margin_keeps_the_predicted_end_that_far_before_the_deployment():
    from dataclasses import replace

    from include.gates.deploy_lock import DeployLockObservation, evaluate_deploy_lock

    now, forecast = _overlapping_forecast(None, None)  # expected in 30m
    short = replace(forecast, duration=replace(forecast.duration, duration=timedelta(minutes=20)))
    assert evaluate_deploy_lock(now, DeployLockObservation(forecast=short)).open
    with_margin = replace(short, margin=timedelta(minutes=15))
    closed = evaluate_deploy_lock(now, DeployLockObservation(forecast=with_margin))
    assert not closed.open and "less the 15m margin" in closed.reason


def test_a_deployment_running_still_closes_the_gate_past_max_hold():
    from include.deployments import Deployment
    from include.gates.deploy_lock import DeployLockObservation, evaluate_deploy_lock

    now, forecast = _overlapping_forecast(timedelta(hours=40), timedelta(hours=36))
    running = Deployment(1, "gprd", "a" * 40, "ref", "running", now, None)
    result = evaluate_deploy_lock(now, DeployLockObservation([running], forecast=forecast))
    assert not result.open


def test_waiting_since_is_the_first_deployment_finished_after_the_last_run():
    from datetime import UTC, datetime

    from include.gates.deploy_forecast import waiting_since

    t = [datetime(2026, 1, 6, h, tzinfo=UTC) for h in range(24)]
    assert waiting_since([t[1], t[5], t[9], None], t[4]) == t[5]
    assert waiting_since([t[1], t[2]], t[4]) is None  # nothing deployed since the run: nothing waits
    assert waiting_since([t[1], t[5]], None) == t[1]  # no run in the history: since the first deployment
    assert waiting_since([], None) is None  # nothing known: the guard stays off


def test_max_hold_is_loaded_and_defaults_off(tmp_path):
    policy = load_policy(str(DAILY)).for_environment("gprd")
    assert policy.gates.deploy_lock.forecast.max_hold == timedelta(hours=48)
    assert ForecastSettings().max_hold is None
    assert policy.gates.deploy_lock.forecast.max_hold_lead == timedelta(minutes=30)
    assert ForecastSettings().max_hold_lead is None and ForecastSettings().deploy_margin == timedelta(0)
    shipped = load_policy(str(PROJECT_ROOT / "config" / "policy.yaml")).for_environment("gprd")
    assert shipped.gates.deploy_lock.forecast.max_hold is None


def test_the_simulated_orchestrator_runs_a_held_batch_once_max_hold_has_passed(tmp_path):
    """A batch predicted longer than every gap between deployments never runs without the guard; with it,
    it runs once the first deployment that brought it finished `max_hold` ago (the DAG's reading)."""
    from tests.simulation.support import migration

    # Deployments every 3 h, 1 h each, all week: 100 min free between two, never 210 min (20 × 10m + 10m).
    deployments = [(30.0 + 180.0 * k, 60.0) for k in range(56)]  # the last starts Sun 21:30
    batch = [migration(i, MigrationClass.CLEANUP, 1.0) for i in range(20)]
    text = DAILY.read_text()
    assert "max_hold: 48h" in text
    outcomes = {}
    for name, value in (("guard", "48h"), ("none", "null")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text.replace("max_hold: 48h", f"max_hold: {value}"))
        policy = load_policy(str(path)).for_environment("gprd")
        world = tiny_world(deployments, batch)
        outcomes[name] = (world, simulate(world, OrchestratorPolicy(policy, "gprd", (480, 960))))
    world, held = outcomes["none"]
    assert held.runs == [], "without the guard the batch should wait: it fits no gap"
    world, guarded = outcomes["guard"]
    assert len(guarded.runs) == 1
    first_end = 30.0 + 60.0  # the deployment that brought the batch
    assert guarded.runs[0].start - first_end >= 48 * 60
    policy = load_policy(str(tmp_path / "guard.yaml")).for_environment("gprd")
    assert policy.window_verdict(MigrationClass.CLEANUP, world.at(guarded.runs[0].start)).allowed
    assert score(world, guarded, policy).heavy_peak_min == 0


def test_the_dag_reads_the_guard_wait_from_gitlab_as_the_simulator_does(monkeypatch):
    """gate_checks.deploy_forecast (the DAG) on GitLab's answers: the environment's deployments and the
    db/<environment> deployments that record PDM runs give the same wait as waiting_since in the simulator."""
    from datetime import UTC, datetime

    import pdm_orchestrator.hooks.audit as audit_hook
    from include.deployments import Deployment
    from include.gates.deploy_forecast import waiting_since
    from pdm_orchestrator import gate_checks

    class Store:
        def pdm_run_durations(self, environment, run_class, since):
            return []

    class Audit:
        def __init__(self, conn_id):
            pass

        def get_conn(self):
            return Store()

    monkeypatch.setattr(audit_hook, "AuditHook", Audit)
    now = datetime(2026, 1, 8, 22, 0, tzinfo=UTC)
    at = [datetime(2026, 1, 6, h, tzinfo=UTC) for h in range(0, 24, 3)]

    def deployment(i: int, env: str, start: datetime, minutes: int = 60, status: str = "success"):
        return Deployment(i, env, f"{i:040x}", f"ref{i}", status, start, start + timedelta(minutes=minutes))

    app = [deployment(i, "gprd", start) for i, start in enumerate(at)]
    pdm_runs = [deployment(100, "db/gprd", at[2] + timedelta(minutes=90), 20)]

    class GitLab:
        def recent_deployments(self, project, environment, since):
            return pdm_runs if environment == "db/gprd" else app

    policy = load_policy(str(DAILY)).for_environment("gprd")
    forecast = gate_checks.deploy_forecast(policy, "gprd", MigrationClass.CLEANUP, now, GitLab())
    assert forecast.error is None and forecast.max_hold == timedelta(hours=48)
    # The last PDM run started at 07:30; the first deployment finished after it is the 09:00 one (10:00).
    expected = waiting_since([d.finished_at for d in app], pdm_runs[0].created_at)
    assert expected == at[3] + timedelta(minutes=60)
    assert forecast.held == now - expected
