"""The approval request's text and the meaning of an answer (pure logic)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from include import approval

SNAPSHOT = {
    "environment": "gprd",
    "run_class": "unknown",
    "deployed": {"ref": "17.7.1", "sha": "b" * 40},
    "rollback_line": {"ref": "17.6.1", "sha": "a" * 40},
    "migrations": [
        {
            "path": "db/post_migrate/2_b.rb",
            "version": "2",
            "class": "unknown",
            "reasons": ["calls a service"],
        },
        {"path": "db/post_migrate/1_a.rb", "version": "1", "class": "background", "reasons": []},
    ],
}


def test_timeout_from_the_policy_unless_the_environment_overrides_it():
    assert approval.response_timeout(env={}) == timedelta(hours=24)
    assert approval.response_timeout(timedelta(hours=6), env={}) == timedelta(hours=6)
    assert approval.response_timeout(
        timedelta(hours=6), env={"PDM_APPROVAL_TIMEOUT_HOURS": " "}
    ) == timedelta(hours=6)
    override = {"PDM_APPROVAL_TIMEOUT_HOURS": "0.5"}
    assert approval.response_timeout(timedelta(hours=6), env=override) == timedelta(minutes=30)
    for bad in ("soon", "0", "-1"):
        with pytest.raises(ValueError, match="PDM_APPROVAL_TIMEOUT_HOURS"):
            approval.response_timeout(env={"PDM_APPROVAL_TIMEOUT_HOURS": bad})


def test_compare_url_from_the_api_base():
    url = approval.compare_url("https://gitlab.example/api/v4", "gitlab-org/gitlab", "a1", "b2")
    assert url == "https://gitlab.example/gitlab-org/gitlab/-/compare/a1...b2"
    assert approval.compare_url("https://gitlab.example", "p", None, "b2") is None


def test_body_lists_migrations_in_order_with_class_reason_and_diff():
    text = approval.body(SNAPSHOT, "class unknown is never run automatically", "https://x/-/compare/a...b")
    assert text.index("1_a.rb") < text.index("2_b.rb")
    assert "| unknown | calls a service |" in text and "| background | - |" in text
    assert "(https://x/-/compare/a...b)" in text and "never run automatically" in text
    assert "Diff link: unavailable" in approval.body(SNAPSHOT, "why", None)
    assert approval.subject(SNAPSHOT) == "Approve 2 post-deploy migration(s) on gprd (run class unknown)?"


def test_answers_change_only_a_needs_human_outcome():
    needs = {"outcome": "needs_human", "reason": "unknown"}
    rejected = approval.answer(["Reject"], {"id": "7", "name": "alice"}, "t", " not now ", SNAPSHOT)
    assert rejected["decision"] == "rejected" and rejected["comment"] == "not now"
    assert rejected["versions"] == ["2", "1"] and rejected["deployed_sha"] == "b" * 40
    result = approval.apply_to_outcome(needs, rejected)
    assert result["outcome"] == "rejected" and result["reason"] == "rejected by alice: not now"
    expired = approval.apply_to_outcome(needs, approval.expired(timedelta(hours=24), SNAPSHOT))
    assert expired["outcome"] == "approval_expired" and "24 h" in expired["reason"]
    approved = approval.answer(["Approve"], {"id": "7", "name": "alice"}, "t", "", SNAPSHOT)
    ran = approval.apply_to_outcome({"outcome": "pipeline_succeeded", "reason": "ok"}, approved)
    assert ran["outcome"] == "pipeline_succeeded" and ran["approval"]["by"] == "alice"
    assert approval.apply_to_outcome(needs, None) == needs
