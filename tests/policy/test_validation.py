"""A bad policy is refused with the file, the key path and the problem, every problem at once."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from include.policy import PolicyError, load_policy, parse_policy
from tests.policy.support import SHIPPED, shipped_data

SOURCE = "config/policy.yaml"


def problems(mutate) -> str:
    data = shipped_data()
    mutate(data)
    with pytest.raises(PolicyError) as error:
        parse_policy(data, source=SOURCE)
    message = str(error.value)
    assert all(line.startswith(f"{SOURCE}: ") for line in message.splitlines()), message
    return message


def add_lock(**lock):
    return lambda d: d["change_locks"].append(lock)


# (error kind, change to the shipped policy, text the message must contain: key path first)
CASES = [
    ("unknown top-level key", lambda d: d.update(colour="blue"), "config/policy.yaml: colour: unknown key"),
    (
        "typo suggests the key",
        lambda d: d.update(timzone="UTC"),
        'timzone: unknown key (did you mean "timezone"?',
    ),
    (
        "nested typo",
        lambda d: d["gates"]["traffic"].update(treshold=5),
        'gates.traffic.treshold: unknown key (did you mean "threshold"?',
    ),
    (
        "typo in a class rule",
        lambda d: d["classes"]["cleanup"].update(min_bak="1h"),
        'classes.cleanup.min_bak: unknown key (did you mean "min_bake"?',
    ),
    (
        "wrong type: mapping",
        lambda d: d.update(windows=["weekend"]),
        "windows: expected a mapping, got a list",
    ),
    (
        "wrong type: boolean",
        lambda d: d["classes"]["data"].update(automatic="yes"),
        "classes.data.automatic: expected true or false, got 'yes'",
    ),
    (
        "wrong type: number",
        lambda d: d["gates"]["traffic"].update(threshold="high"),
        "gates.traffic.threshold: expected a number",
    ),
    (
        "hour out of range",
        lambda d: d["windows"]["weekend"].update(start="25:00"),
        "windows.weekend.start: expected a time \"HH:MM\" from 00:00 to 23:59, got '25:00'",
    ),
    (
        "not a time",
        lambda d: d["windows"]["weekend"].update(start="9am"),
        "windows.weekend.start: expected a time",
    ),
    (
        "24:00 only ends a day",
        lambda d: d["windows"]["weekend"].update(start="24:00"),
        "windows.weekend.start: expected a time",
    ),
    (
        "unquoted time read as a number",
        lambda d: d["windows"]["weekend"].update(end=360),
        'windows.weekend.end: write the time in quotes, e.g. "06:00"',
    ),
    ("missing end", lambda d: d["windows"]["weekend"].pop("end"), "windows.weekend.end: is required"),
    (
        "bad day",
        lambda d: d["windows"]["weekend"].update(days=["sat", "caturday"]),
        "windows.weekend.days[1]: unknown day 'caturday'",
    ),
    (
        "no days",
        lambda d: d["windows"]["weekend"].update(days=[]),
        "windows.weekend.days: expected a non-empty list of days",
    ),
    (
        "bad window time zone",
        lambda d: d["windows"]["weekend"].update(timezone="Mars/Olympus"),
        "windows.weekend.timezone: unknown time zone 'Mars/Olympus'",
    ),
    ("bad policy time zone", lambda d: d.update(timezone="CEST+2"), "timezone: unknown time zone"),
    (
        "bad duration",
        lambda d: d["gates"].update(max_wait="forever"),
        "gates.max_wait: expected a duration with a unit",
    ),
    (
        "duration without unit",
        lambda d: d["classes"]["cleanup"].update(min_bake=12),
        "classes.cleanup.min_bake: expected a duration",
    ),
    (
        "zero poll interval",
        lambda d: d["gates"].update(poll_interval="0s"),
        "gates.poll_interval: must be longer than zero",
    ),
    (
        "unknown class",
        lambda d: d["classes"].update(hevy={"windows": ["weekend"]}),
        "classes.hevy: unknown class (allowed: noop, background",
    ),
    (
        "unknown window",
        lambda d: d["classes"]["cleanup"].update(windows=["weekend", "wkend"]),
        'classes.cleanup.windows[1]: unknown window "wkend" (known: any_time, apac_emea_handover, weekday_business, weekend)',
    ),
    (
        "window listed twice",
        lambda d: d["classes"]["cleanup"].update(windows=["weekend", "weekend"]),
        'classes.cleanup.windows[1]: window "weekend" is listed twice',
    ),
    (
        "automatic without windows",
        lambda d: d["classes"]["cleanup"].update(windows=[]),
        "classes.cleanup.windows: an automatic class needs at least one window",
    ),
    (
        "unknown set automatic",
        lambda d: d["classes"]["unknown"].update(automatic=True),
        "classes.unknown.automatic: unknown migrations are never run automatically",
    ),
    (
        "after names no environment",
        lambda d: d["environments"]["gprd"].update(after="gstgg"),
        "environments.gprd.after: unknown environment 'gstgg' (known: gstg, gprd)",
    ),
    (
        "after forms a cycle",
        lambda d: d["environments"]["gstg"].update(after="gprd"),
        "environments.gstg.after: forms a cycle: gstg → gprd → gstg",
    ),
    (
        "after itself",
        lambda d: d["environments"]["gstg"].update(after="gstg"),
        "environments.gstg.after: forms a cycle: gstg → gstg",
    ),
    (
        "environment name",
        lambda d: d["environments"].update({"Prod-EU": {}}),
        "environments.Prod-EU: environment names are lower-case",
    ),
    (
        "two environments record to one place",
        lambda d: d["environments"]["gprd"].update(db_environment="db/gstg"),
        'environments.gprd.db_environment: "db/gstg" is already where gstg records',
    ),
    (
        "no environments",
        lambda d: d.update(environments={}),
        "environments: at least one environment is required",
    ),
    (
        "one-off lock ends before it starts",
        add_lock(name="x", **{"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}),
        "change_locks[3].to: must be after from",
    ),
    (
        "one-off lock of zero length",
        add_lock(name="x", **{"from": "2026-12-02T10:00:00Z", "to": "2026-12-02T10:00:00Z"}),
        "change_locks[3].to: must be after from",
    ),
    (
        "one-off lock without end",
        add_lock(name="x", **{"from": "2026-12-02T10:00:00Z"}),
        "change_locks[3].to: is required",
    ),
    (
        "bad instant",
        add_lock(name="x", **{"from": "next tuesday", "to": "2026-12-02"}),
        "change_locks[3].from: expected an ISO-8601 date-time",
    ),
    (
        "lock of two kinds",
        add_lock(name="x", days=["fri"], start="10:00", end="12:00", dates=["2026-12-02"]),
        "change_locks[3]: give exactly one kind of lock",
    ),
    (
        "lock key of another kind",
        add_lock(name="x", dates=["2026-12-02"], start="10:00"),
        "change_locks[3].start: does not belong to a dates lock",
    ),
    ("lock without a name", add_lock(dates=["2026-12-02"]), "change_locks[3].name: is required"),
    (
        "two locks of one name",
        add_lock(name="public holidays", dates=["2026-12-02"]),
        'change_locks[3].name: "public holidays" is already the name of change_locks[2]',
    ),
    (
        "bad date",
        add_lock(name="x", dates=["2026-02-30"]),
        "change_locks[3].dates[0]: expected a date YYYY-MM-DD",
    ),
    (
        "unknown holiday country",
        add_lock(name="x", holidays={"countries": ["XX"]}),
        "change_locks[3].holidays.countries[0]: no public holiday calendar for 'XX'",
    ),
    (
        "unknown holiday subdivision",
        add_lock(name="x", holidays={"countries": ["US-ZZ"]}),
        "change_locks[3].holidays.countries[0]: no public holiday calendar for 'US-ZZ'",
    ),
    (
        "class that can never run",
        add_lock(name="weekend freeze", days=["sat", "sun"], start="00:00", end="24:00"),
        'classes.cleanup.windows: every window ("weekend") always falls inside recurring change locks ("weekend freeze")',
    ),
    (
        "percentile above 100",
        lambda d: d["gates"]["traffic"].update(percentile=130),
        "gates.traffic.percentile: must be at most 100, got 130",
    ),
    (
        "traffic mode",
        lambda d: d["gates"]["traffic"].update(mode="relative"),
        "gates.traffic.mode: expected one of absolute, baseline_percentile, got 'relative'",
    ),
    ("target", lambda d: d.update(target="gitlab.com"), "target: expected one of gitlab_com, self_managed"),
    (
        "execution mode",
        lambda d: d.update(execution_mode="all"),
        "execution_mode: expected one of all_pending, selected_versions",
    ),
    ("version", lambda d: d.update(version=2), "version: unsupported policy version 2"),
    (
        "unknown pipeline placeholder",
        lambda d: d["gitlab"]["pdm_pipeline"]["variables"].update(X="{bogus}"),
        "gitlab.pdm_pipeline.variables.X: unknown placeholder {bogus}",
    ),
    (
        "no exactly-once marker",
        lambda d: d["gitlab"]["pdm_pipeline"]["variables"].pop("PDM_DECISION_ID"),
        "gitlab.pdm_pipeline.variables: one variable must carry {decision_id}",
    ),
    (
        "trigger kind",
        lambda d: d["gitlab"]["pdm_pipeline"].update(trigger="webhook"),
        "gitlab.pdm_pipeline.trigger: expected one of api, trigger_token",
    ),
    (
        "missing project",
        lambda d: d["gitlab"].pop("application_project"),
        "gitlab.application_project: is required",
    ),
    (
        "deploy pipeline placeholder",
        lambda d: d["gates"]["deploy_lock"]["deploy_pipelines"][0]["variables"].update(X="{sha}"),
        "gates.deploy_lock.deploy_pipelines[0].variables.X: unknown placeholder {sha}",
    ),
    (
        "override typo",
        lambda d: d["environments"]["gprd"].update(overrides={"clases": {}}),
        "environments.gprd.overrides.clases: unknown key",
    ),
    (
        "override names its path",
        lambda d: d["environments"]["gprd"].update(overrides={"classes": {"cleanup": {"min_bake": "soon"}}}),
        "environments.gprd.overrides.classes.cleanup.min_bake: expected a duration",
    ),
    (
        "override of an unknown window",
        lambda d: d["environments"]["gprd"].update(overrides={"classes": {"data": {"windows": ["nights"]}}}),
        'environments.gprd.overrides.classes.data.windows[0]: unknown window "nights"',
    ),
    (
        "notifications",
        lambda d: d["notifications"].update(email={"to": "x"}),
        "notifications.email: unknown key",
    ),
]


@pytest.mark.parametrize(("kind", "mutate", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_kind_of_mistake_names_its_key_path(kind, mutate, expected):
    assert expected in problems(mutate)


def test_every_problem_is_reported_together_one_per_line():
    def several(d):
        d["windows"]["weekend"]["start"] = "9am"
        d["gates"]["max_wait"] = "soon"
        d["classes"]["cleanup"]["windows"] = ["wkend"]
        d["environments"]["gprd"]["after"] = "nowhere"

    lines = problems(several).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "windows.weekend.start",
        "gates.max_wait",
        "classes.cleanup.windows[0]",
        "environments.gprd.after",
    ]


def test_a_policy_that_is_not_a_mapping():
    with pytest.raises(PolicyError, match=r"^p.yaml: \(top level\): the policy must be a mapping"):
        parse_policy(["windows"], source="p.yaml")


def test_file_errors_name_the_line(tmp_path):
    text = SHIPPED.read_text().replace(
        "windows: [weekend], automatic: true, traffic_threshold: 400, min_bake",
        "windows: [wkend], automatic: true, traffic_threshold: 400, min_bake",
    )
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "[wkend]" in row)
    assert str(error.value) == (
        f'{path}: classes.cleanup.windows[0]: unknown window "wkend" '
        f"(known: any_time, apac_emea_handover, weekday_business, weekend) (line {line})"
    )


def test_a_window_defined_twice_is_refused(tmp_path):
    path = tmp_path / "policy.yaml"
    text = SHIPPED.read_text().replace(
        "  any_time:\n", '  weekend:\n    days: [sun]\n    start: "00:00"\n    end: "12:00"\n  any_time:\n'
    )
    path.write_text(text)
    first, second = [n for n, row in enumerate(text.splitlines(), 1) if row.startswith("  weekend:")]
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    assert str(error.value) == (
        f"{path}: windows.weekend: defined twice (lines {first} and {second}); YAML would silently keep the last"
    )


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        textwrap.dedent("""\
        version: 1
        windows:
          a: [unclosed
        """)
    )
    with pytest.raises(PolicyError, match=r"policy.yaml: not valid YAML \(line \d+, column \d+\)"):
        load_policy(path)


def test_missing_file(tmp_path):
    with pytest.raises(PolicyError, match="nothing.yaml: cannot read the policy file"):
        load_policy(tmp_path / "nothing.yaml")


def set_forecast(**values):
    return lambda d: d["gates"]["deploy_lock"]["forecast"].update(values)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"gap_percentile": 120}, "gates.deploy_lock.forecast.gap_percentile"),
        ({"weekly_pattern": "no"}, "gates.deploy_lock.forecast.weekly_pattern: expected true or false"),
        ({"per_migration_quantile": 0}, "gates.deploy_lock.forecast.per_migration_quantile"),
        ({"pipeline_overhead": 10}, "gates.deploy_lock.forecast.pipeline_overhead"),
        ({"min_samples": 0}, "gates.deploy_lock.forecast.min_samples"),
        ({"per_migration_default": "0m"}, "gates.deploy_lock.forecast.per_migration_default"),
    ],
)
def test_batch_forecast_keys_are_checked_with_their_key_path(values, expected):
    assert expected in problems(set_forecast(**values))


def test_batch_forecast_keys_are_read():
    data = shipped_data()
    data["gates"]["deploy_lock"]["forecast"].update(
        gap_percentile=5, weekly_pattern=False, per_migration_quantile=70, min_samples=4
    )
    forecast = parse_policy(data, source=SOURCE).gates.deploy_lock.forecast
    assert (forecast.gap_percentile, forecast.weekly_pattern) == (5, False)
    assert (forecast.per_migration_quantile, forecast.min_samples) == (70, 4)


def test_approval_timeout_is_a_policy_key_with_a_24h_default():
    data = shipped_data()
    data.pop("approval", None)
    assert parse_policy(data, source=SOURCE).approval.timeout == timedelta(hours=24)
    data["approval"] = {"timeout": "6h30m"}
    policy = parse_policy(data, source=SOURCE)
    assert policy.approval.timeout == timedelta(hours=6, minutes=30)
    assert policy.to_dict()["approval"] == {"timeout": "390m"}


@pytest.mark.parametrize(
    ("approval", "expected"),
    [
        ({"timeout": "0m"}, "config/policy.yaml: approval.timeout: must be longer than zero, got '0m'"),
        ({"timeout": 24}, "config/policy.yaml: approval.timeout: expected a duration with a unit"),
        ({"timeout": "31d"}, "config/policy.yaml: approval.timeout: must be at most 30d, got '31d'"),
        ({"timeout_hours": 24}, 'approval.timeout_hours: unknown key (did you mean "timeout"?'),
        ("24h", "config/policy.yaml: approval: "),
    ],
)
def test_a_bad_approval_timeout_is_refused_with_its_key_path(approval, expected):
    assert expected in problems(lambda d: d.update(approval=approval))
