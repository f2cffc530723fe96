"""Learned low-traffic windows: YAML validation, the verdict from a stored profile (fail closed without a
fresh one), change locks winning, the profile built with pandas, and its storage in PostgreSQL."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from include.classification.classes import MigrationClass
from include.gates.traffic_profile import NoTrafficHistory, build_traffic_profile
from include.gates.window import evaluate_window
from include.policy import PolicyError, parse_policy
from include.policy.learned import TrafficProfile, describe_hours
from tests.support.policies import e2e_policy

# Wednesday 2026-11-25 10:30 UTC = hour of week 2*24+10 = 58
NOW = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
DATA = MigrationClass.DATA


def policy_with_learned(extra_windows: list[str] | None = None, locks: list | None = None, **window):
    data = e2e_policy(NOW)
    data["windows"]["quiet"] = {"learned": "low_traffic", "max_age": "3d", **window}
    data["windows"]["never"] = {"days": ["sun"], "start": "03:00", "end": "04:00"}
    data["classes"]["data"] = {"windows": ["quiet", *(extra_windows or [])], "automatic": True}
    data["change_locks"] = locks or []
    return parse_policy(data, "test.yaml")


def profile(hours: set[int], computed_ago: timedelta = timedelta(hours=6)) -> TrafficProfile:
    return TrafficProfile("gprd", NOW - computed_ago, frozenset(hours), samples=100)


def test_learned_window_is_validated_and_round_trips():
    policy = policy_with_learned()
    assert policy.learned_windows["quiet"].max_age == timedelta(days=3)
    assert policy.class_rule(DATA).windows == ("quiet",)
    again = parse_policy(policy.to_dict(), "again")
    assert again.learned_windows == policy.learned_windows


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (
            {"learned": "high_traffic"},
            "test.yaml: windows.quiet.learned: expected one of low_traffic, got 'high_traffic'",
        ),
        ({"learned": "low_traffic", "max_age": "0s"}, "windows.quiet.max_age: must be longer than zero"),
        ({"learned": "low_traffic", "days": ["mon"]}, "windows.quiet.days: unknown key"),
    ],
)
def test_bad_learned_windows_name_the_key(window, message):
    data = e2e_policy(NOW)
    data["windows"]["quiet"] = window
    data["classes"]["data"] = {"windows": ["quiet"], "automatic": True}
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, "test.yaml")
    assert message in str(caught.value)
    assert 'unknown window "quiet"' not in str(caught.value)  # reported once, where it is wrong


@pytest.mark.parametrize(
    ("hours", "computed_ago", "is_open", "reason"),
    [
        (
            {57, 58, 59},
            timedelta(hours=6),
            True,
            'data may run in learned window "quiet" (low-traffic hours of gprd) until Wed 2026-11-25 12:00 UTC',
        ),
        (
            {60, 61},
            timedelta(hours=6),
            False,
            'data waits: learned window "quiet": next low-traffic hour opens Wed 2026-11-25 12:00 UTC (in 1h 30m)',
        ),
        (
            {58},
            timedelta(days=3, minutes=1),
            False,
            'data waits: learned window "quiet" closed: the traffic profile computed Sun 2026-11-22 10:29 UTC '
            "is older than 3d",
        ),
        (
            set(),
            timedelta(hours=1),
            False,
            'data waits: learned window "quiet" closed: the traffic profile has no low-traffic hour',
        ),
    ],
)
def test_learned_window_verdicts(hours, computed_ago, is_open, reason):
    result = evaluate_window(NOW, policy_with_learned(), DATA, profile=profile(hours, computed_ago))
    assert (result.open, result.reason) == (is_open, reason)
    if not is_open and hours and computed_ago < timedelta(days=3):
        assert result.retry_at == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # the trigger sleeps until then


def test_no_profile_or_unreadable_profile_is_closed():
    policy = policy_with_learned()
    missing = evaluate_window(NOW, policy, DATA)
    assert not missing.open and missing.retry_at is None
    assert missing.reason == (
        'data waits: learned window "quiet" closed: no traffic profile stored (the pdm_traffic_profile DAG makes it)'
    )
    broken = evaluate_window(NOW, policy, DATA, profile_error="AuditStoreError: unreachable")
    assert broken.reason == (
        'data waits: learned window "quiet" closed: traffic profile unreadable: AuditStoreError: unreachable'
    )


def test_profile_expiry_closes_the_window_early():
    # computed 71h ago with max_age 3d: valid one more hour, so a 10:00–14:00 run closes at expiry (11:30)
    result = evaluate_window(
        NOW, policy_with_learned(), DATA, profile=profile({58, 59, 60, 61}, timedelta(hours=71))
    )
    assert result.open
    assert result.observed["closes_at"] == (NOW + timedelta(hours=1)).isoformat()


def test_change_lock_wins_over_a_learned_window():
    lock = {"name": "db upgrade", "from": "2026-11-25T10:00:00Z", "to": "2026-11-25T11:00:00Z"}
    result = evaluate_window(NOW, policy_with_learned(locks=[lock]), DATA, profile=profile({58, 59}))
    assert not result.open
    assert result.reason == (
        'data waits: learned window "quiet": blocked by change lock "db upgrade"; next low-traffic hour opens '
        "Wed 2026-11-25 11:00 UTC (in 30m)"
    )
    assert result.retry_at == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)


def test_calendar_and_learned_windows_combine():
    policy = policy_with_learned(extra_windows=["never"])
    result = evaluate_window(NOW, policy, DATA, profile=profile({60}))
    assert not result.open
    assert result.reason.startswith(
        'data waits: no allowed window now; next "never" opens Sun 2026-11-29 03:00 UTC'
    )
    assert result.reason.endswith(
        'learned window "quiet": next low-traffic hour opens Wed 2026-11-25 12:00 UTC (in 1h 30m)'
    )
    assert result.retry_at == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # the earlier of both


def test_classes_without_learned_windows_are_unchanged():
    policy = policy_with_learned()
    plain = copy.deepcopy(e2e_policy(NOW))
    background = evaluate_window(NOW, policy, MigrationClass.BACKGROUND, profile=profile(set()))
    assert background.open
    assert background.reason == evaluate_window(NOW, parse_policy(plain), MigrationClass.BACKGROUND).reason


def test_describe_hours():
    assert describe_hours({0, 1, 2}) == "Mon 00:00–03:00 UTC"
    assert describe_hours({166, 167, 0, 1}) == "Sun 22:00–Mon 02:00 UTC"
    assert describe_hours({23, 47}) == "Mon 23:00–24:00, Tue 23:00–24:00 UTC"
    assert describe_hours(set()) == "none"


def test_build_profile_marks_the_quietest_hours():
    start = datetime(2026, 10, 26, tzinfo=UTC)  # a Monday
    history = [
        (start + timedelta(minutes=5 * i), 10.0 if (start + timedelta(minutes=5 * i)).hour < 4 else 500.0)
        for i in range(4 * 7 * 24 * 12)
    ]
    built = build_traffic_profile("gprd", history, NOW, 10, query="q")
    assert built.low_traffic_hours == frozenset(d * 24 + h for d in range(7) for h in range(4))
    assert built.typical[0] == 10.0 and built.typical[5] == 500.0
    assert built.samples == len(history)
    assert TrafficProfile.from_dict(built.to_dict()) == built
    with pytest.raises(NoTrafficHistory, match="gprd: no usable traffic sample"):
        build_traffic_profile("gprd", [(NOW, float("nan"))], NOW, 20)


def test_profiles_are_appended_and_the_latest_is_read(postgres_audit_store):
    store = postgres_audit_store
    assert store.latest_traffic_profile("gprd") is None
    old, new = profile({1}, timedelta(days=1)), profile({2, 3}, timedelta(hours=1))
    first = store.record_traffic_profile("gprd", old.computed_at.isoformat(), old.to_dict())
    second = store.record_traffic_profile("gprd", new.computed_at.isoformat(), new.to_dict())
    store.record_traffic_profile("gstg", old.computed_at.isoformat(), old.to_dict())
    assert second > first
    assert TrafficProfile.from_dict(store.latest_traffic_profile("gprd")) == new
    with pytest.raises(Exception, match="append-only"):
        with store._transaction() as cur:
            cur.execute("DELETE FROM pdm_traffic_profile")


def test_pdm_page_lists_the_learned_hours(postgres_audit_store, postgres_database, monkeypatch):
    from include.observability import EnvironmentStatus
    from pdm_orchestrator.ui.app import _load_profiles, render_page

    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", postgres_database)
    stored = profile({0, 1, 2, 167})
    postgres_audit_store.record_traffic_profile("gprd", stored.computed_at.isoformat(), stored.to_dict())
    lines = _load_profiles(["gprd", "gstg"])
    assert lines["gprd"] == "Sun 23:00–Mon 03:00 UTC (learned 2026-11-25 04:30 UTC from 100 samples)"
    assert lines["gstg"].startswith("no profile learned yet")
    page = render_page([EnvironmentStatus("gprd"), EnvironmentStatus("gstg")], None, NOW, lines)
    assert "<h3>Learned low-traffic hours</h3><p class='profile'>Sun 23:00–Mon 03:00 UTC" in page
