"""Properties over random instants: verdicts, next windows and spans agree, and locks always win."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from include.classification.classes import MigrationClass as C
from tests.policy.support import policy_with

# Windows in several zones (with DST), crossing midnight, and every kind of lock.
POLICY = policy_with(
    windows={
        "berlin_night": {"days": ["sun"], "start": "01:30", "end": "03:30", "timezone": "Europe/Berlin"},
        "new_york_late": {
            "days": ["fri", "sat"],
            "start": "22:00",
            "end": "02:00",
            "timezone": "America/New_York",
        },
        "sydney_morning": {
            "days": ["mon", "wed"],
            "start": "08:00",
            "end": "11:00",
            "timezone": "Australia/Sydney",
        },
    },
    classes={
        "schema_heavy": {"windows": ["berlin_night", "new_york_late"]},
        "cleanup": {"windows": ["sydney_morning", "weekend"]},
    },
    locks=[
        {
            "name": "weekly release freeze",
            "days": ["fri"],
            "start": "22:00",
            "end": "02:00",
            "timezone": "America/Los_Angeles",
        },
        {
            "name": "end-of-year production change lock",
            "from": "2026-12-21T00:00:00Z",
            "to": "2027-01-05T00:00:00Z",
        },
        {"name": "family and friends days", "dates": ["2026-12-24", "2027-02-12"]},
        {"name": "public holidays", "holidays": {"countries": ["US", "GB"]}, "timezone": "Europe/London"},
    ],
)
CLASSES = st.sampled_from([C.NOOP, C.BACKGROUND, C.DATA, C.SCHEMA_HEAVY, C.CLEANUP])
INSTANTS = st.datetimes(
    min_value=datetime(2025, 6, 1), max_value=datetime(2028, 6, 1), timezones=st.just(UTC)
)
ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham"])
FAST = settings(max_examples=150, deadline=None, derandomize=True)  # same cases every run


@FAST
@given(CLASSES, INSTANTS)
def test_verdict_and_next_window_agree(cls, now):
    verdict = POLICY.window_verdict(cls, now)
    span = POLICY.next_window(cls, now)
    assert span is not None and span.closes_at > now and span.opens_at < span.closes_at
    if verdict.allowed:
        assert span.contains(now)
        assert verdict.closes_at == span.closes_at and verdict.window == span.window
        assert POLICY.time_until_next_window(cls, now) == timedelta(0)
    else:
        assert span.opens_at > now
        assert (verdict.next_opens_at, verdict.next_closes_at) == (span.opens_at, span.closes_at)
        assert POLICY.time_until_next_window(cls, now) == span.opens_at - now
        # Just before the next opening it is still closed; at the opening it is allowed.
        assert POLICY.window_verdict(cls, span.opens_at).allowed
        assert not POLICY.window_verdict(cls, span.opens_at - timedelta(microseconds=1)).allowed


@FAST
@given(CLASSES, INSTANTS, st.integers(1, 60), st.integers(1, 60))
def test_spans_never_touch_a_change_lock_and_lie_inside_their_window(cls, now, days_before, days_after):
    start, end = now - timedelta(days=days_before), now + timedelta(days=days_after)
    spans = POLICY.allowed_spans(cls, start, end)
    for left, right in zip(spans, spans[1:], strict=False):
        assert left.closes_at < right.opens_at  # sorted, merged: never overlapping nor touching
    locks = POLICY.lock_spans(start - timedelta(days=30), end + timedelta(days=30))
    window_rule = POLICY.windows
    for span in spans:
        assert span.closes_at > start and span.opens_at < end
        for (lock_opens, lock_closes), name in locks:
            assert not (lock_opens < span.closes_at and span.opens_at < lock_closes), (span, name)
        instances = window_rule[span.window].spans(span.opens_at, span.opens_at + timedelta(seconds=1))
        assert any(a <= span.opens_at < b for a, b in instances)


@FAST
@given(CLASSES, INSTANTS, st.integers(0, 90), st.integers(1, 90))
def test_a_span_is_the_same_whatever_range_finds_it(cls, now, days_before, days_after):
    span = POLICY.next_window(cls, now)
    around = POLICY.allowed_spans(cls, now - timedelta(days=days_before), now + timedelta(days=days_after))
    if span.opens_at < now + timedelta(days=days_after):
        assert span in around


@FAST
@given(CLASSES, INSTANTS, ZONES)
def test_answers_are_identical_in_any_input_time_zone(cls, now, zone):
    local = now.astimezone(ZoneInfo(zone))
    assert POLICY.window_verdict(cls, local) == POLICY.window_verdict(cls, now)
    assert POLICY.next_window(cls, local) == POLICY.next_window(cls, now)
    day = timedelta(days=3)
    assert POLICY.allowed_spans(cls, local, local + day) == POLICY.allowed_spans(cls, now, now + day)


@FAST
@given(INSTANTS)
def test_an_active_lock_inside_a_window_is_named(now):
    verdict = POLICY.window_verdict(C.NOOP, now)  # noop's window is always open: only locks close it
    active = [name for (a, b), name in POLICY.lock_spans(now, now + timedelta(seconds=1)) if a <= now < b]
    assert verdict.allowed is (not active)
    if active:
        assert verdict.lock in active and f'change lock "{verdict.lock}"' in verdict.reason
