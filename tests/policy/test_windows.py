"""Window verdicts and next windows: tables of weekdays, midnight, 24:00, time zones and change locks."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from include.classification.classes import MigrationClass as C
from include.policy import load_policy
from tests.policy.support import SHIPPED, policy_with, utc

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
# 2026-11-25 is a Wednesday; 28 and 29 are the weekend; 26 is US Thanksgiving.


def only(window: dict, locks: list | None = None, **extra):
    """A policy in which `cleanup` may run only in window "w"."""
    return policy_with(windows={"w": window}, locks=locks, classes={"cleanup": {"windows": ["w"]}}, **extra)


# (case, window, instant, allowed, closes_at when allowed / next_opens_at when not)
WINDOW_CASES = [
    (
        "weekday daytime",
        {"days": WEEKDAYS, "start": "06:00", "end": "20:00"},
        utc(2026, 11, 25, 10),
        True,
        utc(2026, 11, 25, 20),
    ),
    (
        "start is inclusive",
        {"days": WEEKDAYS, "start": "06:00", "end": "20:00"},
        utc(2026, 11, 25, 6),
        True,
        utc(2026, 11, 25, 20),
    ),
    (
        "end is exclusive",
        {"days": WEEKDAYS, "start": "06:00", "end": "20:00"},
        utc(2026, 11, 25, 20),
        False,
        utc(2026, 11, 26, 6),
    ),
    (
        "weekend waits for monday",
        {"days": WEEKDAYS, "start": "06:00", "end": "20:00"},
        utc(2026, 11, 28, 10),
        False,
        utc(2026, 11, 30, 6),
    ),
    (
        "crossing midnight: the night after",
        {"days": ["mon"], "start": "22:00", "end": "02:00"},
        utc(2026, 11, 24, 1),
        True,
        utc(2026, 11, 24, 2),
    ),
    (
        "crossing midnight: same evening",
        {"days": ["mon"], "start": "22:00", "end": "02:00"},
        utc(2026, 11, 23, 23),
        True,
        utc(2026, 11, 24, 2),
    ),
    (
        "crossing midnight: over",
        {"days": ["mon"], "start": "22:00", "end": "02:00"},
        utc(2026, 11, 24, 2),
        False,
        utc(2026, 11, 30, 22),
    ),
    (
        "sunday night into monday",
        {"days": ["sun"], "start": "22:00", "end": "02:00"},
        utc(2026, 11, 30, 1, 59),
        True,
        utc(2026, 11, 30, 2),
    ),
    (
        "24:00 ends the day",
        {"days": ["sat", "sun"], "start": "00:00", "end": "24:00"},
        utc(2026, 11, 29, 23, 59),
        True,
        utc(2026, 11, 30),
    ),
    (
        "end equal to start is a full day",
        {"days": ["mon"], "start": "06:00", "end": "06:00"},
        utc(2026, 11, 24, 5),
        True,
        utc(2026, 11, 24, 6),
    ),
    (
        "London summer time",
        {"days": WEEKDAYS, "start": "06:00", "end": "09:00", "timezone": "Europe/London"},
        utc(2026, 7, 1, 5, 30),
        True,
        utc(2026, 7, 1, 8),
    ),
    (
        "London winter time",
        {"days": WEEKDAYS, "start": "06:00", "end": "09:00", "timezone": "Europe/London"},
        utc(2026, 12, 2, 5, 30),
        False,
        utc(2026, 12, 2, 6),
    ),
    (
        "Tokyo morning is UTC night",
        {"days": ["mon"], "start": "09:00", "end": "10:00", "timezone": "Asia/Tokyo"},
        utc(2026, 11, 30, 0, 30),
        True,
        utc(2026, 11, 30, 1),
    ),
    (
        "Tokyo monday starts on UTC sunday",
        {"days": ["mon"], "start": "00:00", "end": "01:00", "timezone": "Asia/Tokyo"},
        utc(2026, 11, 29, 15, 30),
        True,
        utc(2026, 11, 29, 16),
    ),
]


@pytest.mark.parametrize(
    ("case", "window", "now", "allowed", "boundary"), WINDOW_CASES, ids=[c[0] for c in WINDOW_CASES]
)
def test_window_verdict_and_next_window(case, window, now, allowed, boundary):
    policy = only(window)
    verdict = policy.window_verdict(C.CLEANUP, now)
    span = policy.next_window(C.CLEANUP, now)
    assert verdict.allowed is allowed, verdict.reason
    if allowed:
        assert (verdict.window, verdict.closes_at, span.closes_at) == ("w", boundary, boundary)
        assert span.opens_at <= now
        assert policy.time_until_next_window(C.CLEANUP, now) == timedelta(0)
    else:
        assert (verdict.next_opens_at, span.opens_at, verdict.next_window) == (boundary, boundary, "w")
        assert policy.time_until_next_window(C.CLEANUP, now) == boundary - now


def test_policy_time_zone_is_the_default_for_windows_and_reasons():
    policy = only({"days": WEEKDAYS, "start": "09:00", "end": "17:00"}, timezone="America/New_York")
    verdict = policy.window_verdict(C.CLEANUP, utc(2026, 11, 25, 15))
    assert verdict.allowed and verdict.closes_at == utc(2026, 11, 25, 22)
    assert verdict.reason == 'cleanup may run in window "w" until Wed 2026-11-25 17:00 EST (22:00 UTC)'


# (case, lock, class, instant, allowed, boundary, lock named in the verdict)
WEEKEND_NOON = utc(2026, 11, 28, 12)
LOCK_CASES = [
    (
        "one-off lock splits a window",
        {"name": "db upgrade", "from": "2026-11-28T10:00:00Z", "to": "2026-11-28T14:00:00Z"},
        C.CLEANUP,
        utc(2026, 11, 28, 11),
        False,
        utc(2026, 11, 28, 14),
        "db upgrade",
    ),
    (
        "window closes when a lock begins",
        {"name": "db upgrade", "from": "2026-11-28T10:00:00Z", "to": "2026-11-28T14:00:00Z"},
        C.CLEANUP,
        utc(2026, 11, 28, 9),
        True,
        utc(2026, 11, 28, 10),
        None,
    ),
    (
        "one-off lock with an offset",
        {"name": "berlin freeze", "from": "2026-11-28T11:00:00+01:00", "to": "2026-11-28T15:00:00+01:00"},
        C.CLEANUP,
        utc(2026, 11, 28, 13, 59),
        False,
        utc(2026, 11, 28, 14),
        "berlin freeze",
    ),
    (
        "one-off lock of whole dates",
        {"name": "weekend freeze", "from": "2026-11-28", "to": "2026-11-29"},
        C.CLEANUP,
        utc(2026, 11, 29, 23),
        False,
        utc(2026, 12, 5),
        "weekend freeze",
    ),
    (
        "deny wins over the whole window",
        {"name": "all weekend", "from": "2026-11-28T00:00:00Z", "to": "2026-11-30T00:00:00Z"},
        C.CLEANUP,
        WEEKEND_NOON,
        False,
        utc(2026, 12, 5),
        "all weekend",
    ),
    (
        "recurring lock",
        {"name": "sunday morning", "days": ["sun"], "start": "00:00", "end": "12:00"},
        C.CLEANUP,
        utc(2026, 11, 29, 11),
        False,
        utc(2026, 11, 29, 12),
        "sunday morning",
    ),
    (
        "recurring lock ends",
        {"name": "sunday morning", "days": ["sun"], "start": "00:00", "end": "12:00"},
        C.CLEANUP,
        utc(2026, 11, 29, 12),
        True,
        utc(2026, 11, 30),
        None,
    ),
    (
        "recurring lock in another zone, crossing midnight",
        {
            "name": "weekly release freeze",
            "days": ["fri"],
            "start": "22:00",
            "end": "02:00",
            "timezone": "America/Los_Angeles",
        },
        C.NOOP,
        utc(2026, 11, 28, 7),
        False,
        utc(2026, 11, 28, 10),
        "weekly release freeze",
    ),
    (
        "dates lock a whole day",
        {"name": "family and friends", "dates": ["2026-11-28"]},
        C.CLEANUP,
        WEEKEND_NOON,
        False,
        utc(2026, 11, 29),
        "family and friends",
    ),
    (
        "dates in a local time zone",
        {"name": "family and friends", "dates": ["2026-11-28"], "timezone": "Asia/Tokyo"},
        C.CLEANUP,
        utc(2026, 11, 28, 14, 59),
        False,
        utc(2026, 11, 28, 15),
        "family and friends",
    ),
    (
        "US Thanksgiving",
        {"name": "public holidays", "holidays": {"countries": ["US"]}},
        C.NOOP,
        utc(2026, 11, 26, 12),
        False,
        utc(2026, 11, 27),
        "public holidays",
    ),
    (
        "US observed Independence Day",
        {"name": "public holidays", "holidays": {"countries": ["US"]}},
        C.NOOP,
        utc(2026, 7, 3, 12),
        False,
        utc(2026, 7, 5),
        "public holidays",
    ),
    (
        "GB Boxing Day observed on Monday",
        {"name": "public holidays", "holidays": {"countries": ["GB"]}},
        C.BACKGROUND,
        utc(2026, 12, 28, 10),
        False,
        utc(2026, 12, 29, 6),
        "public holidays",
    ),
    (
        "holidays as Tokyo days",
        {"name": "public holidays", "holidays": {"countries": ["US"]}, "timezone": "Asia/Tokyo"},
        C.NOOP,
        utc(2026, 11, 25, 16),
        False,
        utc(2026, 11, 26, 15),
        "public holidays",
    ),
    (
        "a subdivision's holiday",
        {"name": "California", "holidays": {"countries": ["US-CA"]}},
        C.NOOP,
        utc(2026, 3, 31, 12),
        False,
        utc(2026, 4, 1),
        "California",
    ),
]


@pytest.mark.parametrize(
    ("case", "lock", "cls", "now", "allowed", "boundary", "lock_name"),
    LOCK_CASES,
    ids=[c[0] for c in LOCK_CASES],
)
def test_change_locks_deny(case, lock, cls, now, allowed, boundary, lock_name):
    policy = policy_with(locks=[lock])
    verdict = policy.window_verdict(cls, now)
    assert verdict.allowed is allowed, verdict.reason
    assert verdict.lock == lock_name
    if allowed:
        assert verdict.closes_at == boundary
    else:
        assert verdict.next_opens_at == boundary
        assert policy.next_window(cls, now).opens_at == boundary
    if lock_name:
        assert f'blocked by change lock "{lock_name}"' in verdict.reason


def test_reasons_read_as_a_release_manager_expects():
    policy = policy_with(
        locks=[{"name": "db upgrade", "from": "2026-11-28T10:00:00Z", "to": "2026-11-28T14:00:00Z"}]
    )
    reason = lambda cls, now: policy.window_verdict(cls, now).reason  # noqa: E731
    assert (
        reason(C.CLEANUP, utc(2026, 11, 29, 1))
        == 'cleanup may run in window "weekend" until Sun 2026-11-29 24:00 UTC'
    )
    assert reason(C.CLEANUP, utc(2026, 11, 25, 10)) == (
        'cleanup waits: no allowed window now; next "weekend" opens Sat 2026-11-28 00:00 UTC (in 2d 14h)'
    )
    assert reason(C.CLEANUP, utc(2026, 11, 28, 11, 30)) == (
        'cleanup blocked by change lock "db upgrade" until Sat 2026-11-28 14:00 UTC; '
        'next "weekend" opens Sat 2026-11-28 14:00 UTC (in 2h 30m)'
    )
    assert reason(C.CLEANUP, utc(2026, 11, 28, 9)) == (
        'cleanup may run in window "weekend" until Sat 2026-11-28 10:00 UTC (change lock "db upgrade" begins)'
    )
    assert reason(C.UNKNOWN, utc(2026, 11, 28, 9)) == (
        "unknown has no allowed window: it runs only if a human overrides the window gate"
    )


def test_a_class_with_several_windows_names_the_one_in_force():
    policy = policy_with()
    assert policy.window_verdict(C.DATA, utc(2026, 11, 25, 6)).window == "apac_emea_handover"
    assert policy.window_verdict(C.DATA, utc(2026, 11, 28, 6)).window == "weekend"
    assert policy.next_window(C.DATA, utc(2026, 11, 27, 10)).window == "weekend"


def test_touching_windows_merge_into_one_span_named_after_its_opening():
    policy = policy_with(
        windows={
            "friday_evening": {"days": ["fri"], "start": "18:00", "end": "24:00"},
            "saturday_morning": {"days": ["sat"], "start": "00:00", "end": "06:00"},
        },
        classes={"cleanup": {"windows": ["saturday_morning", "friday_evening"]}},
    )
    spans = policy.allowed_spans(C.CLEANUP, utc(2026, 11, 23), utc(2026, 12, 7))
    assert [(s.window, s.opens_at, s.closes_at) for s in spans] == [
        ("friday_evening", utc(2026, 11, 27, 18), utc(2026, 11, 28, 6)),
        ("friday_evening", utc(2026, 12, 4, 18), utc(2026, 12, 5, 6)),
    ]


def test_allowed_spans_are_whole_sorted_and_disjoint():
    policy = policy_with(
        locks=[{"name": "db upgrade", "from": "2026-11-28T10:00:00Z", "to": "2026-11-28T14:00:00Z"}]
    )
    spans = policy.allowed_spans(C.CLEANUP, utc(2026, 11, 28, 12), utc(2026, 12, 6, 12))
    assert [(s.opens_at, s.closes_at) for s in spans] == [
        (utc(2026, 11, 28, 14), utc(2026, 11, 30)),  # opened after `start`: given whole
        (utc(2026, 12, 5), utc(2026, 12, 7)),  # runs past `end`: given whole
    ]
    assert policy.allowed_spans(C.CLEANUP, utc(2026, 11, 28, 11), utc(2026, 11, 28, 13)) == []
    assert policy.allowed_spans(C.UNKNOWN, utc(2026, 1, 1), utc(2027, 1, 1)) == []


def test_an_always_open_window_is_reported_open_ended():
    span = policy_with().next_window(C.NOOP, utc(2026, 11, 25))
    assert span.open_ended and span.opens_at < utc(2025, 11, 1) and span.closes_at > utc(2027, 11, 1)
    verdict = policy_with().window_verdict(C.NOOP, utc(2026, 11, 25))
    assert verdict.allowed and "until at least" in verdict.reason


def test_no_window_within_the_horizon():
    policy = policy_with(locks=[{"name": "long freeze", "from": "2026-01-01", "to": "2028-06-30"}])
    now = utc(2026, 6, 6, 12)  # a Saturday, inside the weekend window but locked
    assert policy.next_window(C.CLEANUP, now) is None
    assert policy.time_until_next_window(C.CLEANUP, now) is None
    assert policy.next_window(C.CLEANUP, now, horizon=timedelta(days=800)).opens_at == utc(2028, 7, 1)
    verdict = policy.window_verdict(C.CLEANUP, now)
    assert not verdict.allowed and verdict.lock == "long freeze" and verdict.next_opens_at is None
    assert "no allowed window opens within 400 days" in verdict.reason


def test_answers_do_not_depend_on_the_zone_of_the_question():
    policy = load_policy(SHIPPED)
    now = utc(2026, 11, 27, 4, 30)
    for zone in ("UTC", "Asia/Kolkata", "America/Los_Angeles", "Pacific/Chatham"):
        local = now.astimezone(ZoneInfo(zone))
        assert policy.window_verdict(C.DATA, local) == policy.window_verdict(C.DATA, now)
        assert policy.next_window(C.CLEANUP, local) == policy.next_window(C.CLEANUP, now)


@pytest.mark.parametrize("method", ["window_verdict", "next_window", "time_until_next_window"])
def test_naive_instants_are_refused(method):
    with pytest.raises(ValueError, match="timezone-aware"):
        getattr(policy_with(), method)(C.NOOP, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        policy_with().allowed_spans(C.NOOP, utc(2026, 1, 1), datetime(2026, 2, 1))


def test_a_year_of_spans_takes_milliseconds():
    policy = load_policy(SHIPPED)
    start, end = utc(2026, 1, 1), utc(2027, 1, 1)
    began = time.perf_counter()
    counts = {cls: len(policy.allowed_spans(cls, start, end)) for cls in C}
    first = time.perf_counter() - began
    began = time.perf_counter()
    for cls in C:
        policy.allowed_spans(cls, start, end)
    again = time.perf_counter() - began
    assert counts[C.BACKGROUND] > 200 and counts[C.CLEANUP] > 40 and counts[C.UNKNOWN] == 0
    assert first < 0.5, f"first year of spans took {first:.3f}s"
    assert again < 0.05, f"cached year of spans took {again:.3f}s"
