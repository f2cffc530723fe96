"""Optional product gates the orchestrator row must honour when a policy turns them on."""

from __future__ import annotations

import numpy as np

from include.classification.classes import MigrationClass as C
from include.simulation.engine import simulate
from include.simulation.inputs import STEPS_PER_WEEK, load_world_settings
from include.simulation.policies import OrchestratorPolicy
from include.simulation.world import generate_world
from tests.simulation.support import migration, policy_variant, policy_with, tiny_world

FORECAST = ("gates", "deploy_lock", "forecast")


def _forecast_world():
    # Deployments every 600 min (10 min long); a noop merged at 700 ships with the one at 1200 and is
    # pending from 1210. Its 2 h bake ends at 1330; the next deployment is expected at 1800 (median gap).
    starts = [(float(m), 10.0) for m in range(0, 7 * 1440, 600)]
    return tiny_world(starts, [migration(0, C.NOOP, 5, merged=700)], traffic=np.full(STEPS_PER_WEEK, 100.0))


def test_without_forecast_the_run_starts_when_baked(tmp_path):
    policy = policy_with(tmp_path, (FORECAST, {"enabled": False}))
    outcome = simulate(_forecast_world(), OrchestratorPolicy(policy, "gprd", (480,)))
    assert outcome.runs[0].start == 1330


def test_forecast_keeps_a_run_that_would_reach_the_next_deployment(tmp_path):
    # Predicted 7 h (no past runs: the default) ends 1750 < 1800: run. Predicted 8 h ends 1810: wait, and
    # every later gap is the same, so it never runs.
    fits = policy_with(tmp_path, (FORECAST, {"enabled": True, "default_duration": "7h"}))
    assert simulate(_forecast_world(), OrchestratorPolicy(fits, "gprd", (480,))).runs[0].start == 1330
    too_long = policy_with(tmp_path, (FORECAST, {"enabled": True, "default_duration": "8h"}))
    assert simulate(_forecast_world(), OrchestratorPolicy(too_long, "gprd", (480,))).runs == []


def test_learned_windows_are_judged_with_the_daily_traffic_profile(tmp_path):
    policy = policy_variant(
        tmp_path,
        ("windows:                            # ALLOW", "windows:\n  quiet: {learned: low_traffic}\n  #"),
        ("data:         {windows: [apac_emea_handover, weekend]", "data:         {windows: [quiet]"),
        ("schema_heavy: {windows: [weekend]", "schema_heavy: {windows: [quiet]"),
        ("cleanup:      {windows: [weekend]", "cleanup:      {windows: [quiet]"),
    )
    settings = load_world_settings()
    world = generate_world(settings, 2, 1)
    orchestrator = OrchestratorPolicy(policy, "gprd", settings.review_times)
    outcome = simulate(world, orchestrator)
    heavy = [r for r in outcome.runs if r.run_class in (C.DATA, C.SCHEMA_HEAVY, C.CLEANUP)]
    assert heavy
    for run in heavy:
        view_day = int(run.start // 1440)
        profile, error = orchestrator._profiles[view_day]
        assert error is None
        now = world.at(run.start)
        assert now.weekday() * 24 + now.hour in profile.low_traffic_hours
