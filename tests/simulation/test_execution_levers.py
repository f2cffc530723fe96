"""The product's two levers on pending age: `selected_versions` mode and the merge-request classification job."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from include.classification.classes import MigrationClass
from include.simulation.engine import simulate
from include.simulation.inputs import STEPS_PER_WEEK, InputError, load_world_settings
from include.simulation.policies import ManualPolicy, OrchestratorPolicy, traffic_settings
from include.simulation.world import generate_world
from tests.simulation.support import migration, product_policy, tiny_world

WEEKS = 2


@pytest.fixture(scope="module")
def settings():
    return load_world_settings()


def _selected(policy, settings, review_times=None):
    return OrchestratorPolicy(
        policy,
        settings.environment if settings else "gprd",
        settings.review_times if review_times is None else review_times,
        execution_mode="selected_versions",
        name="orchestrator-selected",
    )


@pytest.mark.parametrize("seed", range(1, 5))
def test_selected_versions_never_runs_a_class_outside_its_windows(settings, seed):
    """A selected_versions run is gated as its strictest class, as an all_pending run is: that class is automatic
    and inside its windows when the run starts, and every migration it executes is automatic and no stricter
    (a lighter one ahead of it rides in its window, as in all_pending)."""
    policy = product_policy()
    world = generate_world(settings, WEEKS, seed)
    orchestrator = _selected(policy, settings)
    outcome = simulate(world, orchestrator)
    assert outcome.runs
    for run in outcome.runs:
        now = world.at(run.start)
        assert run.run_class is not MigrationClass.UNKNOWN
        for item in run.executed:
            cls = orchestrator.effective_class(item.migration)
            assert policy.class_rule(cls).automatic, (seed, now, cls)
            assert cls <= run.run_class
        assert policy.window_verdict(run.run_class, now).allowed, (seed, now, run.run_class)
        threshold = traffic_settings(policy, run.run_class).threshold
        step = int(run.start // 5)
        assert all(world.traffic[i] < threshold for i in range(step - 2, step + 1))


def _unknown_in_the_middle():
    # Three pending migrations in version order: noop, unknown (never reviewed here), noop.
    quiet = np.full(STEPS_PER_WEEK, 100.0)
    migrations = [
        migration(0, MigrationClass.NOOP, 1.0),
        migration(1, MigrationClass.UNKNOWN, 1.0, actual=MigrationClass.BACKGROUND),
        migration(2, MigrationClass.NOOP, 1.0),
    ]
    return tiny_world([(0, 10)], migrations, traffic=quiet)


def test_an_unknown_in_the_middle_lets_the_prefix_run_only_in_selected_versions():
    policy = product_policy()
    no_reviews: tuple[int, ...] = ()
    all_pending = simulate(_unknown_in_the_middle(), OrchestratorPolicy(policy, "gprd", no_reviews))
    assert all_pending.runs == []
    assert sorted(m.id for m, _ in all_pending.unexecuted) == [0, 1, 2]

    selected = simulate(_unknown_in_the_middle(), _selected(policy, None, no_reviews))
    assert len(selected.runs) == 1
    run = selected.runs[0]
    # A prefix, not a subset: the noop after the unknown waits with it. The 2 h bake of the deployment
    # that finished at minute 10 is the first gate to open.
    assert [e.migration.id for e in run.executed] == [0]
    assert run.run_class is MigrationClass.NOOP and run.start == 130
    assert sorted(m.id for m, _ in selected.unexecuted) == [1, 2]


def test_selected_versions_runs_the_rest_once_the_unknown_is_reviewed():
    policy = product_policy()
    outcome = simulate(_unknown_in_the_middle(), _selected(policy, None, (8 * 60,)))
    executed = [[e.migration.id for e in run.executed] for run in outcome.runs]
    assert executed[0] == [0]
    assert [i for ids in executed[1:] for i in ids] == [1, 2]  # after Monday 08:00 (background: weekdays)
    assert outcome.runs[1].start >= 8 * 60 and outcome.unexecuted == []


def _checked(settings, slip):
    return replace(settings, merge_request_slip_through=slip)


def test_merge_request_check_is_deterministic_and_lets_exactly_the_slip_through_share_pass(settings):
    default = generate_world(settings, WEEKS, 3)
    unknown = [m for m in default.migrations if m.cls is MigrationClass.UNKNOWN]
    assert len(unknown) >= 3

    checked = generate_world(_checked(settings, 0.5), WEEKS, 3)
    again = generate_world(_checked(settings, 0.5), WEEKS, 3)
    assert checked.migrations == again.migrations
    slipped = [m for m in checked.migrations if m.cls is MigrationClass.UNKNOWN]
    assert len(slipped) == round(0.5 * len(unknown))
    assert checked.notes["merge_request_check"] == {"unknown": len(unknown), "slipped": len(slipped)}
    # Annotated with their real class; nothing else about the world changes.
    for before, after in zip(default.migrations, checked.migrations, strict=True):
        assert (before.merged, before.actual, before.duration, before.version) == (
            after.merged,
            after.actual,
            after.duration,
            after.version,
        )
        if before.cls is MigrationClass.UNKNOWN and after.cls is not MigrationClass.UNKNOWN:
            assert after.annotated and after.cls is after.actual
        else:
            assert after == before
    assert np.array_equal(default.traffic, checked.traffic)
    assert default.deployments == checked.deployments and default.incidents == checked.incidents

    none_slip = generate_world(_checked(settings, 0.0), WEEKS, 3)
    assert not any(m.cls is MigrationClass.UNKNOWN for m in none_slip.migrations)
    all_slip = generate_world(_checked(settings, 1.0), WEEKS, 3)
    assert [m.cls for m in all_slip.migrations] == [m.cls for m in default.migrations]


def test_manual_policies_ignore_annotations(settings):
    policy = product_policy()
    default = generate_world(settings, WEEKS, 2)
    checked = generate_world(_checked(settings, 0.0), WEEKS, 2)
    manual = settings.manual["manual-daily"]
    one = simulate(default, ManualPolicy("manual-daily", manual, policy, 2))
    two = simulate(checked, ManualPolicy("manual-daily", manual, policy, 2))
    assert [(r.start, r.end, [e.migration.id for e in r.executed]) for r in one.runs] == [
        (r.start, r.end, [e.migration.id for e in r.executed]) for r in two.runs
    ]


def test_the_shipped_world_does_not_enforce_the_merge_request_check(settings, tmp_path):
    assert settings.merge_request_slip_through is None
    enforced = load_world_settings(settings_path("world-mr-check.yaml"))
    assert enforced.merge_request_slip_through == 0.1
    text = settings_path("world.yaml").read_text().replace("slip_through: 0.1 ", "slip_through: 1.5 ")
    bad = tmp_path / "world.yaml"
    text = text.replace("traffic_week.csv", str(settings_path("traffic_week.csv")))
    bad.write_text(text.replace("../../../config/policy.yaml", str(settings.policy_path)))
    with pytest.raises(
        InputError, match=r"migrations\.merge_request_check\.slip_through: expected a fraction"
    ):
        load_world_settings(bad)


def settings_path(name: str):
    from include.simulation.inputs import DEFAULT_WORLD

    return DEFAULT_WORLD.parent / name
