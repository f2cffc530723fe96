"""A run that needs a human asks for approval (Required Actions) and acts on the answer, end to end."""

from __future__ import annotations

import pytest

from tests.support.hitl import run_answering
from tests.support.scenarios import BACKGROUND, RELEASE_TOOLS, world

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BACKGROUND_FILE = "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb"
UNKNOWN_FILE = "db/post_migrate/20261119000000_rebuild_project_statistics.rb"
UNKNOWN = """# frozen_string_literal: true

class RebuildProjectStatistics < Gitlab::Database::Migration[2.2]
  milestone '17.6'

  def up
    Projects::RefreshStatisticsService.new.execute
  end

  def down; end
end
"""


def _states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def test_approved_run_goes_through_the_gates_and_runs(pdm_world):
    """A class the policy marks approval_required (background here): approved, the gates open, it runs."""
    from tests.support.policies import e2e_policy, write_policy

    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}))
    policy = e2e_policy()
    policy["classes"]["background"]["approval_required"] = True
    write_policy(pdm_world.policy_path, policy)
    run, seen = run_answering(pdm_world, "Approve", "read the diff, a small table")
    assert BACKGROUND_FILE in seen["body"] and "| background |" in seen["body"]
    assert "/gitlab-org/gitlab/-/compare/" in seen["body"]  # the diff link
    assert seen["options"] == ["Approve", "Reject"] and "gprd" in seen["subject"]
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "pipeline_succeeded"
    assert outcome["approval"]["decision"] == "approved" and outcome["approval"]["by"] == "alice"
    (event,) = pdm_world.audit.events(run_id=run.run_id, kind="approval")
    assert event.payload["comment"] == "read the diff, a small table" and event.payload["at"]
    assert event.payload["versions"] == ["20261120000000"]
    assert len(sandbox.created_pipelines(project=RELEASE_TOOLS)) == 1
    kinds = pdm_world.audit_kinds(run.run_id)
    assert kinds.index("approval_requested") < kinds.index("approval") < kinds.index("decision")


def test_approved_unknown_migration_still_needs_a_window_override(pdm_world):
    """`unknown` has no window: the approval says yes, the gates still say when (never, without override)."""
    sandbox = pdm_world.serve(world({UNKNOWN_FILE: UNKNOWN}))
    run, seen = run_answering(pdm_world, "Approve", "looked at it")
    assert UNKNOWN_FILE in seen["body"] and "| unknown |" in seen["body"]
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "waiting_for_window" and outcome["approval"]["decision"] == "approved"
    assert sandbox.created_pipelines(project=RELEASE_TOOLS) == []


def test_rejected_run_ends_rejected_and_runs_nothing(pdm_world):
    sandbox = pdm_world.serve(world({UNKNOWN_FILE: UNKNOWN}))
    run, _ = run_answering(pdm_world, "Reject", "wait for the DBRE review")
    assert str(run.state).endswith("success")
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "rejected" and "alice" in outcome["reason"]
    assert "wait for the DBRE review" in outcome["reason"]
    assert sandbox.created_pipelines(project=RELEASE_TOOLS) == []
    states = _states(run)
    assert states["outcome_rejected"].endswith("success") and states["gate_window"].endswith("skipped")


def test_unanswered_request_expires_and_says_so(pdm_world):
    sandbox = pdm_world.serve(world({UNKNOWN_FILE: UNKNOWN}))
    run, _ = run_answering(pdm_world, None)  # what the scheduler's timeout sweep sends
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "approval_expired" and "24 h" in outcome["reason"]
    assert [e.kind for e in pdm_world.audit.events(run_id=run.run_id, kind="approval_expired")] == [
        "approval_expired"
    ]
    assert sandbox.created_pipelines(project=RELEASE_TOOLS) == []
    assert _states(run)["outcome_approval_expired"].endswith("success")


def test_a_run_that_needs_nobody_passes_the_approval_without_a_request(pdm_world):
    pdm_world.serve(world())
    run = pdm_world.run()
    assert pdm_world.outcome(run.run_id)["outcome"] == "noop"
    assert "approval_requested" not in pdm_world.audit_kinds(run.run_id)
