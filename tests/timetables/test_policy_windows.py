"""The window timetable: runs at window openings (and re-checks inside), never outside, across DST."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pendulum
import pytest
import yaml
from airflow.timetables.base import DataInterval, TimeRestriction

from include.classification.classes import MigrationClass
from include.policy import load_policy
from pdm_orchestrator.timetables.policy_windows import PolicyWindowTimetable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def berlin_policy(tmp_path) -> Path:
    data = copy.deepcopy(load_policy(ROOT / "config" / "policy.yaml").raw)
    data["change_locks"] = []
    data["windows"]["weekday_business"]["timezone"] = "Europe/Berlin"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _runs(timetable, start, count):
    infos, last = [], None
    restriction = TimeRestriction(earliest=start, latest=None, catchup=True)
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        if info is None:
            break
        infos.append(info.run_after)
        last = info.data_interval
    return infos


def test_runs_only_inside_allowed_windows_for_a_year(berlin_policy):
    timetable = PolicyWindowTimetable(str(berlin_policy), "gprd")
    policy = load_policy(berlin_policy)
    runs = _runs(timetable, pendulum.datetime(2026, 1, 1, tz="UTC"), 3000)
    assert len(runs) > 1000
    assert runs == sorted(set(runs))
    for moment in runs:
        assert any(policy.window_verdict(cls, moment).allowed for cls in MigrationClass), moment
    # Background windows are 06:00 Berlin local on weekdays, in winter (UTC+1) and summer (UTC+2).
    assert pendulum.datetime(2026, 1, 5, 5, tz="UTC") in runs
    assert pendulum.datetime(2026, 7, 6, 4, tz="UTC") in runs
    # The DST change weekend: Monday after the spring change opens at 04:00 UTC.
    assert pendulum.datetime(2026, 3, 30, 4, tz="UTC") in runs


def test_serialize_round_trip_and_ui_texts(berlin_policy):
    timetable = PolicyWindowTimetable(str(berlin_policy), "gprd", recheck=timedelta(hours=3))
    again = PolicyWindowTimetable.deserialize(timetable.serialize())
    assert again.serialize() == timetable.serialize()
    assert timetable.summary.startswith("PDM windows (gprd): ") and "weekday_business" in timetable.summary
    assert "background: weekday_business" in timetable.description and "next run" in timetable.description


def test_declared_copy_skips_the_next_run_the_stored_copy_names_it(berlin_policy):
    """The DAG file's instance is only probed at parse; Airflow stores the description of the deserialized one."""
    declared = PolicyWindowTimetable(str(berlin_policy), "gprd", describe_next_run=False)
    assert "background: weekday_business" in declared.description and "next run" not in declared.description
    stored = PolicyWindowTimetable.deserialize(declared.serialize())
    assert stored.serialize() == PolicyWindowTimetable(str(berlin_policy), "gprd").serialize()
    assert stored.description.startswith(declared.description) and "next run" in stored.description


def test_manual_runs_and_no_catchup(berlin_policy):
    timetable = PolicyWindowTimetable(str(berlin_policy), "gprd")
    now = pendulum.datetime(2026, 11, 25, 10, 17, tz="UTC")
    assert timetable.infer_manual_data_interval(run_after=now) == DataInterval.exact(now)
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(
            earliest=pendulum.datetime(2020, 1, 1, tz="UTC"), latest=None, catchup=False
        ),
    )
    assert info.run_after >= pendulum.now("UTC") - timedelta(minutes=1)


def test_backfill_range_gives_one_run_per_window_opening(berlin_policy):
    timetable = PolicyWindowTimetable(str(berlin_policy), "gprd", recheck=timedelta(days=1))
    runs = _runs(timetable, pendulum.datetime(2026, 11, 27, tz="UTC"), 6)
    # Friday: data (handover 04:00 UTC), background (05:00 UTC); the weekend opens Saturday 00:00 UTC.
    for opening in (
        pendulum.datetime(2026, 11, 27, 4, tz="UTC"),
        pendulum.datetime(2026, 11, 27, 5, tz="UTC"),
        pendulum.datetime(2026, 11, 28, 0, tz="UTC"),
    ):
        assert opening in runs
    assert all(moment.minute == 0 for moment in runs)


def test_no_catchup_after_an_old_run_starts_from_now(berlin_policy):
    """Found by the fault campaign: after a backfill of old slots (or scheduler downtime) the timetable made
    every scheduled run from that slot up to now, one by one, although catchup is off."""
    timetable = PolicyWindowTimetable(str(berlin_policy), "gprd")
    old = pendulum.now("UTC") - timedelta(days=3)
    info = timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval.exact(old),
        restriction=TimeRestriction(
            earliest=pendulum.datetime(2020, 1, 1, tz="UTC"), latest=None, catchup=False
        ),
    )
    assert info is None or info.run_after >= pendulum.now("UTC") - timedelta(minutes=1)
    caught_up = timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval.exact(old),
        restriction=TimeRestriction(
            earliest=pendulum.datetime(2020, 1, 1, tz="UTC"), latest=None, catchup=True
        ),
    )
    assert caught_up is not None and caught_up.run_after < pendulum.now("UTC")
