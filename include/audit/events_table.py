"""Audit events as a table for people (`python -m include.audit events --format table`): one line per event,
with the one thing each kind says (the outcome and why, the decision, the pipeline, the failed task).

JSON lines stay the default output, for machines."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from include.audit.store import StoredEvent

COLUMNS = ("recorded (UTC)", "env", "run", "kind", "actor", "what")


def summary(event: StoredEvent) -> str:
    """The one line an event says, by kind; other kinds show their payload as compact JSON."""
    p: dict[str, Any] = event.payload or {}
    if event.kind == "outcome":
        return f"{p.get('outcome')}: {p.get('reason') or ''}"
    if event.kind == "decision":
        verdict = "dry run" if p.get("dry_run") else ("go" if p.get("go") else "no go")
        closed = [g["gate"] for g in p.get("gates", []) if not g.get("open")]
        text = f"{verdict}: {p.get('reason') or ''}"
        if closed:
            text += f" (closed: {', '.join(closed)})"
        if p.get("override_user"):
            text += f"; overridden by {p['override_user']}"
        return text
    if event.kind == "snapshot":
        migrations = p.get("migrations") or []
        classes = Counter(m.get("class") for m in migrations)
        counts = ", ".join(f"{n} {c}" for c, n in sorted(classes.items(), key=lambda item: str(item[0])))
        deployed = (p.get("deployed") or {}).get("ref") or ""
        return f"{len(migrations)} pending ({counts or 'none'}); run class {p.get('run_class')}; deployed {deployed}"
    if event.kind == "run_started":
        params = p.get("params") or {}
        flags = [k for k in ("dry_run",) if params.get(k)]
        override = params.get("override") or {}
        gates = override.get("gates") or params.get("override_gates") or []
        if gates:
            flags.append(
                f"override {', '.join(gates)}: {override.get('reason') or params.get('override_reason')}"
            )
        return "started" + (f" ({'; '.join(flags)})" if flags else "")
    if event.kind in ("pipeline_created", "pipeline_requested"):
        return " ".join(str(p[k]) for k in ("id", "status", "web_url") if p.get(k)) or _compact(p)
    if event.kind == "task_failed":
        return f"{p.get('task_id')}: {p.get('error')}"
    return _compact(p)


def _compact(payload: dict[str, Any]) -> str:
    return json.dumps(payload, default=str, separators=(",", ":"))


def events_table(events: Iterable[StoredEvent], width: int = 100) -> str:
    """A plain-text table, oldest first; the last column is cut at `width` characters (the JSON has it all)."""
    rows = [
        (
            e.recorded_at[:19].replace("T", " "),
            e.stream,
            e.run_id,
            e.kind,
            e.actor or "",
            _cut(summary(e).replace("\n", " "), width),
        )
        for e in events
    ]
    if not rows:
        return "no events match"
    widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in rows)) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=False)), COLUMNS[-1]])]
    lines.append("  ".join([*("-" * w for w in widths), "-" * len(COLUMNS[-1])]))
    for row in rows:
        lines.append("  ".join([*(v.ljust(w) for v, w in zip(row, widths, strict=False)), row[-1]]))
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
