"""Windows on DST change days, in Europe/Berlin and America/New_York, exactly as docs/policy.md states.

Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC); 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC).
New York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC).
All four change days are Sundays.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from include.classification.classes import MigrationClass as C
from tests.policy.support import policy_with, utc


def sunday_window(start: str, end: str, zone: str, days: list[str] | None = None):
    return policy_with(
        windows={"w": {"days": days or ["sun"], "start": start, "end": end, "timezone": zone}},
        classes={"cleanup": {"windows": ["w"]}},
    )


# (case, zone, start, end, search from, expected opens (UTC), expected closes (UTC))
DST_CASES = [
    # -- the spec's 01:30-03:30 window on each change day --------------------------------------------
    (
        "Berlin spring 01:30-03:30 lasts 1h",
        "Europe/Berlin",
        "01:30",
        "03:30",
        utc(2026, 3, 28),
        utc(2026, 3, 29, 0, 30),
        utc(2026, 3, 29, 1, 30),
    ),
    (
        "Berlin fall 01:30-03:30 lasts 3h",
        "Europe/Berlin",
        "01:30",
        "03:30",
        utc(2026, 10, 24),
        utc(2026, 10, 24, 23, 30),
        utc(2026, 10, 25, 2, 30),
    ),
    (
        "New York spring 01:30-03:30 lasts 1h",
        "America/New_York",
        "01:30",
        "03:30",
        utc(2026, 3, 7),
        utc(2026, 3, 8, 6, 30),
        utc(2026, 3, 8, 7, 30),
    ),
    (
        "New York fall 01:30-03:30 lasts 3h (start repeated: first)",
        "America/New_York",
        "01:30",
        "03:30",
        utc(2026, 10, 31),
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 8, 30),
    ),
    # -- a start in the spring-forward gap opens when the clock jumps --------------------------------
    (
        "Berlin start in the gap",
        "Europe/Berlin",
        "02:30",
        "04:00",
        utc(2026, 3, 28),
        utc(2026, 3, 29, 1),
        utc(2026, 3, 29, 2),
    ),
    (
        "New York start in the gap",
        "America/New_York",
        "02:30",
        "04:00",
        utc(2026, 3, 7),
        utc(2026, 3, 8, 7),
        utc(2026, 3, 8, 8),
    ),
    (
        "Berlin end in the gap",
        "Europe/Berlin",
        "01:00",
        "02:30",
        utc(2026, 3, 28),
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 1),
    ),
    (
        "Berlin window wholly in the gap skips that day",
        "Europe/Berlin",
        "02:15",
        "02:45",
        utc(2026, 3, 28),
        utc(2026, 4, 5, 0, 15),
        utc(2026, 4, 5, 0, 45),
    ),
    # -- repeated wall times: first occurrence opens, second closes ---------------------------------
    (
        "Berlin start repeated",
        "Europe/Berlin",
        "02:30",
        "03:30",
        utc(2026, 10, 24),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 2, 30),
    ),
    (
        "Berlin end repeated",
        "Europe/Berlin",
        "01:00",
        "02:30",
        utc(2026, 10, 24),
        utc(2026, 10, 24, 23),
        utc(2026, 10, 25, 1, 30),
    ),
    (
        "Berlin both repeated: 30 min becomes 90 min",
        "Europe/Berlin",
        "02:15",
        "02:45",
        utc(2026, 10, 24),
        utc(2026, 10, 25, 0, 15),
        utc(2026, 10, 25, 1, 45),
    ),
    (
        "New York end repeated",
        "America/New_York",
        "00:30",
        "01:30",
        utc(2026, 10, 31),
        utc(2026, 11, 1, 4, 30),
        utc(2026, 11, 1, 6, 30),
    ),
    # -- whole days are 23 and 25 hours long --------------------------------------------------------
    (
        "Berlin spring day is 23h",
        "Europe/Berlin",
        "00:00",
        "24:00",
        utc(2026, 3, 28),
        utc(2026, 3, 28, 23),
        utc(2026, 3, 29, 22),
    ),
    (
        "Berlin fall day is 25h",
        "Europe/Berlin",
        "00:00",
        "24:00",
        utc(2026, 10, 24),
        utc(2026, 10, 24, 22),
        utc(2026, 10, 25, 23),
    ),
    # -- the week after, the same wall times at the new offset --------------------------------------
    (
        "Berlin the Sunday after spring",
        "Europe/Berlin",
        "01:30",
        "03:30",
        utc(2026, 3, 30),
        utc(2026, 4, 4, 23, 30),
        utc(2026, 4, 5, 1, 30),
    ),
    (
        "New York the Sunday after fall",
        "America/New_York",
        "01:30",
        "03:30",
        utc(2026, 11, 2),
        utc(2026, 11, 8, 6, 30),
        utc(2026, 11, 8, 8, 30),
    ),
]


@pytest.mark.parametrize(
    ("case", "zone", "start", "end", "after", "opens", "closes"), DST_CASES, ids=[c[0] for c in DST_CASES]
)
def test_windows_on_dst_change_days(case, zone, start, end, after, opens, closes):
    policy = sunday_window(start, end, zone)
    span = policy.next_window(C.CLEANUP, after)
    assert (span.opens_at, span.closes_at) == (opens, closes)
    assert policy.window_verdict(C.CLEANUP, opens).allowed
    assert not policy.window_verdict(C.CLEANUP, opens - timedelta(seconds=1)).allowed
    assert policy.window_verdict(C.CLEANUP, closes - timedelta(seconds=1)).allowed
    assert not policy.window_verdict(C.CLEANUP, closes).allowed


CROSSING_CASES = [
    # Saturday 22:00 to Sunday 04:00 local: 5h in real time into summer time, 7h into winter time.
    ("Berlin spring night", "Europe/Berlin", utc(2026, 3, 28), utc(2026, 3, 28, 21), utc(2026, 3, 29, 2)),
    ("Berlin fall night", "Europe/Berlin", utc(2026, 10, 24), utc(2026, 10, 24, 20), utc(2026, 10, 25, 3)),
    ("New York spring night", "America/New_York", utc(2026, 3, 7), utc(2026, 3, 8, 3), utc(2026, 3, 8, 8)),
    ("New York fall night", "America/New_York", utc(2026, 10, 31), utc(2026, 11, 1, 2), utc(2026, 11, 1, 9)),
]


@pytest.mark.parametrize(
    ("case", "zone", "after", "opens", "closes"), CROSSING_CASES, ids=[c[0] for c in CROSSING_CASES]
)
def test_windows_crossing_midnight_over_dst_nights(case, zone, after, opens, closes):
    span = sunday_window("22:00", "04:00", zone, days=["sat"]).next_window(C.CLEANUP, after)
    assert (span.opens_at, span.closes_at) == (opens, closes)


def test_recurring_lock_follows_local_time_across_dst():
    # A 01:30-03:30 Berlin lock on every Sunday cuts the any-time noop window by 1h in spring and 3h in fall.
    lock = {
        "name": "night freeze",
        "days": ["sun"],
        "start": "01:30",
        "end": "03:30",
        "timezone": "Europe/Berlin",
    }
    policy = policy_with(locks=[lock])
    spring = policy.window_verdict(C.NOOP, utc(2026, 3, 29, 1))
    assert not spring.allowed and spring.next_opens_at == utc(2026, 3, 29, 1, 30)
    fall = policy.window_verdict(C.NOOP, utc(2026, 10, 25, 2))
    assert not fall.allowed and fall.next_opens_at == utc(2026, 10, 25, 2, 30)
    before = policy.window_verdict(C.NOOP, utc(2026, 10, 24, 23))
    assert before.allowed and before.closes_at == utc(2026, 10, 24, 23, 30)


def test_reasons_show_local_time_and_utc_across_dst():
    policy = policy_with(
        windows={"w": {"days": ["sun"], "start": "01:30", "end": "03:30"}},
        classes={"cleanup": {"windows": ["w"]}},
        timezone="Europe/Berlin",
    )
    verdict = policy.window_verdict(C.CLEANUP, utc(2026, 10, 25, 1, 30))  # 02:30 CET, the second time round
    assert verdict.allowed
    assert verdict.reason == 'cleanup may run in window "w" until Sun 2026-10-25 03:30 CET (02:30 UTC)'
    waiting = policy.window_verdict(C.CLEANUP, utc(2026, 3, 28, 12))
    assert waiting.reason == (
        'cleanup waits: no allowed window now; next "w" opens Sun 2026-03-29 01:30 CET (00:30 UTC) (in 12h 30m)'
    )
