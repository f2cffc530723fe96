"""Whole comparisons on short generated worlds: determinism, the oracle bound, the orchestrator's windows."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import timedelta

import numpy as np
import pytest

from include.classification.classes import MigrationClass
from include.policy import load_policy
from include.simulation.comparison import POLICY_NAMES, compare
from include.simulation.engine import simulate
from include.simulation.inputs import load_world_settings
from include.simulation.policies import ManualPolicy, OrchestratorPolicy, traffic_settings
from include.simulation.world import generate_world

WEEKS = 3


@pytest.fixture(scope="module")
def settings():
    return load_world_settings()


@pytest.fixture(scope="module")
def policy(settings):
    return load_policy(str(settings.policy_path)).for_environment(settings.environment)


@pytest.fixture(scope="module")
def comparisons(settings):
    return {seed: compare(settings, WEEKS, seed) for seed in (1, 2, 3)}


def _summary(comparison):
    return {name: asdict(s) for name, s in comparison.scores.items()}


def test_same_seed_same_world_and_same_table(settings, comparisons):
    first = generate_world(settings, WEEKS, 1)
    again = generate_world(settings, WEEKS, 1)
    assert np.array_equal(first.traffic, again.traffic)
    assert first.deployments == again.deployments
    assert first.migrations == again.migrations
    assert first.incidents == again.incidents
    assert _summary(compare(settings, WEEKS, 1)) == _summary(comparisons[1])


def test_another_seed_gives_another_world(settings):
    one, two = generate_world(settings, WEEKS, 1), generate_world(settings, WEEKS, 2)
    assert one.migrations != two.migrations
    assert not np.array_equal(one.traffic, two.traffic)


def test_every_policy_is_scored_on_the_same_world(comparisons):
    comparison = comparisons[1]
    assert list(comparison.scores) == list(POLICY_NAMES)
    planned = {d.planned.id for d in comparison.outcomes["manual-daily"].deployments}
    for outcome in comparison.outcomes.values():
        assert {d.planned.id for d in outcome.deployments} <= {d.id for d in comparison.world.deployments}
    assert planned


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_oracle_is_never_worse_on_its_objective(settings, comparisons, seed):
    comparison = comparisons[seed]
    oracle = comparison.scores["oracle"]
    bound = settings.max_pending_age_days * 24
    assert oracle.max_pending_age_h <= bound
    for name in ("manual-daily", "manual-apac-emea", "orchestrator", "orchestrator-selected"):
        other = comparison.scores[name]
        if other.max_pending_age_h <= bound:  # a schedule that breaks the age bound is not a rival
            assert oracle.objective() <= other.objective(), name


def test_the_oracles_own_search_respects_the_age_bound(settings, policy):
    from include.simulation.oracle import search_schedule

    world = generate_world(settings, WEEKS, 4)
    starts, weighed = search_schedule(world, policy, settings.max_pending_age_days, settings.slots_per_day)
    assert starts and weighed >= len(starts)
    assert starts == sorted(starts)


@pytest.mark.parametrize("seed", range(1, 7))
def test_the_orchestrator_never_runs_a_class_outside_its_windows(settings, policy, seed):
    """all_pending: each run is scheduled for its strictest class, which must be allowed when it starts,
    with traffic below that class's threshold; no migration it runs is stricter than that class."""
    world = generate_world(settings, 2, seed)
    orchestrator = OrchestratorPolicy(policy, settings.environment, settings.review_times)
    outcome = simulate(world, orchestrator)
    for run in outcome.runs:
        now = world.at(run.start)
        assert policy.window_verdict(run.run_class, now).allowed, (seed, now, run.run_class)
        assert policy.class_rule(run.run_class).automatic
        assert run.run_class is not MigrationClass.UNKNOWN
        for item in run.executed:
            assert orchestrator.effective_class(item.migration) <= run.run_class
        threshold = traffic_settings(policy, run.run_class).threshold
        step = int(run.start // 5)
        assert all(world.traffic[i] < threshold for i in range(step - 2, step + 1))


def test_manual_runs_skip_change_locks(settings, policy):
    # 2026-01-19 is a US public holiday: a lock in the shipped policy, so no manual run that day.
    world = generate_world(settings, 3, 1)
    manual = ManualPolicy("manual-daily", settings.manual["manual-daily"], policy, 1)
    outcome = simulate(world, manual)
    days = {world.at(r.start).date().isoformat() for r in outcome.runs}
    assert "2026-01-19" not in days
    assert all(world.at(r.start).weekday() < 5 for r in outcome.runs)
    assert all(
        not policy.lock_spans(world.at(r.start), world.at(r.start) + timedelta(seconds=1))
        for r in outcome.runs
    )


def test_simulated_traffic_settings_match_the_dags_gate_checks(policy):
    """The adapter must resolve class thresholds exactly as plugins/pdm_orchestrator/gate_checks.py."""
    from pdm_orchestrator.gate_checks import traffic_settings as dag_settings

    for cls in MigrationClass:
        ours, theirs = traffic_settings(policy, cls), dag_settings(policy, cls)
        assert replace(ours, health_query=theirs.health_query) == theirs, cls


def test_unknown_waits_for_a_human_review(settings, policy):
    from tests.simulation.support import migration, tiny_world

    world = tiny_world([(0, 10)], [migration(0, MigrationClass.UNKNOWN, 5, actual=MigrationClass.NOOP)])
    orchestrator = OrchestratorPolicy(policy, "gprd", (8 * 60,))
    outcome = simulate(world, orchestrator)
    # Monday 00:10 pending; reviewed at Monday 08:00 (one manual action), then a noop may run any time.
    assert outcome.runs and outcome.runs[0].start >= 8 * 60
    assert outcome.manual_actions == 1
