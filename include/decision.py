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


def recheck_before_create(results: list[GateResult], overrides: dict[str, str] | None = None) -> Decision:
    """The gates judged again right before the create: the decision's verdicts may be hours old (a retry, a
    cleared task). Same rule as `decide` (overrides still apply), never a dry run."""
    return decide(results, overrides, dry_run=False)


def pending_drift(snapshot: dict[str, Any], rediscovered: dict[str, Any]) -> str | None:
    """Why the pending set the decision classified is no longer what would run, or None when it still is.

    Compared: the deployed SHA, the set of pending versions (git range plus what the admin API alone
    reports), and whether anything now waits on the previous environment. Any difference voids the decision:
    the pipeline would run migrations nobody classified, or skip the order the decision assumed.
    """
    old_sha = (snapshot.get("deployed") or {}).get("sha")
    new_sha = (rediscovered.get("deployed") or {}).get("sha")
    if old_sha != new_sha:
        return f"deployed SHA changed from {str(old_sha)[:11]} to {str(new_sha)[:11]} since the decision"
    old = {m.get("version") or m.get("path") for m in snapshot.get("migrations", [])}
    new = {f.get("version") or f.get("path") for f in rediscovered.get("files", [])}
    new |= set((rediscovered.get("cross_check") or {}).get("only_in_admin_api", []))
    added, gone = sorted(new - old), sorted(old - new)
    if added or gone:
        parts = []
        if added:
            parts.append(f"{len(added)} new pending: {', '.join(added[:5])}")
        if gone:
            parts.append(f"{len(gone)} no longer pending: {', '.join(gone[:5])}")
        return "pending set changed since the decision (" + "; ".join(parts) + ")"
    if rediscovered.get("waiting_on_after") and not snapshot.get("waiting_on_after"):
        return "migrations now wait on the previous environment: " + ", ".join(
            rediscovered["waiting_on_after"][:5]
        )
    return None


def classified_versions(snapshot: dict[str, Any]) -> list[str]:
    """The versions a `selected_versions` pipeline may be given: the selected prefix, each of them classified
    in this snapshot with a real version. Raises ValueError naming the first one that is not."""
    migrations = snapshot.get("migrations", [])
    known = {m.get("version"): m for m in migrations if m.get("version")}
    selected = snapshot.get("selected", migrations)
    versions = []
    for item in selected:
        version = item.get("version")
        if not version or version not in known:
            raise ValueError(
                f"selected migration {item.get('path') or version!r} was not classified in the snapshot"
            )
        if not known[version].get("class"):
            raise ValueError(f"selected migration {version} has no class")
        versions.append(version)
    return versions
