"""Deploy-lock and rollback-safety rules, decisions and pending discovery: tables of cases, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.decision import (
    NEEDS_HUMAN,
    NOTHING_PENDING,
    WAIT_FOR_GATES,
    choose_path,
    decide,
    decision_id,
    select_versions,
)
from include.deployments import Deployment, PackageVersion
from include.gates.deploy_lock import DeployLockObservation, ExplicitLock, evaluate_deploy_lock
from include.gates.result import GateResult
from include.gates.rollback import BlockingIssue, RollbackObservation, evaluate_rollback_safety
from include.pending import is_post_deploy_migration, pending_from_compare
from include.pipelines import PipelineRun

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PACKAGE = "17.6.202611250620-d5b1b283fd4.2f0f30f3743"


def _deployment(status="success", finished=NOW - timedelta(hours=3), env="gprd") -> Deployment:
    return Deployment(1, env, "a" * 40, PACKAGE, status, finished - timedelta(minutes=40), finished)


def test_package_version_parses_auto_deploy_names():
    version = PackageVersion.parse(PACKAGE)
    assert (version.major, version.minor, version.built_at, version.rails_sha) == (
        17,
        6,
        "202611250620",
        "d5b1b283fd4",
    )
    assert PackageVersion.parse("17.6.202611250620+d5b1b283fd4.2f0f30f3743") is not None
    assert PackageVersion.parse("master") is None


@pytest.mark.parametrize(
    ("observation", "is_open", "fragment"),
    [
        (DeployLockObservation(), True, "no deployment"),
        (DeployLockObservation(active_deployments=[_deployment("running")]), False, "is running"),
        (DeployLockObservation(active_deployments=[_deployment("blocked")]), False, "is blocked"),
        (
            DeployLockObservation(running_deploy_pipelines=[PipelineRun(9, "rt", "running", "master", "")]),
            False,
            "deploy pipeline 9",
        ),
        (
            DeployLockObservation(running_pdm_pipelines=[PipelineRun(7, "rt", "pending", "master", "")]),
            False,
            "PDM pipeline 7",
        ),
        (
            DeployLockObservation(
                explicit_lock=ExplicitLock("alice", "db maintenance", NOW + timedelta(hours=1))
            ),
            False,
            "alice",
        ),
        (
            DeployLockObservation(explicit_lock=ExplicitLock("bob", "stale", NOW - timedelta(minutes=1))),
            True,
            "no deployment",
        ),
        (DeployLockObservation(error="GitLab GET /deployments: HTTP 502"), False, "unknown"),
    ],
)
def test_deploy_lock(observation, is_open, fragment):
    result = evaluate_deploy_lock(NOW, observation)
    assert result.open is is_open
    assert fragment in result.reason


@pytest.mark.parametrize(
    ("observation", "bake", "is_open", "fragment"),
    [
        (RollbackObservation(deployed=_deployment()), timedelta(hours=2), True, "baked 3h"),
        (RollbackObservation(deployed=_deployment()), timedelta(hours=4), False, "baked 3h 00m of 4h"),
        (RollbackObservation(deployed=None), timedelta(0), False, "no finished deployment"),
        (
            RollbackObservation(
                deployed=_deployment(),
                blocking_issues=[BlockingIssue("prod", 12, "API errors", ("severity::2",))],
            ),
            timedelta(0),
            False,
            "prod#12",
        ),
        (RollbackObservation(error="timeout"), timedelta(0), False, "unknown"),
    ],
)
def test_rollback_safety(observation, bake, is_open, fragment):
    result = evaluate_rollback_safety(NOW, observation, bake)
    assert result.open is is_open
    assert fragment in result.reason


def test_rollback_safety_says_when_bake_completes():
    result = evaluate_rollback_safety(NOW, RollbackObservation(deployed=_deployment()), timedelta(hours=4))
    assert result.retry_at == NOW + timedelta(hours=1)


def _gate(name, is_open):
    return GateResult(name, is_open, 1, 2, f"{name} {'open' if is_open else 'closed'}", NOW)


def test_decide_requires_every_gate_open():
    assert decide([_gate("window", True), _gate("traffic", True)]).go
    closed = decide([_gate("window", True), _gate("traffic", False)])
    assert not closed.go and "traffic" in closed.reason
    assert not decide([]).go  # fail closed


def test_decide_override_and_dry_run():
    overridden = decide([_gate("traffic", False)], {"traffic": "incident mitigation needs this index now"})
    assert overridden.go and overridden.overridden == {"traffic": "incident mitigation needs this index now"}
    dry = decide([_gate("window", True)], dry_run=True)
    assert not dry.go and dry.dry_run and "dry run" in dry.reason


def test_choose_path():
    assert choose_path([], True)[0] == NOTHING_PENDING
    unknown = [{"path": "db/post_migrate/1_x.rb", "class": "unknown"}]
    assert choose_path(unknown, False)[0] == NEEDS_HUMAN
    assert choose_path(unknown, False, "reviewed by DBRE")[0] == WAIT_FOR_GATES
    assert choose_path([{"path": "p", "class": "background"}], True)[0] == WAIT_FOR_GATES


def test_select_versions_takes_the_longest_allowed_prefix():
    migrations = [
        {"version": "3", "class": "background", "path": "c"},
        {"version": "1", "class": "background", "path": "a"},
        {"version": "2", "class": "cleanup", "path": "b"},
    ]
    allowed = select_versions(migrations, lambda c: c.value in ("noop", "background"))
    assert [m["version"] for m in allowed] == ["1"]


def test_select_versions_lets_lighter_migrations_ride_in_a_stricter_open_window():
    """A weekend: only cleanup's window is open; the background migration queued before it runs with it."""
    migrations = [
        {"version": "1", "class": "background", "path": "a"},
        {"version": "2", "class": "cleanup", "path": "b"},
        {"version": "3", "class": "background", "path": "c"},
        {"version": "4", "class": "unknown", "path": "d"},
        {"version": "5", "class": "noop", "path": "e"},
    ]
    weekend = select_versions(migrations, lambda c: c.value == "cleanup")
    assert [m["version"] for m in weekend] == ["1", "2", "3"]  # never past the unknown one
    assert select_versions(migrations[:1], lambda c: c.value == "cleanup") == []  # background alone waits


def test_select_versions_class_filter_ends_the_prefix():
    migrations = [
        {"version": "1", "class": "background", "path": "a"},
        {"version": "2", "class": "cleanup", "path": "b"},
    ]
    everything = lambda c: True  # noqa: E731
    assert select_versions(migrations, everything, lambda c: c.value == "cleanup") == []
    only_background = select_versions(migrations, everything, lambda c: c.value == "background")
    assert [m["version"] for m in only_background] == ["1"]


def test_decision_id_is_stable_per_run():
    assert decision_id("pdm_gprd", "r1", "gprd", "a" * 40) == decision_id("pdm_gprd", "r1", "gprd", "a" * 40)
    assert decision_id("pdm_gprd", "r1", "gprd", "a" * 40) != decision_id("pdm_gprd", "r2", "gprd", "a" * 40)


def test_pending_from_compare_handles_added_renamed_deleted_and_other_paths():
    diffs = [
        {"new_path": "db/post_migrate/20261120000000_b.rb", "new_file": True},
        {"new_path": "ee/db/post_migrate/20261110000000_a.rb", "new_file": True},
        {
            "new_path": "db/post_migrate/20261121000000_renamed.rb",
            "old_path": "db/post_migrate/x.rb",
            "renamed_file": True,
        },
        {"new_path": "db/post_migrate/20261101000000_gone.rb", "deleted_file": True},
        {"new_path": "db/post_migrate/20261001000000_edited.rb"},
        {"new_path": "db/migrate/20261122000000_regular.rb", "new_file": True},
        {"new_path": "spec/db/post_migrate/20261122000000_spec.rb", "new_file": True},
    ]
    assert [f.path for f in pending_from_compare(diffs)] == [
        "ee/db/post_migrate/20261110000000_a.rb",
        "db/post_migrate/20261120000000_b.rb",
        "db/post_migrate/20261121000000_renamed.rb",
    ]
    assert not is_post_deploy_migration("db/post_migrate/sub/20261122000000_x.rb")
