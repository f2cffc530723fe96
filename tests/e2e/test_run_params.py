"""Invalid run parameters that reach a run (REST clients using the older keys, which the form's schema does not
cover) fail the run's first task once, without retries, and the run's failure message names that cause first."""

from __future__ import annotations

import pytest

from tests.support.scenarios import BACKGROUND, world

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BACKGROUND_FILE = "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb"


def test_an_override_without_reason_fails_once_with_its_cause(pdm_world):
    pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}))
    run = pdm_world.run(conf={"override_gates": ["window"], "override_reason": ""})
    assert str(run.state).endswith("failed")
    failures = pdm_world.audit.events(run_id=run.run_id, kind="task_failed")
    assert [f.payload["task_id"] for f in failures] == ["discover_pending"]  # once: no retry
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "error"
    assert outcome["reason"].startswith("discover_pending failed: InvalidRunParameters: override.reason")
    assert "not completed: " in outcome["reason"]
    assert "run_started" not in pdm_world.audit_kinds(run.run_id)  # nothing was evaluated
