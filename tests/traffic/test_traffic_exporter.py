"""The traffic exporter over loopback HTTP: the series it serves, values set by tests, the profile mode."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from include.sandbox.traffic_exporter import TrafficExporter, main
from include.sandbox.traffic_profile import WeeklyProfile

NOON = datetime(2026, 11, 25, 12, tzinfo=UTC)


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def metrics(exporter: TrafficExporter) -> dict[str, float]:
    status, content_type, body = get(f"{exporter.url}/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line[0] != "#"
    }


@pytest.fixture
def exporter():
    with TrafficExporter() as running:
        yield running


def test_serves_request_rates_and_database_apdex_per_environment(exporter):
    assert exporter.address == f"127.0.0.1:{exporter.port}" and exporter.port > 0
    assert metrics(exporter) == {
        'gitlab_component_ops:rate_5m{env="gprd",environment="gprd",type="web",stage="main"}': 100.0,
        'gitlab_component_ops:rate_5m{env="gstg",environment="gstg",type="web",stage="main"}': 20.0,
        'gitlab_service_apdex:ratio_5m{env="gprd",environment="gprd",type="patroni"}': 0.9995,
        'gitlab_service_apdex:ratio_5m{env="gstg",environment="gstg",type="patroni"}': 0.9995,
    }
    _, _, body = get(f"{exporter.url}/metrics")
    assert "# TYPE gitlab_component_ops:rate_5m gauge" in body


def test_values_set_in_python_and_over_http(exporter):
    exporter.set_value("gprd", "ops", 812.5)
    assert post(f"{exporter.url}/set", b'{"env": "gstg", "metric": "apdex", "value": 0.98}') == (
        200,
        {"ok": True},
    )
    assert post(f"{exporter.url}/set", b'{"env": "gstg", "value": 7}') == (200, {"ok": True})  # metric: ops
    seen = metrics(exporter)
    assert (
        seen['gitlab_component_ops:rate_5m{env="gprd",environment="gprd",type="web",stage="main"}'] == 812.5
    )
    assert seen['gitlab_service_apdex:ratio_5m{env="gstg",environment="gstg",type="patroni"}'] == 0.98
    assert seen['gitlab_component_ops:rate_5m{env="gstg",environment="gstg",type="web",stage="main"}'] == 7.0


def test_a_new_environment_appears_with_healthy_defaults(exporter):
    exporter.set_value("pre", "ops", 3.0)
    seen = metrics(exporter)
    assert seen['gitlab_component_ops:rate_5m{env="pre",environment="pre",type="web",stage="main"}'] == 3.0
    assert seen['gitlab_service_apdex:ratio_5m{env="pre",environment="pre",type="patroni"}'] == 0.9995


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "POST /set: Expecting value"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"env": "gprd"}', "expected a JSON object"),
        (b'{"env": "gprd", "metric": "latency", "value": 1}', "metric must be one of ops, apdex"),
        (b'{"env": "gprd", "value": "lots"}', "could not convert string to float"),
        (b'{"env": "G PRD", "value": 1}', "env must be a short lowercase environment name"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(exporter, body, message):
    status, answer = post(f"{exporter.url}/set", body)
    assert status == 400 and message in answer["error"]
    assert (
        metrics(exporter)[
            'gitlab_component_ops:rate_5m{env="gprd",environment="gprd",type="web",stage="main"}'
        ]
        == 100.0
    )


def test_unknown_paths_are_404(exporter):
    assert get(f"{exporter.url}/nothing")[0] == 404
    request = urllib.request.Request(f"{exporter.url}/metrics", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 404


def test_profile_mode_follows_the_weekly_profile_until_pinned():
    profile = WeeklyProfile(seed=3)
    exporter = TrafficExporter(mode="profile", profile=profile)
    assert exporter.current("gprd", "ops", NOON) == profile.rate_at(NOON)
    assert exporter.current("gstg", "ops", NOON) == profile.scaled(0.1).rate_at(NOON)
    exporter.set_value("gprd", "ops", 5.0)
    assert exporter.current("gprd", "ops", NOON) == 5.0
    assert exporter.current("gstg", "ops", NOON) == profile.scaled(0.1).rate_at(NOON)  # only gprd pinned
    exporter.follow_profile("gprd")
    assert exporter.current("gprd", "ops", NOON) == profile.rate_at(NOON)
    assert f"{profile.rate_at(NOON)!r}" in exporter.render(NOON)


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode must be one of fixed, profile"):
        TrafficExporter(mode="random")


def test_stop_frees_the_port():
    exporter = TrafficExporter().start()
    port = exporter.port
    exporter.stop()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_cli_refuses_an_unknown_mode(capsys):
    with pytest.raises(SystemExit):
        main(["--mode", "random"])
    assert "invalid choice" in capsys.readouterr().err
