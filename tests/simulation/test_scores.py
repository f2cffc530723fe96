"""Each score computed right on hand-built tiny timelines (exact numbers, worked out by hand)."""

from __future__ import annotations

import pytest

from include.classification.classes import MigrationClass as C
from include.simulation.engine import simulate
from include.simulation.policies import ReplayPolicy
from include.simulation.scores import score
from tests.simulation.support import migration, product_policy, tiny_world


@pytest.fixture(scope="module")
def policy():
    return product_policy()


def run(world, starts, policy, manual=None):
    outcome = simulate(world, ReplayPolicy("test", starts, manual))
    return outcome, score(world, outcome, policy)


def test_heavy_minutes_and_load_at_peak_count_only_the_overlap(policy):
    # Deployed 0-10, pending from 10. Run at 2990: schema_heavy 2990-3020 (10 min in peak, which ends at
    # 3000), then background 3020-3025 (no peak). Peak level 1000 req/s = 1.0 unit per minute.
    world = tiny_world([(0, 10)], [migration(0, C.SCHEMA_HEAVY, 30), migration(1, C.BACKGROUND, 5)])
    outcome, s = run(world, [2990], policy)
    assert [(e.start, e.end) for e in outcome.runs[0].executed] == [(2990, 3020), (3020, 3025)]
    assert s.heavy_peak_min == pytest.approx(10.0)
    assert s.peak_load == pytest.approx(10.0)
    assert s.runs == 1
    assert s.pending_age_h["schema_heavy"] == (pytest.approx(2980 / 60, abs=0.01),) * 2
    assert s.bake_violations == 0 and s.bake_p50_h == pytest.approx(2980 / 60, abs=0.01)


def test_a_light_class_at_peak_adds_load_but_no_heavy_minutes(policy):
    world = tiny_world([(0, 10)], [migration(0, C.BACKGROUND, 20)])
    _, s = run(world, [100], policy)
    assert s.heavy_peak_min == 0
    assert s.peak_load == pytest.approx(20.0)


def test_deployment_due_during_a_run_waits_for_its_end(policy):
    # Run 3000-3030; the deployment planned at 3010 starts at 3030: 20 minutes blocked, one delayed.
    world = tiny_world([(0, 10), (3010, 10)], [migration(0, C.DATA, 30)])
    outcome, s = run(world, [3000], policy)
    assert s.deploy_blocked_min == pytest.approx(20.0)
    assert s.deploys_delayed == 1
    assert outcome.deployments[1].start == pytest.approx(3030)


def test_pipeline_overhead_holds_the_lock_too(policy):
    world = tiny_world([(0, 10), (3010, 10)], [migration(0, C.NOOP, 1)], overhead=15)
    _, s = run(world, [3000], policy)
    assert s.deploy_blocked_min == pytest.approx(6.0)  # run 3000-3016


@pytest.mark.parametrize(("severity", "expected"), [(1, 1), (2, 1), (3, 0)])
def test_run_during_an_open_incident_loses_the_rollback(policy, severity, expected):
    world = tiny_world([(0, 10)], [migration(0, C.DATA, 5)], incidents=[(2900, 3100, severity)])
    _, s = run(world, [3000], policy)
    assert s.incident_rollbacks == expected


def test_incident_closed_before_the_run_does_not_count(policy):
    world = tiny_world([(0, 10)], [migration(0, C.DATA, 5)], incidents=[(2900, 3000, 1)])
    _, s = run(world, [3000], policy)
    assert s.incident_rollbacks == 0


def test_bake_is_judged_against_the_strictest_real_class_run(policy):
    # Package finished at 10; a run at 40 (30 min of bake) with a cleanup (policy min_bake 12h) violates,
    # with only a noop (no class bake beyond the gate's 2h default) it violates too; at 200 (190 min) the
    # noop run is fine but the cleanup one is not.
    cases = [(C.CLEANUP, 40, 1), (C.NOOP, 40, 1), (C.NOOP, 200, 0), (C.CLEANUP, 200, 1)]
    for cls, start, expected in cases:
        world = tiny_world([(0, 10)], [migration(0, cls, 5)])
        _, s = run(world, [start], policy)
        assert s.bake_violations == expected, (cls, start)
    world = tiny_world([(0, 10)], [migration(0, C.UNKNOWN, 5, actual=C.CLEANUP)])
    _, s = run(world, [200], policy)
    assert s.bake_violations == 1  # an unknown is judged by what it really is


def test_a_second_run_on_the_same_package_does_not_move_the_line(policy):
    # Two migrations merged apart, both in the same package? No: the second arrives with a later deployment.
    world = tiny_world(
        [(0, 10), (1000, 10)],
        [migration(0, C.DATA, 5), migration(1, C.DATA, 5, merged=500)],
        incidents=[(1500, 1700, 2)],
    )
    outcome, s = run(world, [100, 1600], policy)
    assert [r.line_moved for r in outcome.runs] == [True, True]
    assert s.incident_rollbacks == 1
    world = tiny_world([(0, 10)], [migration(0, C.DATA, 5), migration(1, C.DATA, 5, merged=0)])
    outcome, _ = run(world, [100], policy)
    assert len(outcome.runs) == 1  # everything pending ran in one run (all_pending)


def test_pending_age_counts_unexecuted_migrations_to_the_end(policy):
    world = tiny_world([(0, 10)], [migration(0, C.CLEANUP, 5)])
    _, s = run(world, [], policy)
    week = 7 * 1440
    assert s.runs == 0
    assert s.pending_age_h["cleanup"][1] == pytest.approx((week - 10) / 60, abs=0.01)
    assert s.max_pending_age_h == pytest.approx((week - 10) / 60, abs=0.01)


def test_manual_actions_are_what_the_policy_reports(policy):
    world = tiny_world([(0, 10), (500, 10)], [migration(0, C.DATA, 5), migration(1, C.DATA, 5, merged=400)])
    _, s = run(world, [100, 600], policy, manual=lambda view: 1)
    assert s.manual_actions == 2 and s.runs == 2


def test_a_run_never_starts_during_a_deployment_and_a_deployment_never_during_a_run(policy):
    # The replayed start at 505 falls inside the deployment 500-560: the run starts when it ends.
    world = tiny_world([(0, 10), (500, 60)], [migration(0, C.DATA, 5)])
    outcome, _ = run(world, [505], policy)
    assert outcome.runs[0].start == 560
