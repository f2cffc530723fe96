"""Builds the `classes` section (a missing class takes the rule of the next stricter one) and proves each class can run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from include.classification.classes import MigrationClass
from include.policy import schema
from include.policy.calendar import allowed_blocks, covering, lock_blocks
from include.policy.fields import FieldReader, or_default
from include.policy.learned import LearnedWindow
from include.policy.model import (
    ClassRule,
    GateSettings,
    Policy,
)
from include.policy.windows import RecurringRule

CLASS_KEYS = schema.keys("classes.<class>")
# Recurring locks repeat weekly; one year holds both DST changes, so it shows whether a class can ever run.
_SAMPLE_YEAR = (datetime(2026, 1, 5, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC))


class Classes(FieldReader):
    """Builds the `classes` section and proves each class can run."""

    def parse_classes(
        self, value: Any, windows: Mapping[str, RecurringRule | LearnedWindow], gates: GateSettings
    ) -> dict[MigrationClass, ClassRule]:
        spec = self.mapping(value, "classes", [c.value for c in MigrationClass], what="class")
        given: dict[MigrationClass, dict[str, Any]] = {}
        for cls in MigrationClass:
            if cls.value in spec:
                item = spec[cls.value]
                given[cls] = (
                    self.mapping(item, f"classes.{cls.value}", CLASS_KEYS) if item is not None else {}
                )
        rules: dict[MigrationClass, ClassRule] = {}
        # A class without a rule is scheduled like the nearest stricter class that has one (never lighter);
        # so walk from the strictest down.
        for cls in reversed(list(MigrationClass)):
            if cls not in given:
                rules[cls] = _default_rule(cls, rules, gates)
                continue
            rules[cls] = self.parse_class(cls, given[cls], windows, gates)
        return {cls: rules[cls] for cls in MigrationClass}

    def parse_class(
        self,
        cls: MigrationClass,
        item: dict[str, Any],
        windows: Mapping[str, RecurringRule | LearnedWindow],
        gates: GateSettings,
    ) -> ClassRule:
        path = f"classes.{cls.value}"
        names = self.texts(item.get("windows"), f"{path}.windows")
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in self.broken_windows:
                pass
            elif name not in windows:
                known = ", ".join(sorted(windows)) or "none defined"
                self.error(f"{path}.windows[{index}]", f'unknown window "{name}" (known: {known})')
            elif name in seen:
                self.error(f"{path}.windows[{index}]", f'window "{name}" is listed twice')
            seen.add(name)
        is_unknown = cls is MigrationClass.UNKNOWN
        automatic = self.boolean(item.get("automatic"), f"{path}.automatic", not is_unknown)
        if is_unknown and automatic:
            self.error(f"{path}.automatic", "unknown migrations are never run automatically: set it to false")
        elif automatic and not names:
            self.error(
                f"{path}.windows", "an automatic class needs at least one window (or set automatic: false)"
            )
        threshold = item.get("traffic_threshold")
        min_bake = item.get("min_bake")
        return ClassRule(
            windows=tuple(dict.fromkeys(n for n in names if n in windows)),
            automatic=automatic and not is_unknown,
            approval_required=self.boolean(
                item.get("approval_required"), f"{path}.approval_required", is_unknown
            ),
            traffic_threshold=self.number(threshold, f"{path}.traffic_threshold", gates.traffic.threshold, 0),
            max_predicted_duration=self.duration(
                item.get("max_predicted_duration"), f"{path}.max_predicted_duration", None, positive=True
            ),
            min_bake=or_default(self.duration(min_bake, f"{path}.min_bake", None), gates.rollback.min_bake),
        )

    # -- contradictions -----------------------------------------------------------------------------
    def check_every_class_can_run(self, policy: Policy) -> None:
        """A class whose windows always fall inside recurring (permanent) change locks could never run.

        Dated locks, dates and holidays end, so they never make a class unreachable; recurring locks
        repeat every week, so one sample year (with both DST changes) shows the contradiction.
        """
        recurring = [lock for lock in policy.locks if isinstance(lock, RecurringRule)]
        if not recurring:
            return
        locks = lock_blocks(recurring)
        start, end = _SAMPLE_YEAR
        for cls, rule in policy.classes.items():
            if not rule.windows or any(name in policy.learned_windows for name in rule.windows):
                continue  # a learned window's hours change daily: no permanent contradiction to prove
            windows = [policy.windows[name] for name in rule.windows]
            if covering(allowed_blocks(windows, locks), start, end):
                continue
            names = ", ".join(f'"{lock.name}"' for lock in recurring if _overlaps(lock, windows, start, end))
            listed = ", ".join(f'"{name}"' for name in rule.windows)
            self.error(
                f"classes.{cls.value}.windows",
                f"every window ({listed}) always falls inside recurring change locks ({names}): this class could never run",
            )


def _default_rule(
    cls: MigrationClass, stricter: dict[MigrationClass, ClassRule], gates: GateSettings
) -> ClassRule:
    """The rule of a class the file leaves out: that of the nearest stricter class; unknown is never automatic."""
    if cls is MigrationClass.UNKNOWN:
        return ClassRule((), False, True, gates.traffic.threshold, None, gates.rollback.min_bake)
    nearest = min(stricter, key=lambda c: c.rank)
    return stricter[nearest]


def _overlaps(lock: RecurringRule, windows: list[RecurringRule], start: datetime, end: datetime) -> bool:
    week = (start, start + timedelta(days=8))
    locked = lock.spans(*week)
    return any(a < d and c < b for w in windows for a, b in w.spans(*week) for c, d in locked)
