"""How good the next-deployment forecast is on a world's deployments: precision and recall.

At every `every`-minute instant outside a deployment, the forecast (include.gates.deploy_forecast, learned
from the deployments started before that instant, as the deploy-lock gate learns them) answers "will a
deployment start within the next `horizon` minutes?". The truth is the world's planned calendar (no PDM
delays it here). Precision: of the instants where it said yes, the share where one did start. Recall: of
the instants where one did start, the share where it said yes. A missed start is a deployment that a PDM
may delay; a false alarm is a PDM that waits for nothing.

Run: python -m include.simulation.forecast_quality --seed 1 --weeks 12 [--policy FILE]
"""

from __future__ import annotations

import argparse
import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.gates.deploy_forecast import expect_next_deployment
from include.simulation.world import World


@dataclass(frozen=True)
class ForecastQuality:
    instants: int
    true_positive: int
    false_positive: int
    false_negative: int

    @property
    def precision(self) -> float | None:
        said = self.true_positive + self.false_positive
        return self.true_positive / said if said else None

    @property
    def recall(self) -> float | None:
        real = self.true_positive + self.false_negative
        return self.true_positive / real if real else None


def measure(world: World, settings: Any, horizon: float = 60.0, every: float = 15.0) -> ForecastQuality:
    """Precision and recall of the forecast `settings` (a ForecastSettings) over the world's horizon."""
    starts = [d.start for d in world.deployments]
    ends = [d.start + d.duration for d in world.deployments]
    history_minutes = settings.history.total_seconds() / 60.0
    tp = fp = fn = count = 0
    minute = 0.0
    while minute < world.minutes - horizon:
        index = bisect.bisect_right(starts, minute)
        running = index > 0 and ends[index - 1] > minute
        if not running:
            first = bisect.bisect_left(starts, minute - history_minutes)
            seen = [world.at(s) for s in starts[first:index]]
            expected = expect_next_deployment(
                seen,
                world.at(minute),
                settings.history,
                settings.min_share,
                gap_percentile=settings.gap_percentile,
                weekly_pattern=settings.weekly_pattern,
            ).expected_at
            said = expected is not None and world.minute_of(expected) < minute + horizon
            real = index < len(starts) and starts[index] < minute + horizon
            count += 1
            tp += said and real
            fp += said and not real
            fn += real and not said
        minute += every
    return ForecastQuality(count, tp, fp, fn)


def main(argv: list[str] | None = None) -> int:
    from include.simulation.comparison import load_product_policy
    from include.simulation.inputs import DEFAULT_WORLD, load_world_settings
    from include.simulation.world import generate_world

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--policy", type=Path, default=None)
    parser.add_argument("--horizon", type=float, default=60.0, help="minutes ahead asked about")
    args = parser.parse_args(argv)
    settings = load_world_settings(DEFAULT_WORLD)
    policy = load_product_policy(args.policy or settings.policy_path, settings.environment)
    world = generate_world(settings, args.weeks, args.seed)
    found = measure(world, policy.gates.deploy_lock.forecast, args.horizon)
    print(
        f"seed {args.seed}: {found.instants} instants, precision {found.precision or 0:.3f}, "
        f"recall {found.recall or 0:.3f} (tp {found.true_positive}, fp {found.false_positive}, "
        f"fn {found.false_negative})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
