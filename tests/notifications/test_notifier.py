"""The notifier adapter through Airflow's HttpHook against a real local HTTP receiver, failures audited in a
real PostgreSQL audit store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from include.audit import AuditStore, AuditTarget
from include.policy.model import NotificationSettings
from tests.notifications.receiver import Receiver

pytestmark = pytest.mark.integration

WEBHOOK_PATH = "/services/T0PDM/B0PDM/s3cr3tw3bh00kpath"
GRAFANA_TOKEN = "glsa_grafana-token-0123456789abcdef"
SNAPSHOT = {
    "environment": "gprd",
    "deployed": {"sha": "2" * 40, "ref": "17.6.202611240620-2222222222a.3333333333b"},
    "run_class": "background",
    "migrations": [
        {
            "path": "db/post_migrate/20261120000000_q.rb",
            "version": "20261120000000",
            "name": "Q",
            "class": "background",
        }
    ],
}
PIPELINE = {
    "id": 7,
    "status": "running",
    "web_url": "http://gitlab.example/p/-/pipelines/7",
    "created_at": (datetime.now(UTC) - timedelta(minutes=10)).isoformat(),
}


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def channels(receiver, monkeypatch, postgres_database):
    monkeypatch.setenv(
        "AIRFLOW_CONN_PDM_SLACK", json.dumps({"conn_type": "http", "host": receiver.url + WEBHOOK_PATH})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_PDM_GRAFANA",
        json.dumps({"conn_type": "http", "host": receiver.url, "password": GRAFANA_TOKEN}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", postgres_database)
    store = AuditStore(AuditTarget.from_uri(postgres_database))
    store.migrate()
    return NotificationSettings(slack_conn_id="pdm_slack", grafana_conn_id="pdm_grafana"), store


def context() -> dict:
    run = SimpleNamespace(
        dag_id="pdm_gprd",
        run_id="manual__2026-11-28T06:00:00+00:00",
        run_type="manual",
        run_after=datetime(2026, 11, 28, 6, tzinfo=UTC),
        triggering_user_name="rm",
    )
    return {"dag_run": run}


def test_start_and_end_reach_slack_and_grafana(channels, receiver, caplog):
    from pdm_orchestrator.notifications.notifier import notify_ended, notify_started

    settings, store = channels
    assert notify_started(context(), "gprd", settings, SNAPSHOT, PIPELINE) == []
    outcome = {"outcome": "pipeline_succeeded", "reason": "pipeline 7 succeeded", "pipeline": PIPELINE}
    assert notify_ended(context(), "gprd", settings, SNAPSHOT, outcome) == []

    slack = receiver.at("/services/")
    assert [r.path for r in slack] == [WEBHOOK_PATH, WEBHOOK_PATH]
    assert "PDM started on *gprd*" in slack[0].body["text"] and "— *background*" in slack[0].body["text"]
    assert "ended pipeline_succeeded" in slack[1].body["text"]
    grafana = receiver.at("/api/annotations")
    assert len(grafana) == 2
    assert all(r.headers["Authorization"] == f"Bearer {GRAFANA_TOKEN}" for r in grafana)
    assert "Authorization" not in slack[0].headers
    assert grafana[0].body["tags"] == ["pdm", "gprd", "background"] and "timeEnd" not in grafana[0].body
    region = grafana[1].body
    assert region["time"] == int(datetime.fromisoformat(PIPELINE["created_at"]).timestamp() * 1000)
    assert region["timeEnd"] > region["time"] and "pipeline_succeeded" in region["tags"]
    assert store.events(kind="notification_failed") == []
    for request in slack + grafana:
        assert GRAFANA_TOKEN not in json.dumps(request.body)
    assert GRAFANA_TOKEN not in caplog.text and "s3cr3tw3bh00kpath" not in caplog.text


def test_a_refusing_receiver_is_audited_without_secrets_and_never_raises(channels, receiver, caplog):
    from pdm_orchestrator.notifications.notifier import notify_started

    settings, store = channels
    receiver.status = 500
    failures = notify_started(context(), "gprd", settings, SNAPSHOT, PIPELINE)
    assert failures == ["slack: HTTP 500 Internal Server Error", "grafana: HTTP 500 Internal Server Error"]
    events = store.events(kind="notification_failed")
    assert [(e.payload["channel"], e.payload["phase"]) for e in events] == [
        ("slack", "start"),
        ("grafana", "start"),
    ]
    assert events[0].run_id == "manual__2026-11-28T06:00:00+00:00" and events[0].actor == "manual:rm"
    text = json.dumps([e.to_dict() for e in events]) + caplog.text
    assert GRAFANA_TOKEN not in text and "s3cr3tw3bh00kpath" not in text


def test_unreachable_channel_names_the_error_but_not_the_webhook(channels, monkeypatch, receiver):
    from pdm_orchestrator.notifications.notifier import notify_started

    settings, store = channels
    receiver.stop()
    failures = notify_started(context(), "gprd", settings, SNAPSHOT, PIPELINE)
    assert len(failures) == 2 and all("ConnectionError" in f for f in failures)
    assert all("s3cr3tw3bh00kpath" not in f and GRAFANA_TOKEN not in f for f in failures)
    assert len(store.events(kind="notification_failed")) == 2


def test_missing_connection_and_audit_outage_still_do_not_raise(channels, monkeypatch, caplog):
    from pdm_orchestrator.notifications.notifier import notify_started

    settings, _ = channels
    monkeypatch.setenv("AIRFLOW_CONN_PDM_AUDIT", "postgresql://postgres@127.0.0.1:9/nowhere")
    missing = NotificationSettings(slack_conn_id="no_such_conn")
    failures = notify_started(context(), "gprd", missing, SNAPSHOT, PIPELINE)
    assert failures == ["slack: connection 'no_such_conn' is not defined (AirflowNotFoundException)"]
    assert "could not record the failed slack notice" in caplog.text


def test_off_by_default_sends_nothing(channels, receiver):
    from pdm_orchestrator.notifications.notifier import notify_ended, notify_started

    off = NotificationSettings()
    assert notify_started(context(), "gprd", off, SNAPSHOT, PIPELINE) == []
    settings, _ = channels
    assert notify_ended(context(), "gprd", settings, SNAPSHOT, {"outcome": "noop", "reason": "-"}) == []
    assert receiver.requests == []
