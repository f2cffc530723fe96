"""A Prometheus exporter that stands in for GitLab.com's request rates and Patroni health.

Tests pin values (`set_value`, or `POST /set` with `{"env": "gprd", "metric": "ops", "value": 123.0}`);
the local run lets them follow the weekly profile (`--mode profile`), continuing the backfilled history.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from include.sandbox.lifecycle import serve_until_signalled
from include.sandbox.traffic_profile import WeeklyProfile, series_selector

OPS = "gitlab_component_ops:rate_5m"
APDEX = "gitlab_service_apdex:ratio_5m"
ERRORS = "gitlab_service_errors:ratio_5m"  # the web fleet's error ratio (rollback-safety health)
METRICS = {"ops": OPS, "apdex": APDEX, "errors": ERRORS}
ENVIRONMENTS = ("gprd", "gstg")
MODES = ("fixed", "profile")
# Staging sees a fraction of production's traffic; any other environment is sized like staging.
ENVIRONMENT_SCALE = {"gprd": 1.0, "gstg": 0.1}
DEFAULT_VALUES = {"ops": {"gprd": 100.0, "gstg": 20.0}, "apdex": {"gprd": 0.9995, "gstg": 0.9995}}
# Error ratios are served only for environments whose value was set (`set_value(env, "errors", …)`), so
# "the error-ratio query returns no data" is the state a test starts from.
OPTIONAL_METRICS = ("errors",)
# The scrape job and instance Prometheus attaches to the live series; backfilled history carries the same
# labels, so history and live scrapes are one series (no double counting, no second series).
SCRAPE_JOB = "traffic"
SCRAPE_INSTANCE = "traffic-exporter"
_ENVIRONMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")


def ops_selector(env: str, target_labels: bool = False) -> str:
    """The request-rate series of an environment (web fleet, main stage)."""
    labels = {"env": env, "environment": env, "type": "web", "stage": "main"}
    return series_selector(OPS, {**labels, **_target_labels(target_labels)})


def apdex_selector(env: str, target_labels: bool = False) -> str:
    """The Patroni (main database) apdex series of an environment."""
    labels = {"env": env, "environment": env, "type": "patroni"}
    return series_selector(APDEX, {**labels, **_target_labels(target_labels)})


def errors_selector(env: str, target_labels: bool = False) -> str:
    """The web fleet's error ratio series of an environment."""
    labels = {"env": env, "environment": env, "type": "web"}
    return series_selector(ERRORS, {**labels, **_target_labels(target_labels)})


def _target_labels(wanted: bool) -> dict[str, str]:
    return {"job": SCRAPE_JOB, "instance": SCRAPE_INSTANCE} if wanted else {}


class TrafficExporter:
    """Serves `/metrics` (Prometheus text format) with request rates and Patroni apdex per environment.

    :param host: address to bind (127.0.0.1 for tests and the local run).
    :param port: port to bind; 0 picks a free one (read it back from `.port`, `.address` or `.url`).
    :param mode: "fixed" (values as set) or "profile" (request rates follow `profile`; a value set with
        `set_value` pins that environment's rate until `follow_profile` is called).
    :param profile: the weekly profile of production; other environments get a scaled copy.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        mode: str = "fixed",
        profile: WeeklyProfile | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"TrafficExporter mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.host, self.port, self.mode = host, port, mode
        self.profile = profile or WeeklyProfile()
        self.values: dict[tuple[str, str], float] = {
            (env, metric): value for metric, by_env in DEFAULT_VALUES.items() for env, value in by_env.items()
        }
        self.pinned: set[str] = set()  # environments whose rate was set explicitly while in profile mode
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        """`host:port`, the form a Prometheus scrape target takes."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def environments(self) -> list[str]:
        with self.lock:
            return sorted({env for env, _ in self.values}, key=lambda e: (e not in ENVIRONMENTS, e))

    def set_value(self, env: str, metric: str, value: float) -> None:
        """Set an environment's request rate (`ops`, req/s), database apdex (`apdex`, 0..1) or error ratio
        (`errors`, 0..1).

        Raises ValueError naming the bad field; an unknown environment name is added.
        """
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
        if not isinstance(env, str) or not _ENVIRONMENT_NAME.match(env):
            raise ValueError(f"env must be a short lowercase environment name like gprd, got {env!r}")
        value = float(value)
        with self.lock:
            self.values[(env, metric)] = value
            if metric == "ops":
                self.pinned.add(env)
            for other in DEFAULT_VALUES:
                self.values.setdefault((env, other), DEFAULT_VALUES[other]["gstg"])

    def follow_profile(self, env: str | None = None) -> None:
        """Let one environment's (or every environment's) rate follow the profile again."""
        with self.lock:
            if env is None:
                self.pinned.clear()
            else:
                self.pinned.discard(env)

    def current(self, env: str, metric: str, now: datetime) -> float:
        """The value `/metrics` shows for an environment's metric at `now`."""
        with self.lock:
            return self._current(env, metric, now)

    def _current(self, env: str, metric: str, now: datetime) -> float:
        if metric == "ops" and self.mode == "profile" and env not in self.pinned:
            return self.profile.scaled(ENVIRONMENT_SCALE.get(env, 0.1)).rate_at(now)
        return self.values[(env, metric)]

    def render(self, now: datetime | None = None) -> str:
        """The `/metrics` body at `now` (default: the current time)."""
        now = now or datetime.now(UTC)
        environments = self.environments
        lines = [f"# HELP {OPS} Requests per second over 5 minutes.", f"# TYPE {OPS} gauge"]
        with self.lock:
            lines += [f"{ops_selector(env)} {self._current(env, 'ops', now)!r}" for env in environments]
            lines += [f"# HELP {APDEX} Database apdex ratio over 5 minutes.", f"# TYPE {APDEX} gauge"]
            lines += [f"{apdex_selector(env)} {self._current(env, 'apdex', now)!r}" for env in environments]
            with_errors = [env for env in environments if (env, "errors") in self.values]
            if with_errors:
                lines += [f"# HELP {ERRORS} Error ratio over 5 minutes.", f"# TYPE {ERRORS} gauge"]
                lines += [
                    f"{errors_selector(env)} {self._current(env, 'errors', now)!r}" for env in with_errors
                ]
        return "\n".join(lines) + "\n"

    def start(self) -> TrafficExporter:
        """Serve in a daemon thread; returns self once the port is bound."""
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        # A short poll interval lets stop() return quickly (tests start and stop many exporters).
        serve = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="traffic-exporter",
            daemon=True,
        )
        serve.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TrafficExporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(exporter: TrafficExporter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # scrapes every second would flood the log
            return

        def reply(self, status: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.reply(404, "only /metrics (GET) and /set (POST) exist here\n")
                return
            self.reply(200, exporter.render(), "text/plain; version=0.0.4; charset=utf-8")

        def do_POST(self) -> None:
            if self.path.split("?")[0] != "/set":
                self.reply(404, "only /metrics (GET) and /set (POST) exist here\n")
                return
            try:
                data = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not isinstance(data, dict) or "env" not in data or "value" not in data:
                    raise ValueError(
                        'expected a JSON object like {"env": "gprd", "metric": "ops", "value": 1.0}'
                    )
                exporter.set_value(data["env"], data.get("metric", "ops"), data["value"])
            except (ValueError, TypeError) as exc:
                self.reply(400, json.dumps({"error": f"POST /set: {exc}"}), "application/json")
                return
            self.reply(200, json.dumps({"ok": True}), "application/json")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Traffic exporter standing in for GitLab.com's request rates."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=19091)
    parser.add_argument("--mode", choices=MODES, default="profile")
    args = parser.parse_args(argv)
    exporter = TrafficExporter(args.host, args.port, args.mode).start()
    print(f"traffic exporter ({args.mode}) at {exporter.url}/metrics", flush=True)
    return serve_until_signalled(exporter.stop)


if __name__ == "__main__":
    sys.exit(main())
