"""Policy windows, change locks, DST and validation: tables of cases and properties."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.classification.classes import MigrationClass as C
from include.policy import PolicyError, load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]
BASE = load_policy(ROOT / "config" / "policy.yaml").raw


def _policy(**changes):
    data = copy.deepcopy(BASE)
    data["change_locks"] = []
    for key, value in changes.items():
        data[key] = value
    return parse_policy(data, source="test.yaml")


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_shipped_policies_load():
    for name in ("policy.yaml", "policy.local.yaml"):
        policy = load_policy(ROOT / "config" / name)
        assert set(policy.environments) == {"gstg", "gprd"}
        assert policy.environments["gprd"].after == "gstg"


@pytest.mark.parametrize(
    ("cls", "when", "allowed"),
    [
        (C.BACKGROUND, utc(2026, 11, 25, 10), True),  # Wednesday daytime
        (C.BACKGROUND, utc(2026, 11, 25, 21), False),  # Wednesday evening
        (C.BACKGROUND, utc(2026, 11, 28, 10), False),  # Saturday
        (C.CLEANUP, utc(2026, 11, 28, 10), True),
        (C.CLEANUP, utc(2026, 11, 25, 10), False),
        (C.DATA, utc(2026, 11, 25, 5), True),  # APAC/EMEA handover
        (C.DATA, utc(2026, 11, 29, 23, 59), True),  # weekend
        (C.UNKNOWN, utc(2026, 11, 28, 10), False),
        (C.NOOP, utc(2026, 11, 25, 3), True),
    ],
)
def test_window_verdict(cls, when, allowed):
    verdict = _policy().window_verdict(cls, when)
    assert verdict.allowed is allowed, verdict.reason
    assert cls.value in verdict.reason


def test_next_window_and_time_until():
    policy = _policy()
    span = policy.next_window(C.CLEANUP, utc(2026, 11, 25, 10))
    assert (span.window, span.opens_at, span.closes_at) == ("weekend", utc(2026, 11, 28), utc(2026, 11, 30))
    assert policy.time_until_next_window(C.CLEANUP, utc(2026, 11, 25, 10)) == timedelta(days=2, hours=14)
    assert policy.time_until_next_window(C.CLEANUP, utc(2026, 11, 28, 1)) == timedelta(0)


def test_window_crossing_midnight():
    policy = _policy(
        windows={**BASE["windows"], "night": {"days": ["mon"], "start": "22:00", "end": "02:00"}}
    )
    data = copy.deepcopy(policy.raw)
    data["classes"]["data"] = {"windows": ["night"], "automatic": True}
    policy = parse_policy(data)
    assert policy.window_verdict(
        C.DATA, utc(2026, 11, 24, 1)
    ).allowed  # Tuesday 01:00 belongs to Monday's window
    assert not policy.window_verdict(C.DATA, utc(2026, 11, 24, 2)).allowed
    assert policy.window_verdict(C.DATA, utc(2026, 11, 23, 23)).allowed


def test_one_off_lock_splits_a_window_and_deny_wins():
    locks = [{"name": "db upgrade", "from": "2026-11-28T10:00:00Z", "to": "2026-11-28T14:00:00Z"}]
    policy = _policy(change_locks=locks)
    verdict = policy.window_verdict(C.CLEANUP, utc(2026, 11, 28, 11))
    assert not verdict.allowed and 'change lock "db upgrade"' in verdict.reason
    assert verdict.next_opens_at == utc(2026, 11, 28, 14)
    assert policy.window_verdict(C.CLEANUP, utc(2026, 11, 28, 9)).closes_at == utc(2026, 11, 28, 10)


def test_dates_holidays_and_recurring_locks():
    locks = [
        {"name": "friends and family", "dates": ["2026-11-28"]},
        {"name": "thanksgiving", "holidays": {"countries": ["US"]}},
        {"name": "sunday freeze", "days": ["sun"], "start": "00:00", "end": "12:00"},
    ]
    policy = _policy(change_locks=locks)
    assert not policy.window_verdict(C.CLEANUP, utc(2026, 11, 28, 12)).allowed
    assert not policy.window_verdict(C.NOOP, utc(2026, 11, 26, 12)).allowed  # Thanksgiving 2026
    assert not policy.window_verdict(C.CLEANUP, utc(2026, 11, 29, 11)).allowed
    assert policy.window_verdict(C.CLEANUP, utc(2026, 11, 29, 12)).allowed


def _dst_policy(start: str, end: str, tz: str):
    data = copy.deepcopy(BASE)
    data["change_locks"] = []
    data["windows"]["night"] = {"days": ["sun"], "start": start, "end": end, "timezone": tz}
    data["classes"]["cleanup"] = {"windows": ["night"], "automatic": True}
    return parse_policy(data)


def test_dst_spring_forward_window_starting_in_the_gap():
    # Europe/Berlin, Sun 2027-03-28: 02:00 → 03:00. A 01:30–03:30 window is 1 h long in real time.
    policy = _dst_policy("01:30", "03:30", "Europe/Berlin")
    span = policy.next_window(C.CLEANUP, utc(2027, 3, 27))
    assert span.opens_at == utc(2027, 3, 28, 0, 30)  # 01:30 CET
    assert span.closes_at == utc(2027, 3, 28, 1, 30)  # 03:30 CEST
    gap = _dst_policy("02:30", "04:00", "Europe/Berlin").next_window(C.CLEANUP, utc(2027, 3, 27))
    assert gap.opens_at == utc(
        2027, 3, 28, 1, 0
    )  # 02:30 does not exist: first instant after the gap (03:00 CEST)


def test_dst_fall_back_window_is_longer():
    # Europe/Berlin, Sun 2026-10-25: 03:00 → 02:00. 01:30–03:30 local lasts 3 h in real time.
    span = _dst_policy("01:30", "03:30", "Europe/Berlin").next_window(C.CLEANUP, utc(2026, 10, 24))
    assert span.opens_at == utc(2026, 10, 24, 23, 30)  # 01:30 CEST
    assert span.closes_at == utc(2026, 10, 25, 2, 30)  # 03:30 CET
    # An end at an ambiguous wall time takes the second occurrence.
    ambiguous = _dst_policy("01:00", "02:30", "Europe/Berlin").next_window(C.CLEANUP, utc(2026, 10, 24))
    assert ambiguous.closes_at == utc(2026, 10, 25, 1, 30)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)))
def test_properties_of_windows(moment):
    policy = _policy(
        change_locks=[
            {
                "name": "lock",
                "days": ["sat"],
                "start": "06:00",
                "end": "09:00",
                "timezone": "America/New_York",
            }
        ]
    )
    for cls in (C.BACKGROUND, C.CLEANUP, C.DATA):
        verdict = policy.window_verdict(cls, moment)
        span = policy.next_window(cls, moment)
        assert span is not None and span.closes_at > moment
        if verdict.allowed:
            assert span.opens_at <= moment < span.closes_at
        else:
            assert span.opens_at > moment
            assert verdict.next_opens_at == span.opens_at
        # The same instant in another zone gets the same answer.
        assert (
            policy.window_verdict(cls, moment.astimezone(ZoneInfo("Asia/Tokyo"))).allowed is verdict.allowed
        )
        for lock_span, _ in policy.lock_spans(span.opens_at, span.closes_at):
            assert not (lock_span[0] < span.closes_at and span.opens_at < lock_span[1])


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        _policy().window_verdict(C.NOOP, datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["classes"]["cleanup"].update(windows=["weekend", "wkend"]),
            'classes.cleanup.windows[1]: unknown window "wkend"',
        ),
        (lambda d: d.update(colour="blue"), "colour: unknown key"),
        (lambda d: d["windows"]["weekend"].update(start="25:00"), "windows.weekend.start: expected a time"),
        (
            lambda d: d["windows"]["weekend"].update(days=["sat", "caturday"]),
            "windows.weekend.days[1]: unknown day",
        ),
        (
            lambda d: d["windows"]["weekend"].update(timezone="Mars/Olympus"),
            "windows.weekend.timezone: unknown time zone",
        ),
        (lambda d: d["classes"].pop("data"), "classes.data: is missing"),
        (lambda d: d["classes"]["unknown"].update(automatic=True), "classes.unknown.automatic"),
        (lambda d: d["gates"].update(max_wait="forever"), "gates.max_wait: expected a duration"),
        (
            lambda d: d["environments"]["gprd"].update(after="gstgg"),
            "environments.gprd.after: unknown environment",
        ),
        (lambda d: d["environments"]["gstg"].update(after="gprd"), "forms a cycle"),
        (
            lambda d: d["change_locks"].append({"name": "x", "from": "2026-12-02", "to": "2026-12-01"}),
            "change_locks[3].to: must be after from",
        ),
        (
            lambda d: d["change_locks"].append(
                {"name": "always", "days": ["sat", "sun"], "start": "00:00", "end": "24:00"}
            ),
            "classes.schema_heavy.windows: every window is covered by change locks",
        ),
        (
            lambda d: d["gitlab"]["pdm_pipeline"]["variables"].update(X="{bogus}"),
            "unknown placeholder {bogus}",
        ),
        (
            lambda d: d["gitlab"]["pdm_pipeline"]["variables"].pop("PDM_DECISION_ID"),
            "must carry {decision_id}",
        ),
    ],
)
def test_invalid_policy_names_file_key_and_problem(mutate, message):
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(PolicyError) as error:
        parse_policy(data, source="config/policy.yaml")
    assert message in str(error.value)
    assert str(error.value).startswith("config/policy.yaml: ")


def test_every_problem_is_reported_at_once():
    data = copy.deepcopy(BASE)
    data["windows"]["weekend"]["start"] = "9am"
    data["gates"]["max_wait"] = "soon"
    with pytest.raises(PolicyError) as error:
        parse_policy(data, source="p.yaml")
    assert len(str(error.value).splitlines()) >= 2


def test_yaml_syntax_error_names_line(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("windows:\n  a: [unclosed\n")
    with pytest.raises(PolicyError, match=r"policy.yaml: not valid YAML \(line"):
        load_policy(bad)


def test_environment_overrides():
    data = copy.deepcopy(BASE)
    data["environments"]["gstg"]["overrides"] = {"gates": {"rollback": {"min_bake": "30m"}}}
    policy = parse_policy(data)
    assert policy.for_environment("gstg").gates.rollback.min_bake == timedelta(minutes=30)
    assert policy.for_environment("gprd").gates.rollback.min_bake == timedelta(hours=2)
