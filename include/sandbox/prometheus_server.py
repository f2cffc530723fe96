"""Runs Debian's real Prometheus for tests and the local run: history backfilled with promtool, live
values scraped from the traffic exporter."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from include.sandbox.traffic_exporter import ENVIRONMENTS, apdex_selector, ops_selector
from include.sandbox.traffic_profile import WeeklyProfile, openmetrics_history


class PrometheusUnavailable(RuntimeError):
    """The Prometheus binary is missing or the server did not become ready."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def profile_history(
    weeks: int, end: datetime, step: timedelta = timedelta(minutes=5), profile: WeeklyProfile | None = None
) -> str:
    """`weeks` of traffic history ending at `end`, for both environments (gstg at a tenth of gprd)."""
    profile = profile or WeeklyProfile()
    series: dict[str, Callable[[datetime], float]] = {}
    for env in ENVIRONMENTS:
        factor = 1.0 if env == "gprd" else 0.1
        series[ops_selector(env)] = lambda ts, f=factor: round(profile.rate_at(ts) * f, 3)
        series[apdex_selector(env)] = lambda ts: 0.9995
    return openmetrics_history(series, end - timedelta(weeks=weeks), end, step)


class PrometheusServer:
    """A real Prometheus on 127.0.0.1 with a TSDB in `data_dir`.

    History (OpenMetrics text) is imported with `promtool tsdb create-blocks-from openmetrics` before the
    server starts; it should end a few hours before now, so its blocks do not overlap the head block.
    """

    def __init__(
        self,
        data_dir: str | Path,
        scrape_targets: list[str],
        port: int = 0,
        scrape_interval: str = "1s",
        history_openmetrics: str | None = None,
        retention: str = "120d",
        extra_jobs: list[dict] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.scrape_targets = scrape_targets
        self.port = port or free_port()
        self.scrape_interval = scrape_interval
        self.history = history_openmetrics
        self.retention = retention
        self.extra_jobs = extra_jobs or []  # {"name", "target", "metrics_path", "bearer_token_file"}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> PrometheusServer:
        binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
        if not binary or not promtool:
            raise PrometheusUnavailable("prometheus/promtool not installed (Debian package: prometheus)")
        tsdb = self.data_dir / "tsdb"
        tsdb.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {self.scrape_interval}\n"
            f"  evaluation_interval: {self.scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: traffic\n"
            f"    scrape_interval: {self.scrape_interval}\n"
            f"    static_configs:\n      - targets: {json.dumps(self.scrape_targets)}\n"
            + "".join(
                f"  - job_name: {job['name']}\n"
                f"    metrics_path: {job.get('metrics_path', '/metrics')}\n"
                + (
                    f"    authorization:\n      credentials_file: {job['bearer_token_file']}\n"
                    if job.get("bearer_token_file")
                    else ""
                )
                + f"    static_configs:\n      - targets: [{json.dumps(job['target'])}]\n"
                for job in self.extra_jobs
            )
        )
        if self.history and not any(tsdb.glob("01*")):
            source = self.data_dir / "history.om"
            source.write_text(self.history)
            result = subprocess.run(
                [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise PrometheusUnavailable(f"promtool backfill failed: {result.stderr[-2000:]}")
            source.unlink()
        log = (self.data_dir / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tsdb}",
                f"--storage.tsdb.retention.time={self.retention}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrometheusUnavailable(
                    f"prometheus exited: {(self.data_dir / 'prometheus.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise PrometheusUnavailable(f"prometheus not ready at {self.url} after {timeout}s")

    def query(self, promql: str) -> list[dict]:
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())["data"]["result"]

    def wait_for_value(self, promql: str, predicate: Callable[[float], bool], timeout: float = 20) -> float:
        """Poll until the query's first value satisfies `predicate` (the live scrape caught up)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                result = self.query(promql)
                if result:
                    last = float(result[0]["value"][1])
                    if predicate(last):
                        return last
            except OSError:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{promql} did not reach the expected value in {timeout}s (last: {last})")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Real Prometheus with backfilled traffic history, for make run."
    )
    parser.add_argument("--port", type=int, default=19090)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--target", action="append", required=True, help="host:port to scrape (repeatable)")
    parser.add_argument("--weeks-of-history", type=int, default=4)
    parser.add_argument("--scrape-interval", default="5s")
    parser.add_argument("--pdm-metrics", help="host:port of Airflow, to scrape /pdm/metrics")
    parser.add_argument("--pdm-metrics-token-file", help="file holding the bearer token of /pdm/metrics")
    args = parser.parse_args(argv)
    jobs = []
    if args.pdm_metrics:
        jobs.append(
            {
                "name": "pdm",
                "target": args.pdm_metrics,
                "metrics_path": "/pdm/metrics",
                "bearer_token_file": args.pdm_metrics_token_file,
            }
        )
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    history = profile_history(args.weeks_of_history, end) if args.weeks_of_history else None
    try:
        server = PrometheusServer(
            args.data_dir, args.target, args.port, args.scrape_interval, history, extra_jobs=jobs
        ).start(timeout=120)
    except PrometheusUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"prometheus at {server.url} scraping {', '.join(args.target)}", flush=True)
    stopped = {"flag": False}

    def stop(*_: object) -> None:
        stopped["flag"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopped["flag"] and server.process and server.process.poll() is None:
        time.sleep(0.5)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
