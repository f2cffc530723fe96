"""What a run should do, given what is pending, the policy and the gates: pure decision rules."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from include.classification.classes import MigrationClass, most_restrictive
from include.gates.result import GateResult

NOTHING_PENDING = "nothing_pending"
NEEDS_HUMAN = "needs_human"
WAIT_FOR_GATES = "wait_for_gates"


def run_class(migrations: Iterable[dict[str, Any]]) -> MigrationClass:
    """The class a run must be scheduled for: the most restrictive pending migration's (all_pending)."""
    return most_restrictive(MigrationClass.parse(m["class"]) for m in migrations)


def select_versions(
    migrations: list[dict[str, Any]],
    allowed: Callable[[MigrationClass], bool],
    include: Callable[[MigrationClass], bool] | None = None,
) -> list[dict[str, Any]]:
    """`selected_versions` mode: the longest prefix, in version order, that may run now as one run.

    A run is gated as its strictest class, as in all_pending, so a prefix qualifies when `allowed` holds for
    the strictest class in it: lighter migrations ahead of a heavy one ride in the heavy class's open window
    (a weekend run takes the background migration queued before the cleanup), while a heavy one stops a
    weekday prefix. `include` (the run's class filter) ends the prefix at the first migration it refuses.
    A prefix, not a subset: Rails runs migrations in version order, and skipping one to run a later one
    would reorder schema changes that may depend on each other.
    """
    best: list[dict[str, Any]] = []
    prefix: list[dict[str, Any]] = []
    strictest: MigrationClass | None = None
    for migration in sorted(migrations, key=lambda m: (m.get("version") or "", m.get("path") or "")):
        cls = MigrationClass.parse(migration["class"])
        if include is not None and not include(cls):
            break
        prefix.append(migration)
        if strictest is None or cls.rank > strictest.rank:
            strictest = cls
        if allowed(strictest):
            best = list(prefix)
    return best


def choose_path(
    migrations: list[dict[str, Any]], automatic: bool, override_reason: str | None = None
) -> tuple[str, str]:
    """Branch of a run after classification, with the reason: nothing pending, a human is needed, or gates."""
    if not migrations:
        return NOTHING_PENDING, "no post-deploy migration is pending"
    cls = run_class(migrations)
    if not automatic and not override_reason:
        unknown = [m["path"] for m in migrations if m["class"] == MigrationClass.UNKNOWN.value]
        detail = f": {', '.join(unknown[:5])}" if unknown else ""
        return NEEDS_HUMAN, f"class {cls.value} is never run automatically; a human must decide{detail}"
    return WAIT_FOR_GATES, f"{len(migrations)} pending, run class {cls.value}"


@dataclass(frozen=True)
class Decision:
    """The verdict on the gates: trigger the pipeline or not, and why, including overridden gates."""

    go: bool
    reason: str
    gates: list[dict[str, Any]] = field(default_factory=list)
    overridden: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "go": self.go,
            "reason": self.reason,
            "gates": self.gates,
            "overridden": self.overridden,
            "dry_run": self.dry_run,
        }


def decide(
    results: list[GateResult], overrides: dict[str, str] | None = None, dry_run: bool = False
) -> Decision:
    """Go only if every gate is open or explicitly overridden with a reason; a dry run never goes."""
    overrides = {k: v for k, v in (overrides or {}).items() if v}
    closed = [r for r in results if not r.open and r.gate not in overrides]
    overridden = {r.gate: overrides[r.gate] for r in results if not r.open and r.gate in overrides}
    gates = [r.to_dict() for r in results]
    if not results:
        return Decision(False, "no gate was evaluated (fail closed)", gates, overridden, dry_run)
    if closed:
        reason = "; ".join(f"{r.gate}: {r.reason}" for r in closed)
        return Decision(False, f"gates closed: {reason}", gates, overridden, dry_run)
    suffix = f" (overridden: {', '.join(sorted(overridden))})" if overridden else ""
    if dry_run:
        return Decision(
            False, f"dry run: all gates open{suffix}; pipeline not triggered", gates, overridden, True
        )
    return Decision(True, f"all gates open{suffix}", gates, overridden, False)


def decision_id(dag_id: str, run_id: str, environment: str, sha: str) -> str:
    """A stable identity for one decision to run the PDM: retries of the same run share it."""
    digest = hashlib.sha256(f"{dag_id}\n{run_id}\n{environment}\n{sha}".encode()).hexdigest()[:16]
    return f"{environment}-{sha[:11]}-{digest}"
