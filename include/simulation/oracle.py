"""The oracle: the best run start times with perfect knowledge of the future, as the limit to compare with.

Search (dynamic programming over candidate start times):
- candidates: for every day, the `slots_per_day` best 5-minute steps for a nominal run (fewest peak minutes,
  least load at peak, no deployment due during it, no open incident, longest bake), at least an hour
  apart, never while a deployment runs;
- a schedule is a sequence of candidates; the cost of running at c_k after a run at c_j is computed
  exactly for the migrations that became pending in between, on the calendar's deployment times;
- feasible only if no migration waits longer than `max_pending_age_days` (also at the end of the horizon);
- the objective is `scores.ORACLE_OBJECTIVE`, lexicographic, then fewer runs.

The schedule found is then replayed through the same timeline as every policy (where a delayed deployment
can shift things) and scored the same way. The compared policies' own schedules are replayed too, as
incumbents: the oracle is the best of all of them that respects the age bound, so it is never worse than
any policy that respects it, on its objective, by construction, and usually strictly better.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from include.classification.classes import MigrationClass, most_restrictive
from include.simulation.engine import Outcome, View, simulate
from include.simulation.inputs import STEP_MINUTES
from include.simulation.policies import ReplayPolicy
from include.simulation.scores import Meter, Scores, score
from include.simulation.world import HEAVY_CLASSES, World

if TYPE_CHECKING:
    from include.policy.model import Policy

NOMINAL_RUN = 45.0  # minutes: the typical run used only to rank candidate slots within a day
_INF: tuple[float, ...] = (float("inf"),)


@dataclass
class OracleResult:
    outcome: Outcome
    scores: Scores
    source: str
    candidates: int


def _add(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


class _Calendar:
    """The world as the calendar plans it (no PDM delays): deployment spans and pending times."""

    def __init__(self, world: World) -> None:
        starts, ends = [], []
        previous_end = 0.0
        for plan in world.deployments:
            begin = max(plan.start, previous_end)
            starts.append(begin)
            ends.append(begin + plan.duration)
            previous_end = ends[-1]
        self.starts = np.array(starts)
        self.ends = np.array(ends)
        pend = np.full(len(world.migrations), np.inf)
        cursor = 0
        for index, begin in enumerate(starts):
            while (
                cursor < len(world.migrations)
                and world.migrations[cursor].merged <= begin - world.package_lag
            ):
                pend[cursor] = ends[index]
                cursor += 1
        order = np.argsort(pend, kind="stable")
        self.order = [int(i) for i in order if np.isfinite(pend[i])]
        self.pend = [float(pend[i]) for i in self.order]

    def deploying(self, minute: float) -> bool:
        index = bisect.bisect_right(self.starts, minute) - 1
        return index >= 0 and self.ends[index] > minute

    def package_at(self, minute: float) -> int:
        """Index of the last deployment finished at `minute`, -1 when none."""
        return bisect.bisect_right(self.ends, minute) - 1

    def blocked(self, a: float, b: float) -> tuple[float, int]:
        """Minutes and count of deployments due in [a, b), each waiting until b (no cascade)."""
        lo, hi = bisect.bisect_left(self.starts, a), bisect.bisect_left(self.starts, b)
        return float(sum(b - s for s in self.starts[lo:hi])), hi - lo


def _candidates(world: World, calendar: _Calendar, meter: Meter, per_day: int) -> list[float]:
    danger = [i for i in world.incidents if i.severity <= world.rollback_severity]
    found: list[float] = []
    steps_per_day = 1440 // STEP_MINUTES
    for day in range(world.weeks * 7):
        ranked = []
        for step in range(day * steps_per_day, (day + 1) * steps_per_day):
            minute = float(step * STEP_MINUTES)
            if calendar.deploying(minute):
                continue
            end = minute + NOMINAL_RUN
            package = calendar.package_at(minute)
            bake = minute - calendar.ends[package] if package >= 0 else 0.0
            ranked.append(
                (
                    meter.peak_minutes(minute, end),
                    meter.peak_load(minute, end),
                    calendar.blocked(minute, end)[0],
                    any(i.open_at(minute) for i in danger),
                    -min(bake, 12 * 60.0),
                    minute,
                )
            )
        ranked.sort()
        chosen: list[float] = []
        for *_, minute in ranked:
            if all(abs(minute - other) >= 60 for other in chosen):
                chosen.append(minute)
            if len(chosen) == per_day:
                break
        found.extend(chosen)
    return sorted(found)


def search_schedule(
    world: World, policy: Policy, max_age_days: float, per_day: int
) -> tuple[list[float], int]:
    """The DP's best start times (minutes) on the planned calendar, and how many candidates it weighed."""
    meter = Meter(world)
    calendar = _Calendar(world)
    candidates = _candidates(world, calendar, meter, per_day)
    limit = max_age_days * 1440.0
    migrations = world.migrations
    pend, order = calendar.pend, calendar.order
    min_bake = {cls: policy.class_rule(cls).min_bake.total_seconds() / 60.0 for cls in MigrationClass}
    danger = [i for i in world.incidents if i.severity <= world.rollback_severity]
    overhead = world.pipeline_overhead
    # Run length does not depend on the order: prefix sums give it at once, and a run with no peak step
    # anywhere in it needs no per-migration integral (most candidates are chosen off-peak).
    work = [0.0]
    for index in order:
        work.append(work[-1] + migrations[index].duration)

    def cost(previous: float, start: float) -> tuple[float, ...] | None:
        lo, hi = bisect.bisect_right(pend, previous), bisect.bisect_right(pend, start)
        if lo == hi:
            return None
        if start - pend[lo] > limit:
            return None
        heavy = load = 0.0
        cursor = start + overhead + (work[hi] - work[lo])
        if meter.peak_minutes(start + overhead, cursor) > 0:
            chosen = sorted((migrations[order[i]] for i in range(lo, hi)), key=lambda m: (m.version, m.id))
            cursor = start + overhead
            for m in chosen:
                if m.actual in HEAVY_CLASSES:
                    heavy += meter.peak_minutes(cursor, cursor + m.duration)
                load += meter.peak_load(cursor, cursor + m.duration)
                cursor += m.duration
        blocked, _ = calendar.blocked(start, cursor)
        package = calendar.package_at(start)
        moved = package >= 0 and package != (calendar.package_at(previous) if previous >= 0 else -1)
        incident = 1.0 if moved and any(i.open_at(start) for i in danger) else 0.0
        bake_short = 0.0
        if moved:
            strictest = most_restrictive(migrations[order[i]].actual for i in range(lo, hi))
            bake_short = 1.0 if start - calendar.ends[package] < min_bake[strictest] else 0.0
        return (round(heavy, 6), round(load, 6), round(blocked, 6), incident, bake_short, 1.0)

    best: list[tuple[float, ...]] = []
    back: list[int] = []
    for k, start in enumerate(candidates):
        choice, parent = _INF, -2
        for j in range(k - 1, -2, -1):
            previous = candidates[j] if j >= 0 else -1.0
            base = best[j] if j >= 0 else (0.0,) * 6
            if j >= 0 and base == _INF:
                continue
            step = cost(previous, start)
            if step is None:
                lo = bisect.bisect_right(pend, previous)
                if lo < len(pend) and start - pend[lo] > limit and pend[lo] <= start:
                    break  # earlier predecessors leave even older migrations waiting
                continue
            total = _add(base, step)
            if total < choice:
                choice, parent = total, j
        best.append(choice)
        back.append(parent)
    end = world.minutes
    final, last = _INF, -2
    for j in range(len(candidates) - 1, -2, -1):
        previous = candidates[j] if j >= 0 else -1.0
        base = best[j] if j >= 0 else (0.0,) * 6
        if base == _INF:
            continue
        lo = bisect.bisect_right(pend, previous)
        if lo < len(pend) and pend[lo] < end and end - pend[lo] > limit:
            break
        if base < final:
            final, last = base, j
    if final == _INF:
        return [], len(candidates)
    schedule = []
    while last >= 0:
        schedule.append(candidates[last])
        last = back[last]
    return sorted(schedule), len(candidates)


def oracle_manual_actions(policy: Policy) -> Any:
    """Counted like the orchestrator: a run holding `unknown`-classified migrations needs an annotation,
    a run of a class with `approval_required` needs an approval."""

    def actions(view: View) -> int:
        unknown = any(m.cls is MigrationClass.UNKNOWN for m, _ in view.pending)
        strictest = most_restrictive(m.actual for m, _ in view.pending)
        return 1 if unknown or policy.class_rule(strictest).approval_required else 0

    return actions


def run_oracle(
    world: World, policy: Policy, incumbents: dict[str, Outcome], max_age_days: float, per_day: int
) -> OracleResult:
    """The best schedule among the DP's and the incumbents' (replayed), within the pending-age bound."""
    meter = Meter(world)
    schedule, weighed = search_schedule(world, policy, max_age_days, per_day)
    manual = oracle_manual_actions(policy)
    options = [("search", schedule)] + [(name, [r.start for r in o.runs]) for name, o in incumbents.items()]
    best: tuple[tuple[Any, ...], Outcome, Scores, str] | None = None
    for source, starts in options:
        outcome = simulate(world, ReplayPolicy("oracle", starts, manual))
        scores = score(world, outcome, policy, meter)
        if scores.max_pending_age_h > max_age_days * 24:
            continue
        key = (scores.objective(), scores.runs, scores.manual_actions)
        if best is None or key < best[0]:
            best = (key, outcome, scores, source)
    if best is None:  # nothing respects the bound: report the search's schedule, flagged
        outcome = simulate(world, ReplayPolicy("oracle", schedule, manual))
        result = score(world, outcome, policy, meter)
        result.notes["infeasible"] = True
        return OracleResult(outcome, result, "search (age bound not met)", weighed)
    _, outcome, result, source = best
    result.notes["source"] = source
    return OracleResult(outcome, result, source, weighed)
