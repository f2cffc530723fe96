"""What declaring the PDM DAGs needs of the policy, kept on disk by the policy file's content.

The dag-processor re-imports `dags/pdm_environments.py` in a fresh process every cycle (issue 18), so an
in-memory cache never survives and loading the whole policy (its model, every section's builder and
validator) was most of what a parse cost. Declaring the DAGs needs only a few facts: the environments, their
schedule switch and database environment, the gates' wait and poll, the execution mode and the approval
timeout. They are written to a small JSON file named by a digest of the policy's text and of the code that
validates it (the files of this package, the class names, and the holiday calendars' package), and read from there while
neither changes. On a miss, or when the file cannot be read, the full loader validates the policy first:
a policy that fails validation never gets a file, so an invalid policy is reported at every parse.

Nothing here is a second validator: every run's tasks load and validate the full policy again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from include.policy.errors import PolicyError
from include.policy.holiday_codes import cache_dir, package_identity

if TYPE_CHECKING:
    from include.policy.model import Policy

FORMAT = 2
"""Bumped when the JSON layout below changes (also part of the digest)."""


@dataclass(frozen=True)
class DeclaredEnvironment:
    """One environment's DAG: its name, its `db/...` environment, the one it follows, and its gates' pace."""

    name: str
    db_environment: str
    after: str | None
    scheduled: bool
    max_wait: timedelta
    poll_interval: timedelta
    class_windows: tuple[tuple[str, tuple[str, ...]], ...]
    """Each automatic class with windows, in class order, and its window names (the timetable's texts)."""


@dataclass(frozen=True)
class PolicyDeclaration:
    """The facts of a valid policy that the DAG file declares from."""

    environments: tuple[DeclaredEnvironment, ...]
    execution_mode: str
    approval_timeout: timedelta

    def environment(self, name: str) -> DeclaredEnvironment:
        for declared in self.environments:
            if declared.name == name:
                return declared
        raise KeyError(name)

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "execution_mode": self.execution_mode,
            "approval_timeout_s": self.approval_timeout.total_seconds(),
            "environments": [
                {
                    "name": env.name,
                    "db_environment": env.db_environment,
                    "after": env.after,
                    "scheduled": env.scheduled,
                    "max_wait_s": env.max_wait.total_seconds(),
                    "poll_interval_s": env.poll_interval.total_seconds(),
                    "class_windows": [[cls, list(windows)] for cls, windows in env.class_windows],
                }
                for env in self.environments
            ],
        }

    @classmethod
    def from_json(cls, data: object) -> PolicyDeclaration:
        """Rebuild from `to_json`'s output; raises (KeyError, TypeError, ValueError) on anything else."""
        if not isinstance(data, dict):
            raise TypeError("not a mapping")
        if data.get("format") != FORMAT:
            raise ValueError("another format")
        environments = data["environments"]
        if not isinstance(environments, list):
            raise TypeError("environments")
        return cls(
            environments=tuple(
                DeclaredEnvironment(
                    name=str(env["name"]),
                    db_environment=str(env["db_environment"]),
                    after=None if env["after"] is None else str(env["after"]),
                    scheduled=bool(env["scheduled"]),
                    max_wait=timedelta(seconds=float(env["max_wait_s"])),
                    poll_interval=timedelta(seconds=float(env["poll_interval_s"])),
                    class_windows=tuple(
                        (str(cls), tuple(str(w) for w in windows)) for cls, windows in env["class_windows"]
                    ),
                )
                for env in environments
            ),
            execution_mode=str(data["execution_mode"]),
            approval_timeout=timedelta(seconds=float(str(data["approval_timeout_s"]))),
        )


def declaration_of(policy: Policy) -> PolicyDeclaration:
    """The declaring facts of a loaded (valid) policy."""
    from include.classification.classes import MigrationClass

    environments = []
    for name, env in policy.environments.items():
        scoped = policy.for_environment(name)
        gates = scoped.gates
        rules = [(cls, scoped.class_rule(cls)) for cls in MigrationClass]
        environments.append(
            DeclaredEnvironment(
                name=name,
                db_environment=env.db_environment,
                after=env.after,
                scheduled=env.schedule,
                max_wait=gates.max_wait,
                poll_interval=gates.poll_interval,
                class_windows=tuple(
                    (cls.value, tuple(rule.windows)) for cls, rule in rules if rule.automatic and rule.windows
                ),
            )
        )
    return PolicyDeclaration(tuple(environments), policy.execution_mode, policy.approval.timeout)


def load_declaration(path: str | Path) -> PolicyDeclaration:
    """The declaring facts of the policy at `path`; raises PolicyError as `load_policy` does when it is invalid."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror}") from exc
    cache_file = cache_dir() / "policy-declarations" / f"{_digest(text)}.json"
    try:
        return PolicyDeclaration.from_json(json.loads(cache_file.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from include.policy.loader import load_policy

    declaration = declaration_of(load_policy(path))
    _write(cache_file, declaration)
    return declaration


def _digest(text: str) -> str:
    """The policy's text, and the identity of every file whose change could change its verdict."""
    parts = [f"format {FORMAT}", text, package_identity() or "no holidays package"]
    here = Path(__file__).parent
    for source in [*sorted(here.glob("*.py")), here.parent / "classification" / "classes.py"]:
        try:
            stat = source.stat()
        except OSError:
            continue
        parts.append(f"{source.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:32]


def _write(cache_file: Path, declaration: PolicyDeclaration) -> None:
    """Atomically (a temporary file renamed over); a read-only or full disk only costs the next parse a load."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(declaration.to_json(), sort_keys=True), encoding="utf-8")
        partial.replace(cache_file)
    except OSError:
        pass
