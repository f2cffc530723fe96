"""Next-deployment forecast: when the next deployment is expected, and how long the PDM is predicted to take.

The deploy-lock gate (deploy_lock.py) closes when the predicted PDM run would still be running when the
next deployment is expected, so a deployment never has to wait behind (or race) a post-deploy migration.

Expected next deployment (documented in docs/policy.md, "Next-deployment forecast"), from the start times
of the environment's deployments over the learning period, all counted in UTC hours of the week:

- **weekly pattern**: an hour of the week is a *deploy hour* when a deployment started in it in at least
  `min_share` of the weeks observed. The next deployment is expected at the start of the next deploy hour
  (or now, when this hour is a deploy hour and no deployment has started in it yet).
- **cadence**: the last start plus the `gap_percentile` of the gaps between consecutive starts (the median
  by default; a low percentile such as 5 expects the next deployment as early as it has plausibly come).
  Only gaps that followed a start of the same kind of day (weekday or weekend, UTC) count, when at least
  three are known, because auto-deploys run every few hours on weekdays and about once a day at weekends.
  With a percentile below 50, when that moment has passed but the longest of those gaps has not, the
  deployment is *overdue*: it is expected now (fail closed: it may start any minute).

The earlier of the two counts; the weekly pattern can be turned off (`weekly_pattern: false`). No deployment
in the learning period → none expected.

Predicted PDM duration: the median duration of past PDM runs of the same class × `safety_factor`, when at
least `min_runs` are known; otherwise the class's `max_predicted_duration`; otherwise `default_duration`.
pandas is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from include.gates.traffic_baseline import HOURS_PER_WEEK, hour_of_week

if TYPE_CHECKING:
    from include.policy.settings import ForecastSettings

_DAY = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class DeploymentExpectation:
    """When the next deployment is expected, and the evidence, in one phrase."""

    expected_at: datetime | None
    basis: str  # e.g. "deployments started in this hour in 4 of 4 weeks"
    starts_seen: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "expected_at": self.expected_at.isoformat() if self.expected_at else None,
            "basis": self.basis,
            "starts_seen": self.starts_seen,
        }


@dataclass(frozen=True)
class DurationEstimate:
    """The predicted PDM duration and where it came from."""

    duration: timedelta
    basis: str  # e.g. "median of 5 past data runs (40m) × 1.5"

    def to_dict(self) -> dict[str, object]:
        return {"seconds": int(self.duration.total_seconds()), "basis": self.basis}


@dataclass(frozen=True)
class DeployForecast:
    """Both predictions, ready for the deploy-lock gate; `error` when they could not be made."""

    expected: DeploymentExpectation | None = None
    duration: DurationEstimate | None = None
    error: str | None = None
    # Starvation guard (policy `max_hold`): how long migrations have waited with no PDM run, and the limit
    # past which a predicted overlap is accepted (the deployment waits) rather than holding the batch again.
    held: timedelta | None = None
    max_hold: timedelta | None = None
    # ... but not when the next deployment is expected sooner than this: that one would wait nearly the
    # whole run; the guard takes the gap after it instead (policy `max_hold_lead`; None: any lead).
    max_hold_lead: timedelta | None = None
    # The run must end at least this long before the expected deployment (policy `deploy_margin`): the
    # forecast's early starts and a batch's long tail eat into it instead of into the deployment.
    margin: timedelta = timedelta(0)

    @classmethod
    def from_settings(
        cls,
        settings: ForecastSettings,
        expected: DeploymentExpectation | None,
        duration: DurationEstimate | None,
        held: timedelta | None,
    ) -> DeployForecast:
        """Both predictions with the policy's starvation guard and margin: one place for the DAG's gate
        (gate_checks.deploy_forecast) and the simulator, so they cannot read the settings differently."""
        return cls(
            expected=expected,
            duration=duration,
            held=held,
            max_hold=settings.max_hold,
            max_hold_lead=settings.max_hold_lead,
            margin=settings.deploy_margin,
        )

    def hold_exceeded(self, now: datetime | None = None) -> bool:
        """True when the batch has been held at least `max_hold` (and, with `max_hold_lead` and `now`, the
        next deployment is expected at least that far ahead): an overlap no longer closes the gate."""
        if self.held is None or self.max_hold is None or self.held < self.max_hold:
            return False
        if self.max_hold_lead is None or now is None or self.expected is None:
            return True
        expected_at = self.expected.expected_at
        return expected_at is None or expected_at - now >= self.max_hold_lead


def expect_next_deployment(
    starts: Iterable[datetime],
    now: datetime,
    learning: timedelta,
    min_share: float = 0.5,
    *,
    gap_percentile: float = 50.0,
    weekly_pattern: bool = True,
) -> DeploymentExpectation:
    """The expected start of the next deployment after `now`, learned from `starts` within `learning`."""
    if now.tzinfo is None:
        raise ValueError(f"expect_next_deployment needs a timezone-aware now, got naive {now.isoformat()}")
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must be within (0, 1], got {min_share!r}")
    if not 0 <= gap_percentile <= 100:
        raise ValueError(f"gap_percentile must be within [0, 100], got {gap_percentile!r}")
    since = now - learning
    seen = sorted({s.astimezone(UTC) for s in starts if since <= s.astimezone(UTC) <= now})
    if not seen:
        return DeploymentExpectation(None, f"no deployment started in the last {_human(learning)}", 0)
    candidates: list[tuple[datetime, str]] = []
    weekly = _weekly_pattern(seen, now, learning, min_share) if weekly_pattern else None
    if weekly is not None:
        candidates.append(weekly)
    if len(seen) >= 2:
        cadence = _cadence(seen, now, gap_percentile)
        if cadence is not None:
            candidates.append(cadence)
    if not candidates:
        return DeploymentExpectation(
            None, f"no regular deployment pattern in {len(seen)} starts over {_human(learning)}", len(seen)
        )
    at, basis = min(candidates)
    return DeploymentExpectation(at, basis, len(seen))


def _weekly_pattern(
    seen: list[datetime], now: datetime, learning: timedelta, min_share: float
) -> tuple[datetime, str] | None:
    """The next deploy hour (see module docstring), or None when no hour of the week qualifies."""
    import pandas as pd

    weeks = max(1, math.floor(learning / timedelta(weeks=1)))
    frame = pd.DataFrame({"ts": pd.to_datetime(seen, utc=True)})
    frame["how"] = frame["ts"].dt.dayofweek * 24 + frame["ts"].dt.hour
    frame["week"] = (frame["ts"] - pd.Timestamp(now)).dt.total_seconds() // (7 * 86400)
    share = frame.groupby("how")["week"].nunique() / weeks
    deploy_hours = {int(how): float(s) for how, s in share.items() if s >= min_share}
    if not deploy_hours:
        return None
    this_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    for offset in range(HOURS_PER_WEEK + 1):
        start = this_hour + timedelta(hours=offset)
        how = hour_of_week(start)
        if how not in deploy_hours:
            continue
        if offset == 0 and seen[-1] >= this_hour:
            continue  # this hour's deployment already started
        count = round(deploy_hours[how] * weeks)
        when = max(start, now)
        day, hour = _DAY[how // 24], how % 24
        return when, f"deployments started {day} {hour:02d}:00–{hour:02d}:59 UTC in {count} of {weeks} weeks"
    return None


def _cadence(seen: list[datetime], now: datetime, percentile: float) -> tuple[datetime, str] | None:
    """The last start plus the chosen gap percentile; `now` while overdue; None once past the late gap."""
    last = seen[-1]
    pairs = list(zip(seen, seen[1:], strict=False))
    weekend = last.weekday() >= 5
    alike = [b - a for a, b in pairs if (a.weekday() >= 5) == weekend]
    gaps = alike if len(alike) >= 3 else [b - a for a, b in pairs]
    kind = ("weekend" if weekend else "weekday") if gaps is alike else "all"
    gap = _percentile(gaps, percentile)
    name = "median gap" if percentile == 50 else f"p{percentile:g} gap"
    basis = f"last start {_clock(last)} + {name} {_human(gap)} of {len(gaps)} {kind} gaps"
    if last + gap > now:
        return last + gap, basis
    latest = max(gaps) if percentile < 50 else gap
    if now < last + latest:
        return now, f"overdue: {basis}; the longest is {_human(latest)}"
    return None


def _percentile(values: list[timedelta], percentile: float) -> timedelta:
    """Linear interpolation between closest ranks (numpy's default), without importing numpy."""
    ordered = sorted(v.total_seconds() for v in values)
    rank = (len(ordered) - 1) * percentile / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return timedelta(seconds=ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def predict_pdm_duration(
    durations: Iterable[float],
    *,
    safety_factor: float,
    min_runs: int,
    class_name: str,
    class_max: timedelta | None,
    default: timedelta,
) -> DurationEstimate:
    """median(past run seconds) × safety_factor with ≥ `min_runs` runs, else the class maximum, else default."""
    if safety_factor < 1:
        raise ValueError(f"safety_factor must be at least 1, got {safety_factor!r}")
    usable = [float(d) for d in durations if d is not None and math.isfinite(float(d)) and float(d) >= 0]
    if len(usable) >= max(1, min_runs):
        median = timedelta(seconds=float(statistics.median(usable)))
        return DurationEstimate(
            median * safety_factor,
            f"median of {len(usable)} past {class_name} runs ({_human(median)}) × {safety_factor:g}",
        )
    few = f"{len(usable)} past {class_name} run{'s' if len(usable) != 1 else ''} (< {min_runs})"
    if class_max is not None:
        return DurationEstimate(class_max, f"{few}: the class's max_predicted_duration")
    return DurationEstimate(default, f"{few}: the forecast's default_duration")


def overlap_reason(now: datetime, forecast: DeployForecast) -> str | None:
    """One line when the predicted PDM [now, now + duration) reaches the expected deployment, else None."""
    expected, duration = forecast.expected, forecast.duration
    if expected is None or duration is None or expected.expected_at is None:
        return None
    ends = now + duration.duration
    if ends + forecast.margin <= expected.expected_at or forecast.hold_exceeded(now):
        return None
    margin = f" less the {_human(forecast.margin)} margin" if forecast.margin else ""
    return (
        f"predicted PDM of {_human(duration.duration)} ({duration.basis}) would end {_clock(ends)}, after the "
        f"next deployment expected {_clock(expected.expected_at)}{margin} ({expected.basis})"
    )


def describe(now: datetime, forecast: DeployForecast) -> str:
    """The forecast in one phrase for an open gate's reason."""
    expected, duration = forecast.expected, forecast.duration
    if expected is None or duration is None:
        return "no forecast"
    if expected.expected_at is None:
        return f"no deployment expected ({expected.basis})"
    ends = now + duration.duration
    held, max_hold = forecast.held, forecast.max_hold
    if (
        ends + forecast.margin > expected.expected_at
        and held is not None
        and max_hold is not None
        and forecast.hold_exceeded(now)
    ):
        return (
            f"predicted PDM of {_human(duration.duration)} may delay the deployment expected "
            f"{_clock(expected.expected_at)}: accepted, migrations have waited {_human(held)} with no "
            f"PDM run (max_hold {_human(max_hold)})"
        )
    return (
        f"predicted PDM of {_human(duration.duration)} ends {_clock(now + duration.duration)}, before the next "
        f"deployment expected {_clock(expected.expected_at)}"
    )


def waiting_since(finished: Iterable[datetime | None], last_run_started: datetime | None) -> datetime | None:
    """When the oldest pending migration became pending, at the latest: the first deployment that finished
    after the last PDM run started (that run executed everything pending then; every later migration came
    with such a deployment). With no PDM run in the history read (`last_run_started` None), the first
    deployment seen: what is pending has waited at least since then. None when no such deployment is known:
    the starvation guard then stays off (fail closed, the overlap keeps closing the gate)."""
    later = [f for f in finished if f is not None and (last_run_started is None or f > last_run_started)]
    return min(later) if later else None


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a %H:%M UTC")


def _human(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes:02d}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else f"{seconds}s"
