"""The next days of one environment as data for a picture: when each class may run (its windows minus change
locks), the change locks, the deployments expected from past ones, the traffic expected from the same hours a
week earlier against each class's threshold, and the predicted next run. Plain Python; the PDM page draws it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from include.classification.classes import MigrationClass

if TYPE_CHECKING:
    from include.policy.model import Policy

WEEK = timedelta(days=7)


@dataclass
class Outlook:
    """What the picture shows for [start, end); every instant in UTC."""

    environment: str
    start: datetime
    end: datetime
    windows: list[dict[str, Any]] = field(default_factory=list)  # class, window, opens_at, closes_at
    locks: list[dict[str, Any]] = field(default_factory=list)  # name, opens_at, closes_at
    thresholds: dict[str, float] = field(default_factory=dict)  # class → absolute req/s threshold
    traffic: list[tuple[datetime, float]] = field(default_factory=list)  # expected (last week, shifted)
    deployments: list[dict[str, Any]] = field(default_factory=list)  # expected_at, basis
    next_run: datetime | None = None
    notes: list[str] = field(default_factory=list)  # what could not be shown, and why


def class_windows(policy: Policy, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Allowed spans of every automatic class intersecting [start, end), clipped to it."""
    found = []
    for cls in MigrationClass:
        if not policy.class_rule(cls).automatic:
            continue
        for span in policy.allowed_spans(cls, start, end):
            opens, closes = max(span.opens_at, start), min(span.closes_at, end)
            if opens < closes:
                found.append(
                    {"class": cls.value, "window": span.window, "opens_at": opens, "closes_at": closes}
                )
    return found


def change_locks(policy: Policy, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Change locks intersecting [start, end), clipped to it."""
    found = []
    for (opens, closes), name in policy.lock_spans(start, end):
        opens, closes = max(opens, start), min(closes, end)
        if opens < closes:
            found.append({"name": name, "opens_at": opens, "closes_at": closes})
    return found


def absolute_thresholds(policy: Policy) -> dict[str, float]:
    """Each automatic class's traffic threshold, when the gate compares to an absolute rate."""
    from include.gates.traffic import settings_for_class

    found = {}
    for cls in MigrationClass:
        if not policy.class_rule(cls).automatic:
            continue
        settings = settings_for_class(policy, cls)
        if settings.mode == "absolute":
            found[cls.value] = float(settings.threshold)
    return found


def expected_deployments(
    starts: Iterable[datetime], now: datetime, end: datetime, learning: timedelta, min_share: float
) -> list[dict[str, Any]]:
    """The deployments the forecast expects in (now, end], one after the other, from past starts."""
    from include.gates.deploy_forecast import expect_next_deployment

    starts = list(starts)
    found: list[dict[str, Any]] = []
    cursor = now
    while len(found) < 100:
        expectation = expect_next_deployment(starts, cursor, learning, min_share)
        at = expectation.expected_at
        if at is None or at > end:
            break
        found.append({"expected_at": at, "basis": expectation.basis})
        cursor = at + timedelta(hours=1)
        starts.append(at)  # the median-gap rule continues from the expected one
    return found


def shift(series: Iterable[tuple[datetime, float]], delta: timedelta) -> list[tuple[datetime, float]]:
    """A series moved in time (last week's traffic drawn as this week's expectation)."""
    return [(moment + delta, value) for moment, value in series]


def outlook(policy: Policy, environment: str, now: datetime, days: int = 7) -> Outlook:
    """The calendar part of the outlook (windows, locks, thresholds); the adapter adds what needs servers."""
    if now.tzinfo is None:
        raise ValueError(f"outlook needs a timezone-aware now, got {now.isoformat()}")
    start = now.astimezone(UTC)
    end = start + timedelta(days=days)
    return Outlook(
        environment=environment,
        start=start,
        end=end,
        windows=class_windows(policy, start, end),
        locks=change_locks(policy, start, end),
        thresholds=absolute_thresholds(policy),
    )
