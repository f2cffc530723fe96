"""The oracle-with-review bound: a relaxation whose ages no all_pending schedule meeting the bar can beat."""

from __future__ import annotations

from include.simulation.inputs import load_world_settings
from include.simulation.review_bound import review_bound
from include.simulation.world import generate_world
from tests.simulation.support import tiny_world


def test_the_bound_never_exceeds_the_orchestrators_ages_on_a_generated_world():
    from include.simulation.comparison import compare

    settings = load_world_settings()
    world = generate_world(settings, 2, 3)
    bound = review_bound(world, settings.review_times)
    comparison = compare(settings, 2, 3, world=world)
    # Per migration the bound is a lower bound, so its p95 is at most any schedule's that has no peak load.
    for name in ("manual-apac-emea", "orchestrator"):
        assert bound.pending_p95_h <= comparison.scores[name].pending_p95_h, name


def test_an_unreviewed_unknown_holds_everything_pending_until_the_review():
    import numpy as np

    from include.classification.classes import MigrationClass
    from include.simulation.inputs import STEPS_PER_WEEK
    from tests.simulation.support import migration

    traffic = np.full(STEPS_PER_WEEK, 100.0)
    traffic[: 300 // 5] = 1000.0  # peak until minute 300 ...
    traffic[-(3000 // 5) :] = 1000.0  # ... and at the end of the week, so that the p75 bar is the high level

    # One deployment at minute 30 (ends 90) brings an unknown and a noop; peak ends at minute 300; the review
    # is at 13:00 (minute 780). Nothing may run before the review: both wait 11.5 h, the least possible.
    pending = [migration(0, MigrationClass.UNKNOWN, 1.0), migration(1, MigrationClass.NOOP, 1.0)]
    world = tiny_world([(30.0, 60.0)], pending, traffic=traffic)
    assert review_bound(world, (13 * 60,)).ages_h == [11.5, 11.5]
    # Without the unknown the noop could run as soon as the peak ends (minute 300): 3.5 h.
    world = tiny_world([(30.0, 60.0)], pending[1:], traffic=traffic)
    assert review_bound(world, (13 * 60,)).ages_h == [3.5]
