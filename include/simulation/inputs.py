"""Reading the simulator's input files (world YAML, traffic, deployment, migration, incident CSVs).

Every problem is an InputError naming the file and the key or row, so a release manager can fix the file
without reading code. Nothing here draws random numbers: `world.py` turns validated settings into a world.
"""

from __future__ import annotations

import csv
import json
import math
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from include.classification.classes import MigrationClass
from include.isotime import parse_iso_datetime

DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
DEFAULT_WORLD = DEFAULTS_DIR / "world.yaml"
STEP_MINUTES = 5
STEPS_PER_WEEK = 7 * 24 * 60 // STEP_MINUTES
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class InputError(ValueError):
    """A simulator input is missing or wrong; the message names the file and the key or row."""


@dataclass(frozen=True)
class LogNormal:
    """A positive duration distribution given the way people state them: a median and a 95th percentile."""

    median: float
    p95: float

    @property
    def sigma(self) -> float:
        return math.log(self.p95 / self.median) / 1.6448536269514722


@dataclass(frozen=True)
class ManualSettings:
    time: int  # minutes after midnight UTC
    jitter: float


@dataclass(frozen=True)
class WorldSettings:
    """The validated world file: what to generate (or read) and how to score it."""

    source: str
    start: date
    policy_path: Path
    environment: str
    traffic_profile: list[float]
    peak_to_trough: float | None
    noise: float
    peak_percentile: float
    deployments_file: Path | None
    weekday_every: tuple[float, float]
    weekend_every: tuple[float, float]
    deploy_duration: tuple[float, float]
    package_lag: float
    deploy_locks: list[tuple[str, datetime, datetime]]
    migrations_file: Path | None
    migrations_directory: Path | None
    per_weekday: float
    per_weekend_day: float
    merge_hours: tuple[float, float]
    class_mix: dict[MigrationClass, float]
    unknown_actual: dict[MigrationClass, float]
    durations: dict[MigrationClass, LogNormal]
    pipeline_overhead: float
    incidents_file: Path | None
    incidents_per_week: dict[int, float]
    incident_durations: dict[int, LogNormal]
    rollback_severity: int
    manual: dict[str, ManualSettings]
    review_times: tuple[int, ...]
    max_pending_age_days: float
    slots_per_day: int
    # The merge-request classification job (issue 3): None when it is not enforced (today's world), else the
    # fraction of unknown migrations that still reach production unannotated.
    merge_request_slip_through: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Reader:
    """Typed access to a YAML mapping that reports `file: key.path: problem`."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> InputError:
        return InputError(f"{self.source}: {path}: {problem}")

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {type(value).__name__}")
        if allowed is not None:
            for key in value:
                if str(key) not in allowed:
                    raise self.fail(f"{path}.{key}", f"unknown key (allowed: {', '.join(allowed)})")
        return value

    def key(self, data: dict[str, Any], key: str, path: str) -> Any:
        if key not in data:
            raise self.fail(f"{path}.{key}" if path else key, "missing")
        return data[key]

    def number(self, value: Any, path: str, low: float | None = 0.0, strict: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(path, f"expected a number, got {value!r}")
        if low is not None and (value < low or (strict and value == low)):
            raise self.fail(path, f"expected a number {'>' if strict else '≥'} {low:g}, got {value!r}")
        return float(value)

    def pair(self, value: Any, path: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(path, f"expected [low, high], got {value!r}")
        low, high = (self.number(v, f"{path}[{i}]") for i, v in enumerate(value))
        if high < low:
            raise self.fail(path, f"high {high:g} is below low {low:g}")
        return low, high

    def clock(self, value: Any, path: str) -> int:
        try:
            hours, minutes = str(value).split(":")
            total = int(hours) * 60 + int(minutes)
            if not (0 <= int(hours) < 24 and 0 <= int(minutes) < 60):
                raise ValueError
        except ValueError:
            raise self.fail(path, f'expected a time "HH:MM", got {value!r}') from None
        return total

    def path(self, value: Any, path: str, base: Path, must_exist: bool = True) -> Path | None:
        if value in (None, ""):
            return None
        found = (base / str(value)).resolve() if not Path(str(value)).is_absolute() else Path(str(value))
        if must_exist and not found.exists():
            raise self.fail(path, f"{found} does not exist")
        return found

    def distribution(self, value: Any, path: str) -> LogNormal:
        data = self.mapping(value, path, ("median", "p95"))
        median = self.number(self.key(data, "median", path), f"{path}.median", strict=True)
        p95 = self.number(self.key(data, "p95", path), f"{path}.p95", strict=True)
        if p95 < median:
            raise self.fail(path, f"p95 {p95:g} is below the median {median:g}")
        return LogNormal(median, p95)

    def class_weights(self, value: Any, path: str) -> dict[MigrationClass, float]:
        data = self.mapping(value, path)
        weights: dict[MigrationClass, float] = {}
        for key, weight in data.items():
            try:
                cls = MigrationClass.parse(key)
            except ValueError as exc:
                raise self.fail(f"{path}.{key}", str(exc)) from None
            weights[cls] = self.number(weight, f"{path}.{key}")
        if sum(weights.values()) <= 0:
            raise self.fail(path, "the weights must add up to more than 0")
        return weights


_TOP = (
    "start",
    "policy",
    "environment",
    "traffic",
    "deployments",
    "migrations",
    "incidents",
    "manual",
    "oracle",
)


def load_world_settings(path: Path | str = DEFAULT_WORLD) -> WorldSettings:
    """Read and validate a world file; raises InputError naming the file and key."""
    path = Path(path)
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML: {exc}") from exc
    r = _Reader(source)
    base = path.resolve().parent
    data = r.mapping(raw, "(top level)", _TOP)

    start = _monday(r, r.key(data, "start", ""), "start")
    policy_path = r.path(r.key(data, "policy", ""), "policy", base)
    environment = str(r.key(data, "environment", ""))

    traffic = r.mapping(
        r.key(data, "traffic", ""), "traffic", ("profile", "peak_to_trough", "noise", "peak_percentile")
    )
    profile_path = r.path(r.key(traffic, "profile", "traffic"), "traffic.profile", base)
    ratio = traffic.get("peak_to_trough")
    peak_to_trough = None if ratio is None else r.number(ratio, "traffic.peak_to_trough", 1.0)
    noise = r.number(traffic.get("noise", 0.0), "traffic.noise")
    if noise >= 1:
        raise r.fail("traffic.noise", f"expected a fraction below 1, got {noise!r}")
    peak_percentile = r.number(traffic.get("peak_percentile", 75), "traffic.peak_percentile")
    if peak_percentile > 100:
        raise r.fail("traffic.peak_percentile", f"expected 0..100, got {peak_percentile!r}")

    deploys = r.mapping(
        r.key(data, "deployments", ""),
        "deployments",
        ("file", "weekday_every", "weekend_every", "duration", "package_lag", "change_locks"),
    )
    locks = []
    for index, item in enumerate(deploys.get("change_locks") or []):
        where = f"deployments.change_locks[{index}]"
        lock = r.mapping(item, where, ("name", "from", "to"))
        begin = _instant(r, r.key(lock, "from", where), f"{where}.from")
        end = _instant(r, r.key(lock, "to", where), f"{where}.to")
        if end <= begin:
            raise r.fail(where, "`to` must be after `from`")
        locks.append((str(lock.get("name") or f"lock {index}"), begin, end))

    migrations = r.mapping(
        r.key(data, "migrations", ""),
        "migrations",
        (
            "file",
            "directory",
            "per_weekday",
            "per_weekend_day",
            "merge_hours",
            "classes",
            "unknown_actual",
            "duration",
            "pipeline_overhead",
            "merge_request_check",
        ),
    )
    slip_through = _merge_request_check(r, migrations.get("merge_request_check"))
    durations_raw = r.mapping(r.key(migrations, "duration", "migrations"), "migrations.duration")
    durations: dict[MigrationClass, LogNormal] = {}
    for key, value in durations_raw.items():
        try:
            cls = MigrationClass.parse(key)
        except ValueError as exc:
            raise r.fail(f"migrations.duration.{key}", str(exc)) from None
        durations[cls] = r.distribution(value, f"migrations.duration.{key}")
    for cls in MigrationClass:
        if cls is not MigrationClass.UNKNOWN and cls not in durations:
            raise r.fail(f"migrations.duration.{cls.value}", "missing")
    unknown_actual = r.class_weights(
        r.key(migrations, "unknown_actual", "migrations"), "migrations.unknown_actual"
    )
    if MigrationClass.UNKNOWN in unknown_actual:
        raise r.fail("migrations.unknown_actual.unknown", "an unknown migration is really some known class")
    merge_hours = r.pair(migrations.get("merge_hours", [0, 24]), "migrations.merge_hours")
    if merge_hours[1] > 24:
        raise r.fail("migrations.merge_hours", "hours are 0..24")

    incidents = r.mapping(
        r.key(data, "incidents", ""), "incidents", ("file", "per_week", "duration", "rollback_severity")
    )
    per_week = {
        _severity(r, k, f"incidents.per_week.{k}"): r.number(v, f"incidents.per_week.{k}")
        for k, v in r.mapping(r.key(incidents, "per_week", "incidents"), "incidents.per_week").items()
    }
    incident_durations = {
        _severity(r, k, f"incidents.duration.{k}"): r.distribution(v, f"incidents.duration.{k}")
        for k, v in r.mapping(r.key(incidents, "duration", "incidents"), "incidents.duration").items()
    }
    for severity in per_week:
        if severity not in incident_durations:
            raise r.fail(f"incidents.duration.{severity}", "missing (incidents.per_week names this severity)")

    manual_raw = r.mapping(r.key(data, "manual", ""), "manual")
    manual: dict[str, ManualSettings] = {}
    for name in ("manual-daily", "manual-apac-emea"):
        item = r.mapping(r.key(manual_raw, name, "manual"), f"manual.{name}", ("time", "jitter"))
        manual[name] = ManualSettings(
            r.clock(r.key(item, "time", f"manual.{name}"), f"manual.{name}.time"),
            r.number(item.get("jitter", 0), f"manual.{name}.jitter"),
        )
    oracle = r.mapping(data.get("oracle") or {}, "oracle", ("max_pending_age_days", "slots_per_day"))
    slots = oracle.get("slots_per_day", 6)
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise r.fail("oracle.slots_per_day", f"expected an integer ≥ 1, got {slots!r}")

    return WorldSettings(
        source=source,
        start=start,
        policy_path=policy_path,  # type: ignore[arg-type]
        environment=environment,
        traffic_profile=read_traffic_csv(profile_path),  # type: ignore[arg-type]
        peak_to_trough=peak_to_trough,
        noise=noise,
        peak_percentile=peak_percentile,
        deployments_file=r.path(deploys.get("file"), "deployments.file", base),
        weekday_every=r.pair(r.key(deploys, "weekday_every", "deployments"), "deployments.weekday_every"),
        weekend_every=r.pair(r.key(deploys, "weekend_every", "deployments"), "deployments.weekend_every"),
        deploy_duration=r.pair(r.key(deploys, "duration", "deployments"), "deployments.duration"),
        package_lag=r.number(deploys.get("package_lag", 0), "deployments.package_lag"),
        deploy_locks=locks,
        migrations_file=r.path(migrations.get("file"), "migrations.file", base),
        migrations_directory=r.path(migrations.get("directory"), "migrations.directory", base),
        per_weekday=r.number(r.key(migrations, "per_weekday", "migrations"), "migrations.per_weekday"),
        per_weekend_day=r.number(migrations.get("per_weekend_day", 0), "migrations.per_weekend_day"),
        merge_hours=merge_hours,
        class_mix=r.class_weights(r.key(migrations, "classes", "migrations"), "migrations.classes"),
        unknown_actual=unknown_actual,
        durations=durations,
        pipeline_overhead=r.number(migrations.get("pipeline_overhead", 0), "migrations.pipeline_overhead"),
        incidents_file=r.path(incidents.get("file"), "incidents.file", base),
        incidents_per_week=per_week,
        incident_durations=incident_durations,
        rollback_severity=_severity(r, incidents.get("rollback_severity", 2), "incidents.rollback_severity"),
        manual=manual,
        review_times=_review_times(r, manual_raw.get("review_times", ["13:00"])),
        max_pending_age_days=r.number(
            oracle.get("max_pending_age_days", 7), "oracle.max_pending_age_days", 0, strict=True
        ),
        slots_per_day=slots,
        merge_request_slip_through=slip_through,
    )


def _merge_request_check(r: _Reader, value: Any) -> float | None:
    """`migrations.merge_request_check: {enabled, slip_through}`: None when absent or disabled."""
    path = "migrations.merge_request_check"
    if value is None:
        return None
    data = r.mapping(value, path, ("enabled", "slip_through"))
    enabled = data.get("enabled", False)
    if not isinstance(enabled, bool):
        raise r.fail(f"{path}.enabled", f"expected true or false, got {enabled!r}")
    slip = r.number(data.get("slip_through", 0.0), f"{path}.slip_through")
    if slip > 1:
        raise r.fail(f"{path}.slip_through", f"expected a fraction 0..1, got {slip!r}")
    return slip if enabled else None


def _review_times(r: _Reader, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise r.fail("manual.review_times", f'expected a list of times "HH:MM", got {value!r}')
    return tuple(sorted(r.clock(v, f"manual.review_times[{i}]") for i, v in enumerate(value)))


def _monday(r: _Reader, value: Any, path: str) -> date:
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise r.fail(path, f"expected a date YYYY-MM-DD, got {value!r}") from None
    if isinstance(day, datetime):
        day = day.date()
    if day.weekday() != 0:
        raise r.fail(path, f"{day.isoformat()} is a {DAYS[day.weekday()]}; the horizon starts on a Monday")
    return day


def _instant(r: _Reader, value: Any, path: str) -> datetime:
    moment = parse_instant(value)
    if moment is None:
        raise r.fail(path, f"expected an ISO-8601 instant, got {value!r}")
    return moment


def _severity(r: _Reader, value: Any, path: str) -> int:
    try:
        severity = int(value)
    except (TypeError, ValueError):
        raise r.fail(path, f"expected a severity 1-4, got {value!r}") from None
    if not 1 <= severity <= 4:
        raise r.fail(path, f"expected a severity 1-4, got {value!r}")
    return severity


def parse_instant(value: Any) -> datetime | None:
    """An ISO-8601 instant (naive ones are UTC), or None when it is not one."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = parse_iso_datetime(str(value))
        except ValueError:
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -- CSV files -----------------------------------------------------------------------------------------
def _rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV with a header (lines starting with # are comments), numbered as in the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    numbered = [
        (n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")
    ]
    if not numbered:
        raise InputError(f"{path}: empty (expected a header: {','.join(required)})")
    reader = csv.DictReader([line for _, line in numbered])
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}: line {numbered[0][0]}: header lacks column(s) {', '.join(missing)}")
    rows = []
    for (number, _), row in zip(numbered[1:], reader, strict=False):
        rows.append((number, {str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None}))
    return rows


def _cell_number(path: Path, line: int, row: dict[str, str], column: str, low: float = 0.0) -> float:
    try:
        value = float(row[column])
    except (KeyError, ValueError):
        raise InputError(
            f"{path}: line {line}: {column}: expected a number, got {row.get(column)!r}"
        ) from None
    if not math.isfinite(value) or value < low:
        raise InputError(f"{path}: line {line}: {column}: expected a number ≥ {low:g}, got {row[column]!r}")
    return value


def _cell_instant(path: Path, line: int, row: dict[str, str], column: str) -> datetime:
    moment = parse_instant(row.get(column, ""))
    if moment is None:
        raise InputError(
            f"{path}: line {line}: {column}: expected an ISO-8601 instant, got {row.get(column)!r}"
        )
    return moment


def read_traffic_csv(path: Path) -> list[float]:
    """One week of request rates (Monday 00:00 UTC onwards, every 5 minutes): `day,time,rate` rows."""
    rates: dict[int, float] = {}
    for line, row in _rows(path, ("day", "time", "rate")):
        day = row["day"].lower()[:3]
        if day not in DAYS:
            raise InputError(f"{path}: line {line}: day: expected mon..sun, got {row['day']!r}")
        try:
            hours, minutes = row["time"].split(":")
            minute = int(hours) * 60 + int(minutes)
            if not 0 <= minute < 1440 or minute % STEP_MINUTES:
                raise ValueError
        except ValueError:
            raise InputError(
                f"{path}: line {line}: time: expected HH:MM on a 5-minute grid, got {row['time']!r}"
            ) from None
        index = (DAYS.index(day) * 1440 + minute) // STEP_MINUTES
        if index in rates:
            raise InputError(f"{path}: line {line}: {row['day']} {row['time']} is given twice")
        rates[index] = _cell_number(path, line, row, "rate")
    missing = [i for i in range(STEPS_PER_WEEK) if i not in rates]
    if missing:
        first = missing[0] * STEP_MINUTES
        raise InputError(
            f"{path}: {len(missing)} of {STEPS_PER_WEEK} 5-minute steps missing, first "
            f"{DAYS[first // 1440]} {first % 1440 // 60:02d}:{first % 60:02d}"
        )
    return [rates[i] for i in range(STEPS_PER_WEEK)]


def read_deployments_csv(path: Path) -> list[tuple[datetime, float]]:
    """Planned deployments: `start,duration_min` rows."""
    return [
        (_cell_instant(path, line, row, "start"), _cell_number(path, line, row, "duration_min", 0.0))
        for line, row in _rows(path, ("start", "duration_min"))
    ]


def read_incidents_csv(path: Path) -> list[tuple[datetime, int, float]]:
    """Incidents: `opened_at,severity,duration_min` rows."""
    found = []
    for line, row in _rows(path, ("opened_at", "severity", "duration_min")):
        severity = row["severity"].removeprefix("severity::").removeprefix("S")
        if severity not in ("1", "2", "3", "4"):
            raise InputError(f"{path}: line {line}: severity: expected 1-4, got {row['severity']!r}")
        found.append(
            (
                _cell_instant(path, line, row, "opened_at"),
                int(severity),
                _cell_number(path, line, row, "duration_min"),
            )
        )
    return found


@dataclass(frozen=True)
class MigrationRecord:
    """A migration arrival as read from a file: when it was merged, its class, maybe its duration."""

    merged_at: datetime
    cls: MigrationClass
    version: str
    path: str
    duration: float | None = None
    actual: MigrationClass | None = None


def read_migrations_csv(path: Path) -> list[MigrationRecord]:
    """Arrivals: `merged_at,class[,duration_min][,actual_class]` rows."""
    found = []
    for line, row in _rows(path, ("merged_at", "class")):
        merged = _cell_instant(path, line, row, "merged_at")
        try:
            cls = MigrationClass.parse(row["class"])
            actual = MigrationClass.parse(row["actual_class"]) if row.get("actual_class") else None
        except ValueError as exc:
            raise InputError(f"{path}: line {line}: {exc}") from None
        if actual is MigrationClass.UNKNOWN:
            raise InputError(f"{path}: line {line}: actual_class: must be a known class")
        duration = _cell_number(path, line, row, "duration_min") if row.get("duration_min") else None
        found.append(
            MigrationRecord(merged, cls, f"{merged:%Y%m%d%H%M%S}", f"{path.name}:{line}", duration, actual)
        )
    return found


def read_migrations_directory(directory: Path) -> list[MigrationRecord]:
    """Classify every `*.rb` under `directory` with the product's classifier; the version is the merge time."""
    from include.classification import classify_path

    found = []
    for file in sorted(directory.rglob("*.rb")):
        result = classify_path(file)
        stamp = result.version or file.name.split("_", 1)[0]
        try:
            merged = datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            raise InputError(
                f"{file}: file name does not start with a version timestamp YYYYMMDDHHMMSS"
            ) from None
        found.append(MigrationRecord(merged, result.migration_class, stamp, str(file)))
    if not found:
        raise InputError(f"{directory}: no *.rb migration files found")
    return found


def traffic_from_prometheus(url: str, query: str, end: datetime, timeout: float = 30.0) -> list[float]:
    """One week of request rates from a Prometheus range query ending at `end`, folded onto a UTC week.

    Each 5-minute step of the week takes the mean of the samples that fell on it; a step without any
    sample is an error (the simulator must not invent traffic).
    """
    end = end.astimezone(UTC)
    begin = end - timedelta(days=7)
    params = urllib.parse.urlencode(
        {"query": query, "start": begin.timestamp(), "end": end.timestamp(), "step": f"{STEP_MINUTES * 60}s"}
    )
    target = f"{url.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:  # noqa: S310 - operator-given URL
            body = json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"prometheus {url}: range query failed: {exc}") from exc
    results = (body.get("data") or {}).get("result") or []
    if body.get("status") != "success" or not results:
        raise InputError(
            f"prometheus {url}: query {query!r} returned no series ({body.get('error', 'empty')})"
        )
    if len(results) > 1:
        raise InputError(f"prometheus {url}: query {query!r} returned {len(results)} series; expected one")
    sums = [0.0] * STEPS_PER_WEEK
    counts = [0] * STEPS_PER_WEEK
    for stamp, value in results[0].get("values", []):
        moment = datetime.fromtimestamp(float(stamp), UTC)
        rate = float(value)
        if not math.isfinite(rate) or rate < 0:
            continue
        index = (moment.weekday() * 1440 + moment.hour * 60 + moment.minute) // STEP_MINUTES
        sums[index] += rate
        counts[index] += 1
    missing = sum(1 for c in counts if c == 0)
    if missing:
        raise InputError(
            f"prometheus {url}: query {query!r} has no data for {missing} of {STEPS_PER_WEEK} 5-minute steps "
            f"of the week ending {end.isoformat()}"
        )
    return [s / c for s, c in zip(sums, counts, strict=True)]
