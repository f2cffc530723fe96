"""What the PDM page and the metrics endpoint show, derived from the audit trail and the policy (pure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from include.audit.store import StoredEvent
from include.classification.classes import MigrationClass

if TYPE_CHECKING:
    from include.policy.model import Policy


@dataclass
class EnvironmentStatus:
    """The latest known state of one environment."""

    environment: str
    dag_id: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)  # with first_seen and age_seconds
    deployed: dict[str, Any] | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)
    gates_at: str | None = None
    last_runs: list[dict[str, Any]] = field(default_factory=list)
    next_windows: dict[str, dict[str, Any]] = field(default_factory=dict)


def environment_status(
    environment: str, events: list[StoredEvent], policy: Policy | None, now: datetime, last_runs: int = 10
) -> EnvironmentStatus:
    """Pending migrations (latest snapshot) with their age, the latest gate verdicts, recent runs, windows."""
    status = EnvironmentStatus(environment)
    first_seen: dict[str, str] = {}
    outcomes: list[StoredEvent] = []
    pipelines: dict[tuple[str, str], dict[str, Any]] = {}
    for event in events:
        if event.stream != environment:
            continue
        status.dag_id = event.dag_id
        if event.kind == "snapshot":
            for migration in event.payload.get("migrations", []):
                first_seen.setdefault(migration["version"], event.recorded_at)
            status.pending = [dict(m) for m in event.payload.get("migrations", [])]
            status.deployed = event.payload.get("deployed")
        elif event.kind == "decision":
            status.gates = event.payload.get("gates", [])
            status.gates_at = event.recorded_at
        elif event.kind == "pipeline_created":
            pipelines[(event.dag_id, event.run_id)] = event.payload
        elif event.kind == "outcome":
            outcomes.append(event)
            if event.payload.get("outcome") == "pipeline_succeeded":
                status.pending = []  # what the snapshot listed has run
    for migration in status.pending:
        seen = first_seen.get(migration["version"])
        migration["first_seen"] = seen
        migration["age_seconds"] = (now - datetime.fromisoformat(seen)).total_seconds() if seen else None
    for event in reversed(outcomes[-last_runs:]):
        pipeline = event.payload.get("pipeline") or pipelines.get((event.dag_id, event.run_id)) or {}
        status.last_runs.append(
            {
                "dag_id": event.dag_id,
                "run_id": event.run_id,
                "recorded_at": event.recorded_at,
                "outcome": event.payload.get("outcome"),
                "reason": event.payload.get("reason"),
                "pipeline_id": pipeline.get("id"),
                "pipeline_url": pipeline.get("web_url"),
            }
        )
    if policy is not None:
        for cls in MigrationClass:
            rule = policy.class_rule(cls)
            if not rule.automatic:
                status.next_windows[cls.value] = {
                    "allowed_now": False,
                    "reason": "never automatic",
                    "seconds": None,
                }
                continue
            verdict = policy.window_verdict(cls, now)
            opens = verdict.next_opens_at
            status.next_windows[cls.value] = {
                "allowed_now": verdict.allowed,
                "reason": verdict.reason,
                "opens_at": opens.isoformat() if opens else None,
                "seconds": 0.0 if verdict.allowed else ((opens - now).total_seconds() if opens else None),
            }
    return status


def render_metrics(statuses: list[EnvironmentStatus]) -> str:
    """Prometheus text exposition of the PDM state of every environment."""
    lines: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")

    family("pdm_pending_migrations", "gauge", "Pending post-deploy migrations by class and database.")
    for status in statuses:
        counts = Counter((m.get("class"), m.get("database") or "unknown") for m in status.pending)
        for cls in MigrationClass:
            databases = {db for (c, db) in counts if c == cls.value} or {"all"}
            for db in sorted(databases):
                value = counts.get((cls.value, db), 0)
                lines.append(
                    _sample(
                        "pdm_pending_migrations",
                        {"environment": status.environment, "class": cls.value, "database": db},
                        value,
                    )
                )
    family(
        "pdm_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest pending migration since first seen pending.",
    )
    for status in statuses:
        ages = [m["age_seconds"] for m in status.pending if m.get("age_seconds") is not None]
        lines.append(
            _sample(
                "pdm_oldest_pending_age_seconds", {"environment": status.environment}, max(ages, default=0)
            )
        )
    family(
        "pdm_last_run_timestamp_seconds",
        "gauge",
        "When the last PDM run of the environment ended, by outcome.",
    )
    family("pdm_last_run_failed", "gauge", "1 if the last run that reached the pipeline failed.")
    for status in statuses:
        if status.last_runs:
            last = status.last_runs[0]
            when = datetime.fromisoformat(last["recorded_at"]).timestamp()
            lines.append(
                _sample(
                    "pdm_last_run_timestamp_seconds",
                    {"environment": status.environment, "outcome": last["outcome"]},
                    when,
                )
            )
        piped = [
            r for r in status.last_runs if r["outcome"] in ("pipeline_succeeded", "pipeline_failed", "error")
        ]
        failed = 1 if piped and piped[0]["outcome"] != "pipeline_succeeded" else 0
        lines.append(_sample("pdm_last_run_failed", {"environment": status.environment}, failed))
    family("pdm_gate_open", "gauge", "Gate state at the last decision (1 open, 0 closed).")
    for status in statuses:
        for gate in status.gates:
            lines.append(
                _sample(
                    "pdm_gate_open",
                    {"environment": status.environment, "gate": gate["gate"]},
                    1 if gate["open"] else 0,
                )
            )
    family(
        "pdm_next_window_seconds", "gauge", "Seconds until the next allowed window per class (0: open now)."
    )
    for status in statuses:
        for class_name, window in status.next_windows.items():
            if window.get("seconds") is not None:
                lines.append(
                    _sample(
                        "pdm_next_window_seconds",
                        {"environment": status.environment, "class": class_name},
                        window["seconds"],
                    )
                )
    return "\n".join(lines) + "\n"


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    rendered = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return f"{name}{{{rendered}}} {float(value)!r}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
