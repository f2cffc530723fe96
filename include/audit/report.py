"""Reports over the audit trail (pandas): what ran when, how long each class waited, why gates blocked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from include.audit.store import StoredEvent


@dataclass
class AuditReport:
    """The report's tables, each a pandas DataFrame, in the order they are shown."""

    tables: dict[str, Any]

    def to_text(self) -> str:
        parts = []
        for title, frame in self.tables.items():
            parts.append(f"== {title}")
            parts.append(frame.to_string(index=False) if len(frame) else "(none)")
            parts.append("")
        return "\n".join(parts)

    def to_csv(self) -> str:
        parts = []
        for title, frame in self.tables.items():
            parts.append(f"# {title}")
            parts.append(frame.to_csv(index=False))
        return "\n".join(parts)

    def to_html(self) -> str:
        body = "".join(
            f"<h2>{title}</h2>"
            + (frame.to_html(index=False, border=0, classes="pdm") if len(frame) else "<p>(none)</p>")
            for title, frame in self.tables.items()
        )
        style = (
            "body{font-family:system-ui,sans-serif;margin:2em}table.pdm{border-collapse:collapse}"
            "table.pdm td,table.pdm th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}"
        )
        return f"<!doctype html><html><head><meta charset='utf-8'><title>PDM audit report</title><style>{style}</style></head><body><h1>PDM audit report</h1>{body}</body></html>"


def build_report(events: list[StoredEvent]) -> AuditReport:
    """Runs per environment, pipelines, waiting time per class, gate blocks, durations, overrides."""
    import pandas as pd

    frame = pd.DataFrame(
        [
            {
                "id": e.id,
                "environment": e.stream,
                "dag_id": e.dag_id,
                "run_id": e.run_id,
                "kind": e.kind,
                "actor": e.actor,
                "recorded_at": pd.Timestamp(e.recorded_at),
                "payload": e.payload,
            }
            for e in events
        ],
        columns=["id", "environment", "dag_id", "run_id", "kind", "actor", "recorded_at", "payload"],
    )
    outcomes = frame[frame.kind == "outcome"].copy()
    outcomes["outcome"] = outcomes.payload.map(lambda p: p.get("outcome"))
    runs = (
        outcomes.groupby(["environment", "outcome"]).size().reset_index(name="runs")
        if len(outcomes)
        else pd.DataFrame(columns=["environment", "outcome", "runs"])
    )

    snapshots = frame[frame.kind == "snapshot"]
    run_class = {(r.dag_id, r.run_id): r.payload.get("run_class") for r in snapshots.itertuples()}
    ran = outcomes[outcomes.outcome == "pipeline_succeeded"]
    what_ran = pd.DataFrame(
        [
            {
                "environment": r.environment,
                "finished": r.recorded_at,
                "run_id": r.run_id,
                "class": run_class.get((r.dag_id, r.run_id)),
                "pipeline": r.payload.get("pipeline", {}).get("id"),
                "migrations": ", ".join(
                    m["version"]
                    for s in snapshots[
                        (snapshots.dag_id == r.dag_id) & (snapshots.run_id == r.run_id)
                    ].payload
                    for m in s.get("migrations", [])
                ),
            }
            for r in ran.itertuples()
        ],
        columns=["environment", "finished", "run_id", "class", "pipeline", "migrations"],
    )

    # Waiting time: from the first snapshot that saw a migration pending to the success that ran it.
    first_seen: dict[tuple[str, str], Any] = {}
    classes: dict[tuple[str, str], str] = {}
    for r in snapshots.sort_values("id").itertuples():
        for m in r.payload.get("migrations", []):
            key = (r.environment, m["version"])
            first_seen.setdefault(key, r.recorded_at)
            classes[key] = m["class"]
    waits = []
    for r in ran.sort_values("id").itertuples():
        for s in snapshots[(snapshots.dag_id == r.dag_id) & (snapshots.run_id == r.run_id)].payload:
            for m in s.get("migrations", []):
                key = (r.environment, m["version"])
                if key in first_seen:
                    hours = (r.recorded_at - first_seen.pop(key)).total_seconds() / 3600
                    waits.append({"class": classes[key], "hours": hours})
    wait_frame = pd.DataFrame(waits, columns=["class", "hours"])
    waiting = (
        wait_frame.groupby("class")["hours"]
        .agg(migrations="count", median_hours="median", p95_hours=lambda s: s.quantile(0.95))
        .reset_index()
        .round(2)
        if len(wait_frame)
        else pd.DataFrame(columns=["class", "migrations", "median_hours", "p95_hours"])
    )

    decisions = frame[frame.kind == "decision"]
    blocks = [
        {"environment": r.environment, "gate": g["gate"], "reason": g["reason"]}
        for r in decisions.itertuples()
        if not r.payload.get("go")
        for g in r.payload.get("gates", [])
        if not g.get("open") and g["gate"] not in (r.payload.get("overridden") or {})
    ]
    block_frame = pd.DataFrame(blocks, columns=["environment", "gate", "reason"])
    gate_blocks = (
        block_frame.groupby(["environment", "gate"])
        .agg(times=("reason", "size"), last_reason=("reason", "last"))
        .reset_index()
        if len(block_frame)
        else pd.DataFrame(columns=["environment", "gate", "times", "last_reason"])
    )

    durations = pd.DataFrame(
        [
            {
                "class": run_class.get((r.dag_id, r.run_id)),
                "minutes": (r.payload.get("pipeline", {}).get("duration") or 0) / 60,
            }
            for r in outcomes[outcomes.outcome.isin(["pipeline_succeeded", "pipeline_failed"])].itertuples()
        ],
        columns=["class", "minutes"],
    )
    pipeline_durations = (
        durations.groupby("class")["minutes"]
        .agg(runs="count", median_minutes="median", max_minutes="max")
        .reset_index()
        .round(2)
        if len(durations)
        else pd.DataFrame(columns=["class", "runs", "median_minutes", "max_minutes"])
    )

    overrides = pd.DataFrame(
        [
            {
                "environment": r.environment,
                "when": r.recorded_at,
                "run_id": r.run_id,
                "user": r.payload.get("override_user"),
                "gates": ", ".join(sorted(r.payload.get("overridden") or {})),
                "reason": next(iter((r.payload.get("overridden") or {}).values()), ""),
            }
            for r in decisions.itertuples()
            if r.payload.get("overridden")
        ],
        columns=["environment", "when", "run_id", "user", "gates", "reason"],
    )
    return AuditReport(
        {
            "Runs per environment and outcome": runs,
            "What ran when": what_ran,
            "Waiting time per class (first seen pending → ran)": waiting,
            "How often each gate blocked": gate_blocks,
            "Pipeline durations per class": pipeline_durations,
            "Overrides": overrides,
        }
    )
