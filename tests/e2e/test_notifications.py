"""`pdm_gprd` with both notifiers on, end to end (`dag.test()`, sandbox GitLab, PostgreSQL, Prometheus), against
a real local HTTP receiver standing in for Slack and Grafana."""

from __future__ import annotations

import json

import pytest

from tests.notifications.receiver import Receiver
from tests.support.policies import e2e_policy, write_policy
from tests.support.scenarios import BACKGROUND, RELEASE_TOOLS, world

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BACKGROUND_FILE = "db/post_migrate/20261120000000_queue_backfill_issue_search_data.rb"
WEBHOOK_PATH = "/services/T0E2E/B0E2E/e2ew3bh00ks3cr3t"
GRAFANA_TOKEN = "glsa_e2e-grafana-token-fedcba9876"


@pytest.fixture
def receiver(pdm_world):
    server = Receiver().start()
    pdm_world.monkeypatch.setenv(
        "AIRFLOW_CONN_PDM_SLACK", json.dumps({"conn_type": "http", "host": server.url + WEBHOOK_PATH})
    )
    pdm_world.monkeypatch.setenv(
        "AIRFLOW_CONN_PDM_GRAFANA",
        json.dumps({"conn_type": "http", "host": server.url, "password": GRAFANA_TOKEN}),
    )
    policy = e2e_policy()
    policy["notifications"] = {"slack": {"conn_id": "pdm_slack"}, "grafana": {"conn_id": "pdm_grafana"}}
    write_policy(pdm_world.policy_path, policy)
    yield server
    server.stop()


def test_start_and_end_notices_reach_slack_and_grafana(pdm_world, receiver):
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}))
    run = pdm_world.run()
    assert str(run.state).endswith("success")
    (pipeline,) = sandbox.created_pipelines(project=RELEASE_TOOLS)
    outcome = pdm_world.outcome(run.run_id)
    assert outcome["outcome"] == "pipeline_succeeded"

    start, end = (r.body["text"] for r in receiver.at("/services/"))
    assert start.startswith(":arrow_forward: PDM started on *gprd*: 1 post-deploy migration(s)")
    assert "`20261120000000` queue_backfill_issue_search_data — *background*" in start
    assert f"|#{pipeline['id']}>" in start and "Decision: `gprd-" in start
    assert end.startswith(":white_check_mark: PDM on *gprd* ended pipeline_succeeded")
    assert f"pipeline {pipeline['id']} succeeded" in end

    point, region = (r for r in receiver.at("/api/annotations"))
    assert point.headers["Authorization"] == f"Bearer {GRAFANA_TOKEN}"
    assert point.body["tags"] == ["pdm", "gprd", "background"] and "timeEnd" not in point.body
    assert region.body["tags"] == ["pdm", "gprd", "background", "pipeline_succeeded"]
    assert region.body["time"] <= point.body["time"] + 1000 and region.body["timeEnd"] >= point.body["time"]
    kinds = pdm_world.audit_kinds(run.run_id)
    assert "notification_failed" not in kinds
    # Notices come after what they announce: the start after pipeline_created, the end after the outcome.
    assert kinds[-1] == "outcome"
    for event in pdm_world.audit.events(run_id=run.run_id):
        assert GRAFANA_TOKEN not in json.dumps(event.to_dict()) and "e2ew3bh00ks3cr3t" not in json.dumps(
            event.to_dict()
        )


def test_a_failing_receiver_is_audited_and_the_run_still_succeeds(pdm_world, receiver):
    receiver.status = 500
    sandbox = pdm_world.serve(world({BACKGROUND_FILE: BACKGROUND}))
    run = pdm_world.run()
    assert str(run.state).endswith("success")
    assert pdm_world.outcome(run.run_id)["outcome"] == "pipeline_succeeded"
    assert len(sandbox.created_pipelines(project=RELEASE_TOOLS)) == 1
    failed = pdm_world.audit.events(run_id=run.run_id, kind="notification_failed")
    assert sorted((e.payload["channel"], e.payload["phase"]) for e in failed) == [
        ("grafana", "end"),
        ("grafana", "start"),
        ("slack", "end"),
        ("slack", "start"),
    ]
    assert all(e.payload["reason"] == "HTTP 500 Internal Server Error" for e in failed)
    assert len(receiver.requests) == 4  # each notice was tried once; a refused notice is not retried
    kinds = pdm_world.audit_kinds(run.run_id)
    assert kinds.count("pipeline_created") == 1 and kinds.count("outcome") == 1
