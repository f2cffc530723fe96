"""The PDM page's data and the metrics text, from a hand-built audit trail; promtool lints the metrics."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from include.audit.store import StoredEvent
from include.observability import environment_status, render_metrics

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _event(i, kind, payload, when, stream="gprd", run_id="r1"):
    return StoredEvent(
        i, stream, f"pdm_{stream}", run_id, None, kind, None, "scheduled", when, payload, "", ""
    )


EVENTS = [
    _event(
        1,
        "snapshot",
        {
            "deployed": {"ref": "17.6.202611250620-aaaaaaaaaaa.bbbbbbbbbbb"},
            "migrations": [
                {
                    "version": "20261120000000",
                    "class": "background",
                    "database": "main",
                    "path": "a.rb",
                    "reasons": ["enqueue"],
                },
                {
                    "version": "20261121000000",
                    "class": "cleanup",
                    "database": "ci",
                    "path": "b.rb",
                    "reasons": ["drop"],
                },
            ],
        },
        "2026-11-24T12:00:00+00:00",
    ),
    _event(
        2,
        "decision",
        {
            "go": False,
            "gates": [
                {"gate": "window", "open": False, "reason": "weekend only"},
                {"gate": "traffic", "open": True, "reason": "low"},
            ],
        },
        "2026-11-25T11:00:00+00:00",
        run_id="r2",
    ),
    _event(
        3,
        "outcome",
        {"outcome": "waiting_for_window", "reason": "weekend only"},
        "2026-11-25T11:00:05+00:00",
        run_id="r2",
    ),
]


def test_environment_status_ages_and_gates():
    status = environment_status("gprd", EVENTS, None, NOW)
    assert [m["version"] for m in status.pending] == ["20261120000000", "20261121000000"]
    assert status.pending[0]["age_seconds"] == 24 * 3600
    assert {g["gate"]: g["open"] for g in status.gates} == {"window": False, "traffic": True}
    assert status.last_runs[0]["outcome"] == "waiting_for_window"


def test_metrics_text():
    text = render_metrics([environment_status("gprd", EVENTS, None, NOW)])
    assert 'pdm_pending_migrations{environment="gprd",class="cleanup",database="ci"} 1.0' in text
    assert 'pdm_oldest_pending_age_seconds{environment="gprd"} 86400.0' in text
    assert 'pdm_gate_open{environment="gprd",gate="window"} 0.0' in text
    assert 'pdm_last_run_failed{environment="gprd"} 0.0' in text


def test_metrics_pass_promtool_lint():
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool (Debian prometheus) not installed")
    text = render_metrics([environment_status("gprd", EVENTS, None, NOW)])
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_load_with_promtool():
    from pathlib import Path

    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool (Debian prometheus) not installed")
    rules = Path(__file__).resolve().parents[2] / "docs" / "alerts.yml"
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 rules found" in result.stdout
