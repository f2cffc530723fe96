"""A lower bound on pending age in `all_pending` mode: the best any schedule could do with review waits.

`oracle-with-review` is a relaxation, not a schedule. It knows the whole future (every migration's arrival,
the traffic), and it lets each migration run at the first instant that every schedule meeting issue 17's
bar would also need, ignoring everything else:

- the run may not start before the migration is pending (its deployment finished; deployments at the
  times they have when no PDM delays them);
- no run while an `unknown` that is not yet reviewed is pending: in `all_pending` mode a run executes every
  pending migration, and an `unknown` runs only once a release manager annotated it at the world's next
  `review_times` instant (nobody else may decide it);
- no run in a peak step: manual-apac-emea's `peak_load` is 0, so any migration executed at peak puts a
  schedule above the bar;
- no run starting while a deployment runs (the engine's rule: a deployment holds the environment).

It ignores the run's own duration, the deployments a run would delay, the bake and the windows, so each
migration's age here is at most its age under any schedule that meets the bar: if this bound's p95
already exceeds manual-apac-emea's, the bar is infeasible in `all_pending` mode in that world.
"""

from __future__ import annotations

import argparse
import bisect
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from include.classification.classes import MigrationClass
from include.simulation.engine import RunRequest, View, simulate
from include.simulation.inputs import STEP_MINUTES, WorldSettings, load_world_settings
from include.simulation.policies import weekday_instants
from include.simulation.scores import Meter
from include.simulation.world import World, generate_world


class _NeverRuns:
    """Runs nothing: the engine then reports every migration's pending start with undelayed deployments."""

    name = "never"

    def reset(self, world: World) -> None:
        """Nothing to prepare."""

    def wants_run(self, view: View) -> RunRequest | None:
        return None

    def extra_manual_actions(self) -> int:
        return 0


@dataclass(frozen=True)
class ReviewBound:
    """Each migration's least possible age (hours), and their p95."""

    ages_h: list[float]
    pending_p95_h: float
    over: int  # how many exceed `limit_h` (when given)


def review_bound(world: World, review_times: tuple[int, ...], limit_h: float | None = None) -> ReviewBound:
    """The lower bound above for one world (see the module docstring)."""
    outcome = simulate(world, _NeverRuns())
    pending = outcome.unexecuted
    reviews = sorted(m for t in review_times for m in weekday_instants(world, t))
    blocked: list[tuple[float, float]] = []
    for migration, since in pending:
        if migration.cls is MigrationClass.UNKNOWN:
            index = bisect.bisect_left(reviews, since)
            blocked.append((since, reviews[index] if index < len(reviews) else float("inf")))
    peak = Meter(world).peak
    allowed = np.ones(peak.size, dtype=bool) & ~peak
    for start, end in blocked:  # a step is usable only if no unreviewed unknown is pending at its start
        first = int(np.ceil(start / STEP_MINUTES))
        last = peak.size if end == float("inf") else int(np.ceil(end / STEP_MINUTES))
        allowed[first:last] = False
    for deployment in outcome.deployments:
        allowed[int(deployment.start // STEP_MINUTES) : int(np.ceil(deployment.end / STEP_MINUTES))] = False
    usable = np.flatnonzero(allowed)
    ages: list[float] = []
    for _, since in pending:
        step = int(np.ceil(since / STEP_MINUTES))
        index = int(np.searchsorted(usable, step))
        at = usable[index] * STEP_MINUTES if index < usable.size else world.minutes
        ages.append((at - since) / 60.0)
    p95 = float(np.percentile(ages, 95)) if ages else 0.0
    over = sum(1 for a in ages if limit_h is not None and a > limit_h)
    return ReviewBound(ages, round(p95, 2), over)


def main(argv: list[str] | None = None) -> int:
    """`python -m include.simulation.review_bound --seed S [--world FILE] [--weeks N] [--limit H]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--world", type=Path, default=None)
    parser.add_argument("--limit", type=float, default=None, help="count migrations older than this (h)")
    args = parser.parse_args(argv)
    settings: WorldSettings = load_world_settings(args.world) if args.world else load_world_settings()
    world = generate_world(settings, args.weeks, args.seed)
    bound = review_bound(world, settings.review_times, args.limit)
    print(
        f"seed {args.seed}: oracle-with-review pending_p95_h {bound.pending_p95_h} "
        f"({len(bound.ages_h)} migrations"
        + (f", {bound.over} older than {args.limit} h" if args.limit is not None else "")
        + ")"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
