"""The 7-day outlook (core) and its plotly picture (fast, no servers): class windows minus locks clipped to the
week, thresholds of the absolute traffic gate, deployments expected from a weekly pattern, and a figure with
every part and no CDN."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from include.outlook import expected_deployments, outlook, shift
from include.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)  # a Thursday


def _policy():
    return load_policy(ROOT / "config" / "policy.local.yaml").for_environment("gprd")


def test_the_week_has_each_automatic_class_windows_clipped_to_it():
    view = outlook(_policy(), "gprd", NOW)
    assert view.end - view.start == timedelta(days=7)
    heavy = [w for w in view.windows if w["class"] == "schema_heavy"]
    assert heavy and all(w["window"] == "weekend" for w in heavy)
    assert heavy[0]["opens_at"] == datetime(2026, 12, 5, tzinfo=UTC)  # Saturday 00:00
    assert all(view.start <= w["opens_at"] < w["closes_at"] <= view.end for w in view.windows)
    assert "unknown" not in {w["class"] for w in view.windows}  # never automatic
    assert view.thresholds["schema_heavy"] == 400 and view.thresholds["data"] == 600


def test_deployments_expected_from_a_weekly_pattern():
    past = [NOW - timedelta(days=7 * week) + timedelta(hours=2) for week in range(1, 5)]  # Thursdays 11:30
    found = expected_deployments(past, NOW, NOW + timedelta(days=7), timedelta(weeks=4), 0.5)
    assert found and found[0]["expected_at"] == datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    assert "Thu" in found[0]["basis"]
    assert shift([(NOW, 1.0)], timedelta(days=7)) == [(NOW + timedelta(days=7), 1.0)]


def test_the_figure_draws_every_part_without_a_cdn():
    from pdm_orchestrator.ui.outlook_chart import figure_div, plotly_js_path

    view = outlook(_policy(), "gprd", NOW)
    view.traffic = [(NOW + timedelta(hours=h), 300.0 + h) for h in range(168)]
    view.deployments = [{"expected_at": NOW + timedelta(hours=5), "basis": "weekly"}]
    view.next_run = NOW + timedelta(hours=1)
    div = figure_div(view, "outlook-gprd")
    for text in (
        "schema_heavy may run",
        "expected deployments",
        "predicted next run",
        "schema_heavy, cleanup threshold (400",
    ):
        assert text in div, text
    assert "cdn" not in div.lower() and "<script src" not in div
    assert Path(plotly_js_path()).stat().st_size > 1_000_000
