"""Timetable that creates PDM runs when the policy's windows open (and re-checks while they are open)."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Any

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from pendulum import UTC, DateTime, instance

# How far ahead to look for the next opening: a class whose windows are all locked for longer than this
# simply gets no scheduled run (manual runs still work).
HORIZON = timedelta(days=400)


class PolicyWindowTimetable(Timetable):
    """A run at each opening of an allowed window of the automatic classes, then every `recheck` while
    a window stays open (new packages keep arriving), never outside all windows.

    Each run re-reads what is pending and checks the gates then; a run whose class is not allowed at that
    moment records that it waits for its window. Backfills get one run per missed opening.

    :param policy_path: the policy file (re-read on the scheduler when the timetable is deserialized).
    :param environment: the environment whose policy overrides apply.
    :param recheck: interval between runs inside an open window.
    :param describe_next_run: whether `description` names the next run. The DAG file passes False: Airflow
        stores and shows the description of the deserialized copy (which always names it), while the
        declared instance is only probed by `isinstance(schedule, Timetable)`, which on Python 3.11 reads
        every protocol attribute, so naming the next run there would load the holiday calendars and walk
        the windows on every parse for a text nobody reads. Not serialized.
    :param class_windows: the automatic classes' window names, `((class, (window, ...)), ...)`, as the DAG
        file's policy declaration has them: `summary` and `description` then read no policy (the same probe,
        at every parse). Not serialized; the deserialized copy reads the policy.
    """

    def __init__(
        self,
        policy_path: str,
        environment: str,
        recheck: timedelta = timedelta(hours=2),
        *,
        describe_next_run: bool = True,
        class_windows: tuple[tuple[str, tuple[str, ...]], ...] | None = None,
    ) -> None:
        self.policy_path = policy_path
        self.environment = environment
        self.recheck = recheck
        self.describe_next_run = describe_next_run
        self.class_windows = class_windows

    # -- policy -------------------------------------------------------------------------------------
    @cached_property
    def _policy(self) -> Any:
        from include.policy import load_policy

        return load_policy(self.policy_path).for_environment(self.environment)

    @cached_property
    def _classes(self) -> list[Any]:
        from include.classification.classes import MigrationClass

        return [
            c
            for c in MigrationClass
            if self._policy.class_rule(c).automatic and self._policy.class_rule(c).windows
        ]

    def _class_windows(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Each automatic class with windows, and their names (declared, else from the policy)."""
        if self.class_windows is not None:
            return self.class_windows
        return tuple((cls.value, tuple(self._policy.class_rule(cls).windows)) for cls in self._classes)

    def run_times(self, start: DateTime, end: DateTime) -> list[DateTime]:
        """Every instant in [start, end) at which a run should start."""
        times: set[DateTime] = set()
        step = self.recheck.total_seconds()
        for cls in self._classes:
            for span in self._policy.allowed_spans(cls, start - timedelta(days=1), end):
                if start <= span.opens_at < end:
                    times.add(instance(span.opens_at).in_timezone(UTC))
                # Re-checks sit on a fixed grid (multiples of `recheck` since the epoch), so the answer
                # does not depend on where a question's range starts.
                first = max(span.opens_at, start).timestamp()
                tick = (int(first // step) + (0 if first % step == 0 else 1)) * step
                while tick < min(span.closes_at, end).timestamp():
                    times.add(DateTime.fromtimestamp(tick, tz=UTC))
                    tick += step
        return sorted(times)

    def next_run_after(self, after: DateTime, inclusive: bool) -> DateTime | None:
        window = timedelta(days=8)
        start = after
        while start < after + HORIZON:
            for moment in self.run_times(start, start + window):
                if moment > after or (inclusive and moment == after):
                    return moment
            start = start + window
        return None

    # -- Timetable protocol -----------------------------------------------------------------------------
    @property
    def summary(self) -> str:
        """Shown in the Schedule column: which windows can open a run (the next run is beside it)."""
        try:
            names: list[str] = []
            for _, windows in self._class_windows():
                names += [w for w in windows if w not in names]
        except Exception:  # noqa: BLE001 - the UI must still render; the DAG import shows the real error
            return f"PDM windows ({self.environment})"
        return f"PDM windows ({self.environment}): {', '.join(names) or 'none'}"

    @property
    def description(self) -> str:  # type: ignore[override]
        try:
            parts = [f"{cls}: {', '.join(windows)}" for cls, windows in self._class_windows()]
            text = f"Runs when these windows open, re-checking every {self.recheck}: " + "; ".join(parts)
            if not self.describe_next_run:
                return text
            now = DateTime.now(UTC)
            following = self.next_run_after(now, inclusive=False)
            upcoming = (
                f"; next run {following.strftime('%a %Y-%m-%d %H:%M %Z')}"
                if following
                else "; no window ahead"
            )
            return text + upcoming
        except Exception as exc:  # noqa: BLE001 - the UI must still render; the DAG import shows the real error
            return f"policy {self.policy_path} unreadable: {exc}"

    def serialize(self) -> dict[str, Any]:
        return {
            "policy_path": self.policy_path,
            "environment": self.environment,
            "recheck": self.recheck.total_seconds(),
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> PolicyWindowTimetable:
        return cls(data["policy_path"], data["environment"], timedelta(seconds=data["recheck"]))

    def validate(self) -> None:
        from airflow.exceptions import AirflowTimetableInvalid

        if self.recheck < timedelta(minutes=1):
            raise AirflowTimetableInvalid("recheck must be at least one minute")

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        return DataInterval.exact(run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            following = self.next_run_after(last_automated_data_interval.end, inclusive=False)
            now = DateTime.now(UTC)
            if following is not None and not restriction.catchup and following < now:
                # Without catch-up, a past slot (after a backfill of old slots, or scheduler downtime) is not
                # run one by one up to now: the next run is from now on, as for a new DAG.
                following = self.next_run_after(now, inclusive=True)
        else:
            # No start date or no catch-up: from now on. With catch-up (backfill-like), from the start date.
            start = restriction.earliest or DateTime.now(UTC)
            if not restriction.catchup:
                start = max(start, DateTime.now(UTC))
            following = self.next_run_after(start, inclusive=True)
        if following is None:
            return None
        if restriction.latest is not None and following > restriction.latest:
            return None
        return DagRunInfo.exact(following)
