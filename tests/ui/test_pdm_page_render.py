"""The PDM page's HTML (fast, no server): times as <time> elements the page's script shows in the viewer's zone,
overrides (who, which gates, why) in the last runs, and an honest line when the last run ran what was pending."""

from __future__ import annotations

from datetime import UTC, datetime

from include.audit.store import StoredEvent
from include.observability import EnvironmentStatus

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def _event(kind: str, payload: dict, run_id: str = "manual__1") -> StoredEvent:
    return StoredEvent(
        id=1,
        stream="gprd",
        dag_id="pdm_gprd",
        run_id=run_id,
        run_after=None,
        kind=kind,
        decision_id=None,
        actor="manual:alice",
        recorded_at="2026-12-03T09:00:00+00:00",
        payload=payload,
        prev_hash="",
        row_hash="",
    )


def test_last_runs_show_overrides_and_local_times():
    from pdm_orchestrator.ui.app import _overrides_by_run, render_page

    events = [
        _event(
            "decision", {"go": True, "overridden": {"window": "CR 1234 approved"}, "override_user": "alice"}
        ),
        _event("decision", {"go": False, "overridden": {}}, run_id="scheduled__2"),
    ]
    overrides = _overrides_by_run(events)
    assert overrides == {
        ("pdm_gprd", "manual__1"): {"user": "alice", "gates": ["window"], "reason": "CR 1234 approved"}
    }
    status = EnvironmentStatus("gprd")
    status.last_runs = [
        {
            "dag_id": "pdm_gprd",
            "run_id": "manual__1",
            "recorded_at": "2026-12-03T09:10:00+00:00",
            "outcome": "pipeline_succeeded",
            "reason": "pipeline 42 succeeded",
            "pipeline_id": 42,
            "pipeline_url": "http://gitlab.example/p/42",
            "override": overrides[("pdm_gprd", "manual__1")],
        }
    ]
    page = render_page([status], None, NOW)
    assert "window by alice: CR 1234 approved" in page
    assert "<time datetime='2026-12-03T09:10:00+00:00'>Thu 2026-12-03 09:10 UTC</time>" in page
    assert "toLocaleString" in page  # the viewer's zone
    assert "Nothing pending: the last run's pipeline 42 ran what was pending." in page
    assert "None pending at the last run" not in page


def test_last_runs_show_approvals_who_when_why():
    from pdm_orchestrator.ui.app import _approvals_by_run, render_page

    events = [
        _event(
            "approval",
            {"decision": "rejected", "by": "bob", "at": "2026-12-03T09:05:00+00:00", "comment": "<not now>"},
        ),
        _event("approval_expired", {"decision": "expired", "by": None, "at": None}, run_id="scheduled__2"),
    ]
    approvals = _approvals_by_run(events)
    assert approvals[("pdm_gprd", "scheduled__2")]["decision"] == "expired"
    status = EnvironmentStatus("gprd")
    base = {"dag_id": "pdm_gprd", "recorded_at": "2026-12-03T09:10:00+00:00", "reason": "-"}
    status.last_runs = [
        {
            **base,
            "run_id": "manual__1",
            "outcome": "rejected",
            "approval": approvals[("pdm_gprd", "manual__1")],
        },
        {
            **base,
            "run_id": "scheduled__2",
            "outcome": "approval_expired",
            "approval": approvals[("pdm_gprd", "scheduled__2")],
        },
    ]
    page = render_page([status], None, NOW)
    assert "<th>approval</th>" in page
    assert (
        "rejected by bob <time datetime='2026-12-03T09:05:00+00:00'>" in page and ": &lt;not now&gt;" in page
    )
    assert "expired unanswered" in page
