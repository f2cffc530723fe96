"""The Prometheus hook's credentials and failure paths, against a loopback server with canned answers.

Every failure must come back as an observation carrying an error that names the endpoint, so the gate
closes with that reason; none may raise into the caller or leak the token.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from include.gates.traffic import TrafficSettings, evaluate_traffic

pytestmark = pytest.mark.integration

TOKEN = "s3cret-prometheus-token"
AT = datetime.fromtimestamp(1795600000, UTC)
SETTINGS = TrafficSettings(query='sum(rate{env="{environment}"})', sustain=timedelta(seconds=30))


def use_connection(monkeypatch, canned, **fields) -> None:
    connection = {"conn_type": "http", "host": "127.0.0.1", "port": canned.port, **fields}
    monkeypatch.setenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", json.dumps(connection))


def hook(**kwargs):
    from pdm_orchestrator.hooks.prometheus import PrometheusHook

    return PrometheusHook(**kwargs)


def test_bearer_token_from_extra_is_sent_as_authorization_only(monkeypatch, canned_prometheus, caplog):
    use_connection(monkeypatch, canned_prometheus, extra={"bearer_token": TOKEN, "X-Scope-OrgID": "gitlab"})
    caplog.set_level(logging.DEBUG)
    assert hook().query("up", AT) == [({"env": "gprd"}, 42.0, AT)]
    path, headers = canned_prometheus.requests[-1]
    assert path.startswith("/api/v1/query?query=up&time=1795600000")
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["X-Scope-OrgID"] == "gitlab"  # other extras stay headers, as in any HttpHook
    assert not any(TOKEN in value for name, value in headers.items() if name != "Authorization")
    assert TOKEN not in caplog.text


def test_bearer_token_from_the_password(monkeypatch, canned_prometheus):
    use_connection(monkeypatch, canned_prometheus, password=TOKEN)
    hook().query("up", AT)
    assert canned_prometheus.requests[-1][1]["Authorization"] == f"Bearer {TOKEN}"


def test_login_and_password_stay_basic_auth(monkeypatch, canned_prometheus):
    use_connection(monkeypatch, canned_prometheus, login="reader", password=TOKEN)
    hook().query("up", AT)
    expected = base64.b64encode(f"reader:{TOKEN}".encode()).decode()
    assert canned_prometheus.requests[-1][1]["Authorization"] == f"Basic {expected}"


def test_no_credentials_no_authorization_header(monkeypatch, canned_prometheus):
    use_connection(monkeypatch, canned_prometheus)
    hook().query("up", AT)
    assert "Authorization" not in canned_prometheus.requests[-1][1]


def test_scalar_answers_are_one_unlabelled_row(monkeypatch, canned_prometheus):
    use_connection(monkeypatch, canned_prometheus)
    canned_prometheus.answer(
        200, {"status": "success", "data": {"resultType": "scalar", "result": [1795600000, "2"]}}
    )
    assert hook().query("1 + 1", AT) == [({}, 2.0, AT)]


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (503, "Service Unavailable", "api/v1/query_range: HTTP 503: Service Unavailable"),
        (
            400,
            {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'},
            'api/v1/query_range: HTTP 400: parse error: unexpected "}"',
        ),
        (
            200,
            "<html>proxy login</html>",
            "api/v1/query_range: the answer is not a JSON object: <html>proxy login</html>",
        ),
        (
            200,
            {"status": "error", "error": "query timed out"},
            "api/v1/query_range: status 'error': query timed out",
        ),
        (200, {"status": "success"}, "api/v1/query_range: the answer has no data object"),
        (
            200,
            {"status": "success", "data": {"resultType": "vector", "result": []}},
            "api/v1/query_range: malformed result: expected a matrix, got vector",
        ),
        (
            200,
            {
                "status": "success",
                "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [["x"]]}]},
            },
            "api/v1/query_range: malformed result",
        ),
    ],
)
def test_bad_answers_close_the_gate_naming_the_endpoint(
    monkeypatch, canned_prometheus, status, body, problem
):
    use_connection(monkeypatch, canned_prometheus, password=TOKEN)
    canned_prometheus.answer(status, body)
    observation = hook().traffic_observation(SETTINGS, "gprd", AT)
    assert observation.error.startswith(f"{canned_prometheus.url}/{problem}")
    result = evaluate_traffic(AT, observation, SETTINGS)
    assert not result.open and result.reason.startswith(
        f"traffic unknown: {canned_prometheus.url}/api/v1/query_range"
    )
    assert TOKEN not in result.reason


def test_a_slow_prometheus_times_out_closed(monkeypatch, canned_prometheus):
    use_connection(monkeypatch, canned_prometheus)
    canned_prometheus.answer(200, VECTOR_MATRIX, delay=2.0)
    observation = hook(timeout=0.3).traffic_observation(SETTINGS, "gprd", AT)
    assert observation.error.startswith(f"{canned_prometheus.url}/api/v1/query_range: ReadTimeout")


def test_the_connection_timeout_extra_is_used(monkeypatch, canned_prometheus):
    use_connection(monkeypatch, canned_prometheus, extra={"timeout": 0.3})
    canned_prometheus.answer(200, VECTOR_MATRIX, delay=2.0)
    assert "ReadTimeout" in hook().traffic_observation(SETTINGS, "gprd", AT).error


def test_a_missing_connection_is_named(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_PROMETHEUS_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_PROMETHEUS_NOWHERE", raising=False)
    observation = hook(prometheus_conn_id="prometheus_nowhere").traffic_observation(SETTINGS, "gprd", AT)
    assert observation.error.startswith("Prometheus connection 'prometheus_nowhere'")
    assert "isn't defined" in observation.error


def test_a_query_returning_several_series_is_refused(monkeypatch, canned_prometheus):
    use_connection(monkeypatch, canned_prometheus)
    series = [{"metric": {"env": env}, "values": [[1795600000, "1"]]} for env in ("gprd", "gstg")]
    canned_prometheus.answer(200, {"status": "success", "data": {"resultType": "matrix", "result": series}})
    error = hook().traffic_observation(SETTINGS, "gprd", AT).error
    assert error == 'query sum(rate{env="gprd"}) returns 2 series; aggregate it to one (e.g. sum(...))'


def test_long_history_stays_under_the_point_limit(monkeypatch, canned_prometheus):
    use_connection(monkeypatch, canned_prometheus)
    canned_prometheus.answer(200, VECTOR_MATRIX)
    hook().history("q", AT - timedelta(weeks=12), AT)
    query = dict(part.split("=") for part in canned_prometheus.requests[-1][0].split("?")[1].split("&"))
    assert float(query["step"]) == 780  # 12 weeks / 10,000 points, rounded up to whole minutes


VECTOR_MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": []}}
