"""The simulated world: traffic, planned deployments, migration arrivals and incidents over N weeks.

Generated once per seed and shared by every policy, so rows of the score table differ only by the policy.
Time is minutes since the horizon start (a Monday 00:00 UTC); traffic is one value per 5-minute step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from include.classification.classes import MigrationClass
from include.simulation.inputs import (
    STEP_MINUTES,
    STEPS_PER_WEEK,
    InputError,
    LogNormal,
    MigrationRecord,
    WorldSettings,
    read_deployments_csv,
    read_incidents_csv,
    read_migrations_csv,
    read_migrations_directory,
)

HEAVY_CLASSES = frozenset({MigrationClass.DATA, MigrationClass.SCHEMA_HEAVY, MigrationClass.CLEANUP})


@dataclass(frozen=True)
class Migration:
    """One post-deploy migration: merged at `merged` (minutes), classified `cls`, really `actual`."""

    id: int
    version: str
    merged: float
    cls: MigrationClass
    actual: MigrationClass
    duration: float
    path: str = ""
    annotated: bool = (
        False  # the author annotated it at merge time (`# pdm: class=…`): `cls` is then `actual`
    )


@dataclass(frozen=True)
class PlannedDeployment:
    """An auto-deploy the calendar wants to start at `start` (minutes); a running PDM may delay it."""

    id: int
    start: float
    duration: float


@dataclass(frozen=True)
class Incident:
    start: float
    end: float
    severity: int

    def open_at(self, minute: float) -> bool:
        return self.start <= minute < self.end


@dataclass
class World:
    """Everything that happens regardless of the PDM policy."""

    start: datetime
    weeks: int
    traffic: np.ndarray  # req/s per 5-minute step over the horizon
    history: np.ndarray  # req/s for the weeks before the horizon (baseline gates learn from it)
    deployments: list[PlannedDeployment]
    migrations: list[Migration]
    incidents: list[Incident]
    pipeline_overhead: float = 12.0
    package_lag: float = 60.0
    rollback_severity: int = 2
    peak_percentile: float = 75.0
    seed: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
    # What policies derive from the world alone and may share (the daily traffic profiles): not an input.
    derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def minutes(self) -> float:
        return self.weeks * 7 * 1440.0

    @property
    def steps(self) -> int:
        return self.weeks * STEPS_PER_WEEK

    def at(self, minute: float) -> datetime:
        return self.start + timedelta(minutes=minute)

    def minute_of(self, moment: datetime) -> float:
        return (moment.astimezone(UTC) - self.start).total_seconds() / 60.0


def generate_world(
    settings: WorldSettings,
    weeks: int,
    seed: int,
    start: date | None = None,
    traffic_week: list[float] | None = None,
    history_weeks: int = 4,
) -> World:
    """Draw a world from the settings. Each input has its own random stream, so changing (say) the
    incident rate leaves the traffic and the migrations of the same seed unchanged."""
    if weeks < 1:
        raise InputError(f"--weeks must be at least 1, got {weeks}")
    day = start or settings.start
    if day.weekday() != 0:
        raise InputError(f"start {day.isoformat()} is not a Monday")
    origin = datetime(day.year, day.month, day.day, tzinfo=UTC)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]
    traffic_rng, deploy_rng, migration_rng, incident_rng, review_rng = streams
    week = np.asarray(traffic_week if traffic_week is not None else settings.traffic_profile, dtype=float)
    week = _rescale(week, settings.peak_to_trough)
    total = np.tile(week, weeks + history_weeks)
    noise = traffic_rng.normal(0.0, settings.noise, size=total.size) if settings.noise else 0.0
    total = np.maximum(total * (1.0 + noise), 0.0)
    history, traffic = total[: history_weeks * STEPS_PER_WEEK], total[history_weeks * STEPS_PER_WEEK :]

    horizon = weeks * 7 * 1440.0
    deployments = _deployments(settings, origin, horizon, deploy_rng)
    migrations = _migrations(settings, origin, horizon, migration_rng)
    notes: dict[str, Any] = {}
    if settings.merge_request_slip_through is not None:
        migrations, notes["merge_request_check"] = merge_request_check(
            migrations, settings.merge_request_slip_through, review_rng
        )
    incidents = _incidents(settings, origin, horizon, incident_rng)
    return World(
        start=origin,
        weeks=weeks,
        traffic=traffic,
        history=history,
        deployments=deployments,
        migrations=migrations,
        incidents=incidents,
        pipeline_overhead=settings.pipeline_overhead,
        package_lag=settings.package_lag,
        rollback_severity=settings.rollback_severity,
        peak_percentile=settings.peak_percentile,
        seed=seed,
        notes=notes,
    )


def _rescale(week: np.ndarray, ratio: float | None) -> np.ndarray:
    """Keep the quietest level and stretch the shape so that busiest / quietest = ratio."""
    low, high = float(week.min()), float(week.max())
    if ratio is None or high == low or low <= 0:
        return week
    return low + (week - low) / (high - low) * (low * ratio - low)


def _in_lock(settings: WorldSettings, moment: datetime) -> datetime | None:
    for _, begin, end in settings.deploy_locks:
        if begin <= moment < end:
            return end
    return None


def _deployments(
    settings: WorldSettings, origin: datetime, horizon: float, rng: np.random.Generator
) -> list[PlannedDeployment]:
    if settings.deployments_file is not None:
        rows = read_deployments_csv(settings.deployments_file)
        minutes = [((t - origin).total_seconds() / 60.0, d) for t, d in rows]
        return [
            PlannedDeployment(i, m, d)
            for i, (m, d) in enumerate(sorted(x for x in minutes if 0 <= x[0] < horizon))
        ]
    found: list[PlannedDeployment] = []
    minute = float(rng.uniform(0, settings.weekday_every[0]))
    while minute < horizon:
        moment = origin + timedelta(minutes=minute)
        lock_end = _in_lock(settings, moment)
        if lock_end is not None:
            minute = (lock_end - origin).total_seconds() / 60.0
            continue
        snapped = round(minute / STEP_MINUTES) * STEP_MINUTES
        duration = float(round(rng.uniform(*settings.deploy_duration)))
        found.append(PlannedDeployment(len(found), float(snapped), duration))
        low, high = settings.weekend_every if moment.weekday() >= 5 else settings.weekday_every
        minute += float(rng.uniform(low, high))
    return found


def _draw(dist: LogNormal, rng: np.random.Generator) -> float:
    return float(rng.lognormal(np.log(dist.median), dist.sigma))


def _choice(weights: dict[MigrationClass, float], rng: np.random.Generator) -> MigrationClass:
    classes = list(weights)
    p = np.array([weights[c] for c in classes], dtype=float)
    return classes[int(rng.choice(len(classes), p=p / p.sum()))]


def _migrations(
    settings: WorldSettings, origin: datetime, horizon: float, rng: np.random.Generator
) -> list[Migration]:
    records: list[MigrationRecord]
    if settings.migrations_file is not None:
        records = read_migrations_csv(settings.migrations_file)
    elif settings.migrations_directory is not None:
        records = read_migrations_directory(settings.migrations_directory)
    else:
        records = []
        low, high = settings.merge_hours
        for day in range(int(horizon // 1440)):
            weekday = (origin + timedelta(days=day)).weekday()
            count = rng.poisson(settings.per_weekend_day if weekday >= 5 else settings.per_weekday)
            for minute in sorted(rng.uniform(low * 60, high * 60, size=count)):
                merged = origin + timedelta(days=day, minutes=float(minute))
                merged = merged.replace(microsecond=0)
                records.append(
                    MigrationRecord(merged, _choice(settings.class_mix, rng), f"{merged:%Y%m%d%H%M%S}", "")
                )
    migrations: list[Migration] = []
    for record in sorted(records, key=lambda r: (r.merged_at, r.version, r.path)):
        minute = (record.merged_at - origin).total_seconds() / 60.0
        if not 0 <= minute < horizon:
            continue
        actual = record.actual or record.cls
        if actual is MigrationClass.UNKNOWN:
            actual = _choice(settings.unknown_actual, rng)
        duration = record.duration if record.duration is not None else _draw(settings.durations[actual], rng)
        path = record.path or f"db/post_migrate/{record.version}_simulated_{record.cls.value}.rb"
        migrations.append(
            Migration(len(migrations), record.version, minute, record.cls, actual, duration, path)
        )
    return migrations


def merge_request_check(
    migrations: list[Migration], slip_through: float, rng: np.random.Generator
) -> tuple[list[Migration], dict[str, int]]:
    """The merge-request classification job (`python -m include.classification --fail-on unknown`): the
    author of a migration the classifier cannot bound annotates it with its real class before merging.
    Exactly round(slip_through × unknowns) of them, drawn from `rng`, still arrive as `unknown` (the job was
    skipped or overridden). Returns the migrations and {"unknown": n, "slipped": k}."""
    unknown = [m.id for m in migrations if m.cls is MigrationClass.UNKNOWN]
    count = int(round(slip_through * len(unknown)))
    slipped = {int(i) for i in rng.choice(unknown, size=count, replace=False)} if count else set()
    checked = [
        replace(m, cls=m.actual, annotated=True)
        if m.cls is MigrationClass.UNKNOWN and m.id not in slipped
        else m
        for m in migrations
    ]
    return checked, {"unknown": len(unknown), "slipped": len(slipped)}


def _incidents(
    settings: WorldSettings, origin: datetime, horizon: float, rng: np.random.Generator
) -> list[Incident]:
    if settings.incidents_file is not None:
        rows = read_incidents_csv(settings.incidents_file)
        found = [
            Incident((t - origin).total_seconds() / 60.0, (t - origin).total_seconds() / 60.0 + d, s)
            for t, s, d in rows
        ]
        return sorted(
            (i for i in found if i.end > 0 and i.start < horizon), key=lambda i: (i.start, i.severity)
        )
    weeks = horizon / (7 * 1440)
    found = []
    for severity in sorted(settings.incidents_per_week):
        count = rng.poisson(settings.incidents_per_week[severity] * weeks)
        for start in rng.uniform(0, horizon, size=count):
            duration = _draw(settings.incident_durations[severity], rng)
            found.append(Incident(float(start), float(start) + duration, severity))
    return sorted(found, key=lambda i: (i.start, i.severity))
