"""The audit report on a hand-built trail: each table says what happened."""

from __future__ import annotations

import subprocess
import sys

from include.audit import AuditEvent, AuditStore, AuditTarget
from include.audit.report import build_report


def _trail(uri: str) -> AuditStore:
    store = AuditStore(AuditTarget.from_uri(uri))
    store.migrate()
    migration = {"version": "20261120000000", "class": "background", "path": "db/post_migrate/x.rb"}

    def add(run_id, kind, payload, when):
        store.record(
            AuditEvent("gprd", "pdm_gprd", run_id, kind, payload, actor="scheduled", recorded_at=when)
        )

    add("r1", "snapshot", {"run_class": "background", "migrations": [migration]}, "2026-11-23T10:00:00+00:00")
    add(
        "r1",
        "decision",
        {
            "go": False,
            "gates": [{"gate": "traffic", "open": False, "reason": "traffic 900 ≥ 600"}],
            "overridden": {},
        },
        "2026-11-23T10:01:00+00:00",
    )
    add("r1", "outcome", {"outcome": "gates_closed", "reason": "traffic"}, "2026-11-23T10:02:00+00:00")
    add("r2", "snapshot", {"run_class": "background", "migrations": [migration]}, "2026-11-23T16:00:00+00:00")
    add(
        "r2",
        "decision",
        {
            "go": True,
            "gates": [{"gate": "traffic", "open": False, "reason": "traffic 700 ≥ 600"}],
            "overridden": {"traffic": "index needed for incident 123"},
            "override_user": "alice",
        },
        "2026-11-23T16:01:00+00:00",
    )
    add(
        "r2",
        "outcome",
        {"outcome": "pipeline_succeeded", "pipeline": {"id": 7, "duration": 600}},
        "2026-11-23T16:30:00+00:00",
    )
    return store


def test_report_tables(tmp_path):
    store = _trail(f"sqlite:///{tmp_path}/a.db")
    report = build_report(store.events())
    runs = report.tables["Runs per environment and outcome"]
    assert dict(zip(runs.outcome, runs.runs, strict=True)) == {"gates_closed": 1, "pipeline_succeeded": 1}
    waiting = report.tables["Waiting time per class (first seen pending → ran)"]
    assert waiting.iloc[0]["class"] == "background" and waiting.iloc[0]["median_hours"] == 6.5
    blocks = report.tables["How often each gate blocked"]
    assert blocks.iloc[0]["gate"] == "traffic" and blocks.iloc[0]["times"] == 1
    overrides = report.tables["Overrides"]
    assert overrides.iloc[0]["user"] == "alice"
    durations = report.tables["Pipeline durations per class"]
    assert durations.iloc[0]["median_minutes"] == 10.0
    assert "What ran when" in report.to_text() and "<table" in report.to_html()


def test_report_cli_formats(tmp_path):
    uri = f"sqlite:///{tmp_path}/a.db"
    _trail(uri)
    for fmt, marker in (("table", "== Overrides"), ("csv", "# Overrides"), ("html", "<h2>Overrides</h2>")):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "include.audit",
                "--uri",
                uri,
                "report",
                "--since",
                "2026-01-01",
                "--format",
                fmt,
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert marker in result.stdout
