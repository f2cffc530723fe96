"""The shipped policy loads; defaults, per-environment overrides and the normalised form are as documented."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import yaml

from include.classification.classes import MigrationClass as C
from include.policy import PolicyError, load_policy, parse_policy
from tests.policy.support import ROOT, SHIPPED, shipped_data, utc


def test_the_shipped_policy_loads_with_gitlab_com_defaults():
    policy = load_policy(SHIPPED)
    assert (policy.timezone, policy.target, policy.execution_mode) == ("UTC", "gitlab_com", "all_pending")
    assert list(policy.environments) == ["gstg", "gprd"]
    gstg, gprd = policy.environments.values()
    assert (gstg.deploy_environment, gstg.db_environment, gstg.after, gstg.schedule) == (
        "gstg",
        "db/gstg",
        None,
        True,
    )
    assert (gprd.deploy_environment, gprd.db_environment, gprd.after) == ("gprd", "db/gprd", "gstg")
    assert policy.class_rule(C.SCHEMA_HEAVY).windows == ("weekend",)
    assert policy.class_rule(C.BACKGROUND).windows == ("weekday_business",)
    assert not policy.class_rule(C.UNKNOWN).automatic and policy.class_rule(C.UNKNOWN).approval_required
    assert policy.gates.traffic.query.startswith("sum(gitlab_component_ops:rate_5m")
    assert policy.gitlab.pdm_pipeline.variables["PDM_DECISION_ID"] == "{decision_id}"
    assert policy.gitlab.pdm_pipeline.trigger == "api"
    assert policy.prometheus_conn_id == "prometheus_default"
    assert policy.notifications.slack_conn_id is None
    # PDMs run Monday to Friday today and never in a production change lock.
    assert not policy.window_verdict(C.BACKGROUND, utc(2026, 11, 28, 10)).allowed
    assert not policy.window_verdict(C.NOOP, utc(2026, 12, 22, 10)).allowed


def test_the_local_run_policy_loads_too():
    assert set(load_policy(ROOT / "config" / "policy.local.yaml").environments) == {"gstg", "gprd"}


def test_class_rules_have_gate_defaults_resolved():
    policy = load_policy(SHIPPED)
    background, cleanup = policy.class_rule(C.BACKGROUND), policy.class_rule("cleanup")
    assert background.traffic_threshold == policy.gates.traffic.threshold == 600
    assert background.min_bake == policy.gates.rollback.min_bake == timedelta(hours=2)
    assert background.max_predicted_duration is None
    assert (cleanup.traffic_threshold, cleanup.min_bake) == (400, timedelta(hours=12))
    assert policy.class_rule(C.DATA).max_predicted_duration == timedelta(minutes=60)
    data = shipped_data()
    data["classes"]["noop"]["min_bake"] = "0s"  # zero is a value, not "use the default"
    assert parse_policy(data).class_rule(C.NOOP).min_bake == timedelta(0)


def test_a_class_left_out_is_scheduled_like_the_next_stricter_one():
    data = shipped_data()
    del data["classes"]["data"], data["classes"]["cleanup"], data["classes"]["unknown"]
    policy = parse_policy(data)
    assert policy.class_rule(C.DATA) == policy.class_rule(C.SCHEMA_HEAVY)
    # cleanup falls back to unknown, which by default needs a human: never lighter than written.
    assert policy.class_rule(C.CLEANUP) == policy.class_rule(C.UNKNOWN)
    assert not policy.class_rule(C.CLEANUP).automatic and policy.class_rule(C.CLEANUP).windows == ()


def test_a_class_that_is_not_automatic_may_keep_windows_for_manual_runs():
    data = shipped_data()
    data["classes"]["schema_heavy"] = {"windows": ["weekend"], "automatic": False, "approval_required": True}
    rule = parse_policy(data).class_rule(C.SCHEMA_HEAVY)
    assert (rule.automatic, rule.approval_required, rule.windows) == (False, True, ("weekend",))
    assert parse_policy(data).window_verdict(C.SCHEMA_HEAVY, utc(2026, 11, 28, 10)).allowed


def test_environment_overrides_apply_to_that_environment_only():
    data = shipped_data()
    data["environments"]["gstg"]["overrides"] = {
        "gates": {"rollback": {"min_bake": "30m"}, "max_wait": "1h"},
        "classes": {"cleanup": {"windows": ["any_time"]}},
    }
    policy = parse_policy(data)
    gstg, gprd = policy.for_environment("gstg"), policy.for_environment("gprd")
    assert gstg.gates.rollback.min_bake == timedelta(minutes=30) and gstg.gates.max_wait == timedelta(hours=1)
    assert gstg.class_rule(C.BACKGROUND).min_bake == timedelta(minutes=30)  # the default follows the gate
    assert gstg.class_rule(C.CLEANUP).min_bake == timedelta(hours=12)  # merged into the class, not replaced
    assert gstg.class_rule(C.CLEANUP).windows == ("any_time",)
    assert gstg.window_verdict(C.CLEANUP, utc(2026, 11, 25, 10)).allowed
    assert not gprd.window_verdict(C.CLEANUP, utc(2026, 11, 25, 10)).allowed
    assert gprd is policy and gprd.gates.rollback.min_bake == timedelta(hours=2)
    assert list(gstg.environments) == ["gstg", "gprd"]
    with pytest.raises(PolicyError, match="unknown environment 'gprdd'"):
        policy.for_environment("gprdd")


def test_to_dict_is_json_ready_normalised_and_a_valid_policy():
    policy = load_policy(SHIPPED)
    normal = policy.to_dict()
    assert json.loads(json.dumps(normal)) == normal
    assert normal["classes"]["background"]["traffic_threshold"] == 600
    assert normal["classes"]["cleanup"]["min_bake"] == "12h"
    assert normal["classes"]["data"]["max_predicted_duration"] == "1h"
    assert normal["change_locks"][0] == {
        "name": "end-of-year production change lock",
        "from": "2026-12-21T00:00:00Z",
        "to": "2027-01-05T00:00:00Z",
    }
    assert normal["windows"]["weekend"] == {
        "days": ["sat", "sun"],
        "start": "00:00",
        "end": "24:00",
        "timezone": "UTC",
    }
    again = parse_policy(normal, source="audit")
    assert again.to_dict() == normal
    for cls in C:
        assert again.allowed_spans(cls, utc(2026, 1, 1), utc(2027, 1, 1)) == policy.allowed_spans(
            cls, utc(2026, 1, 1), utc(2027, 1, 1)
        )


def test_yaml_dates_and_unquoted_instants_are_read():
    data = shipped_data()
    data["change_locks"] = [
        {"name": "dated", "from": date(2026, 11, 28), "to": "2026-11-28"},
        {"name": "instant", "from": utc(2026, 12, 5, 10), "to": utc(2026, 12, 5, 12)},
    ]
    policy = parse_policy(data)
    assert not policy.window_verdict(C.CLEANUP, utc(2026, 11, 28, 23, 59)).allowed
    assert policy.window_verdict(C.CLEANUP, utc(2026, 11, 29)).allowed
    assert policy.window_verdict(C.CLEANUP, utc(2026, 12, 5, 11)).lock == "instant"
    assert json.dumps(policy.to_dict())


def test_the_annotated_example_in_the_docs_is_a_valid_policy():
    text = (ROOT / "docs" / "policy.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = parse_policy(yaml.safe_load(example), source="docs/policy.md")
    assert [lock.name for lock in policy.locks][1] == "weekly release freeze"
    gprd = policy.for_environment("gprd")
    assert gprd.gates.max_wait == timedelta(hours=3) and gprd.class_rule(C.CLEANUP).min_bake == timedelta(
        hours=24
    )
