"""The real-Prometheus harness: backfilled history survives start-up, the traps it refuses, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include.sandbox.prometheus_server import (
    DEFAULT_BINARY,
    PrometheusServer,
    PrometheusUnavailable,
    history_end,
    parse_duration,
    profile_history,
    reset_tsdb,
)
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
needs_prometheus = pytest.mark.skipif(
    not os.path.exists(DEFAULT_BINARY),
    reason=f"Debian's prometheus is not installed ({DEFAULT_BINARY} missing)",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1s", timedelta(seconds=1)),
        ("120d", timedelta(days=120)),
        ("4w", timedelta(weeks=4)),
        ("1h30m", timedelta(minutes=90)),
        ("1y", timedelta(days=365)),
        ("500ms", timedelta(milliseconds=500)),
    ],
)
def test_prometheus_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "15", "1.5h", "10 d", "d"])
def test_bad_durations_are_named(text):
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        parse_duration(text)


def test_history_ends_on_the_hour_three_hours_ago():
    assert history_end(datetime(2026, 11, 25, 14, 42, 7, tzinfo=UTC)) == datetime(
        2026, 11, 25, 11, tzinfo=UTC
    )


def test_history_series_carry_the_live_scrape_labels():
    text = profile_history(1, datetime(2026, 11, 25, 11, tzinfo=UTC))
    first = text.splitlines()[1]
    assert first.startswith(
        'gitlab_component_ops:rate_5m{env="gprd",environment="gprd",type="web",stage="main",'
    )
    assert 'job="traffic",instance="traffic-exporter"}' in first


def test_config_labels_the_first_target_like_the_history(tmp_path):
    server = PrometheusServer(
        tmp_path,
        ["127.0.0.1:1", "127.0.0.1:2"],
        extra_jobs=[
            {
                "name": "pdm",
                "target": "127.0.0.1:3",
                "metrics_path": "/pdm/metrics",
                "bearer_token_file": "/t",
            }
        ],
    )
    traffic, pdm = server.config()["scrape_configs"]
    assert traffic["static_configs"] == [
        {"targets": ["127.0.0.1:1"], "labels": {"instance": "traffic-exporter"}},
        {"targets": ["127.0.0.1:2"]},
    ]
    assert pdm["authorization"] == {"credentials_file": "/t"} and pdm["metrics_path"] == "/pdm/metrics"


def test_a_missing_binary_is_named_with_the_package(tmp_path):
    server = PrometheusServer(tmp_path, ["127.0.0.1:1"], binary=str(tmp_path / "no-prometheus"))
    with pytest.raises(
        PrometheusUnavailable, match=r"prometheus not found at .*no-prometheus: install Debian's prometheus"
    ):
        server.start()


def test_bad_settings_fail_at_construction(tmp_path):
    with pytest.raises(ValueError, match="'15 days'"):
        PrometheusServer(tmp_path, ["127.0.0.1:1"], retention="15 days")


def test_reset_refuses_a_directory_that_is_not_a_tsdb(tmp_path):
    (tmp_path / "tsdb").mkdir()
    (tmp_path / "tsdb" / "notes.txt").write_text("mine")
    with pytest.raises(PrometheusUnavailable, match="not a Prometheus TSDB"):
        reset_tsdb(tmp_path / "tsdb")
    (tmp_path / "tsdb" / "notes.txt").unlink()
    (tmp_path / "tsdb" / "wal").mkdir()
    reset_tsdb(tmp_path / "tsdb")
    assert not (tmp_path / "tsdb").exists()


@needs_prometheus
@pytest.mark.integration
def test_history_older_than_the_retention_is_refused(tmp_path):
    history = profile_history(4, history_end(datetime.now(UTC)))
    server = PrometheusServer(tmp_path, ["127.0.0.1:1"], history_openmetrics=history, retention="15d")
    with pytest.raises(
        PrometheusUnavailable, match="beyond the retention of 15d: Prometheus would delete it"
    ):
        server.start()
    assert server.process is None
    assert not server.tsdb_dir.exists()  # the refused blocks are not left for the next start


@needs_prometheus
@pytest.mark.integration
def test_history_reaching_into_the_future_is_refused(tmp_path):
    history = profile_history(1, datetime.now(UTC) + timedelta(hours=1))
    server = PrometheusServer(tmp_path, ["127.0.0.1:1"], history_openmetrics=history)
    with pytest.raises(
        PrometheusUnavailable, match="after now: Prometheus would reject live samples as out of bounds"
    ):
        server.start()


@pytest.mark.integration
def test_the_backfilled_weeks_are_all_queryable(prometheus_with_traffic):
    world = prometheus_with_traffic
    span = datetime.now(UTC) - world.history_start
    result = world.prometheus.query(
        f'count_over_time(gitlab_component_ops:rate_5m{{env="gprd"}}[{int(span.total_seconds()) + 60}s])'
    )
    assert len(result) == 1, "history and live scrapes are one series"
    assert int(result[0]["value"][1]) >= 4 * 7 * 288  # every 5-minute sample of 4 weeks, plus live scrapes
    assert result[0]["metric"]["instance"] == "traffic-exporter"


def wait_ready(url: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                return
        except OSError:
            assert process.poll() is None, f"prometheus_server exited: {process.stdout.read()}"
            assert time.monotonic() < deadline, "prometheus did not come up"
            time.sleep(0.2)


@needs_prometheus
@pytest.mark.integration
def test_cli_runs_prometheus_for_make_run(tmp_path):
    exporter_port, prometheus_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    (tmp_path / "prom" / "tsdb" / "wal").mkdir(parents=True)  # a previous run's TSDB: rebuilt, not reused
    exporter_command = [
        sys.executable,
        "-m",
        "include.sandbox.traffic_exporter",
        "--port",
        str(exporter_port),
    ]
    command = [sys.executable, "-m", "include.sandbox.prometheus_server", "--port", str(prometheus_port)]
    command += ["--data-dir", str(tmp_path / "prom"), "--target", f"127.0.0.1:{exporter_port}"]
    command += ["--weeks-of-history", "1"]
    exporter = subprocess.Popen(
        exporter_command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    prometheus = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_ready(f"http://127.0.0.1:{prometheus_port}", prometheus, 30)
        server = PrometheusServer(tmp_path / "unused", [], port=prometheus_port)
        found = server.query('count_over_time(gitlab_component_ops:rate_5m{env="gstg"}[8d])')
        assert int(found[0]["value"][1]) >= 7 * 288  # a week of 5-minute history, then live scrapes
        prometheus.send_signal(signal.SIGTERM)
        assert prometheus.wait(timeout=20) == 0
        assert "prometheus at http://127.0.0.1:" in prometheus.stdout.read()
    finally:
        for process in (prometheus, exporter):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


@needs_prometheus
@pytest.mark.integration
def test_cli_stops_prometheus_on_a_signal_during_start_up(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    command = [sys.executable, "-m", "include.sandbox.prometheus_server", "--port", str(port)]
    command += ["--data-dir", str(tmp_path), "--target", "127.0.0.1:1", "--weeks-of-history", "0"]
    cli = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}", cli, 30)
        cli.send_signal(signal.SIGTERM)  # possibly before start() has returned: must still stop Prometheus
        assert cli.wait(timeout=20) == 0
    finally:
        if cli.poll() is None:
            cli.kill()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1)
