"""`python -m include.audit events`: JSON lines by default, a table for people, filtered by --environment,
--kind and --since, against a real PostgreSQL audit store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from include.audit import AuditEvent, AuditStore, AuditTarget

ROOT = Path(__file__).resolve().parents[2]


def _record(store: AuditStore, stream: str, kind: str, payload: dict, run_id: str = "manual__1") -> None:
    store.record(
        AuditEvent(
            stream=stream,
            dag_id=f"pdm_{stream}",
            run_id=run_id,
            kind=kind,
            payload=payload,
            actor="manual:alice",
            run_after="2026-11-25T10:00:00+00:00",
        )
    )


def _cli(uri: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include.audit", "--uri", uri, "events", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_events_as_json_lines_or_a_table(postgres_database):
    store = AuditStore(AuditTarget.from_uri(postgres_database))
    store.migrate()
    _record(
        store, "gprd", "run_started", {"params": {"override": {"gates": ["window"], "reason": "CR 1234 ok"}}}
    )
    _record(
        store,
        "gprd",
        "decision",
        {
            "go": True,
            "reason": "all gates open (overridden)",
            "gates": [{"gate": "window", "open": False}],
            "override_user": "alice",
        },
    )
    _record(store, "gprd", "outcome", {"outcome": "pipeline_succeeded", "reason": "pipeline 42 succeeded"})
    _record(store, "gstg", "outcome", {"outcome": "noop", "reason": "nothing pending"}, run_id="scheduled__2")

    default = _cli(postgres_database)
    assert default.returncode == 0, default.stderr
    lines = [json.loads(line) for line in default.stdout.splitlines()]
    assert [e["kind"] for e in lines] == ["run_started", "decision", "outcome", "outcome"]

    table = _cli(postgres_database, "--format", "table", "--environment", "gprd")
    assert table.returncode == 0, table.stderr
    header, rule, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["recorded", "(UTC)", "env"] and set(rule) <= {"-", " "}
    assert len(rows) == 3 and all(" gprd " in r for r in rows)
    assert "started (override window: CR 1234 ok)" in rows[0]
    assert "go: all gates open (overridden) (closed: window); overridden by alice" in rows[1]
    assert "pipeline_succeeded: pipeline 42 succeeded" in rows[2]

    outcomes = _cli(postgres_database, "--format", "table", "--kind", "outcome")
    assert len(outcomes.stdout.splitlines()) == 4  # header, rule, two outcomes
    later = _cli(postgres_database, "--format", "table", "--since", "2999-01-01")
    assert later.stdout.strip() == "no events match"
