"""How the sandbox servers run as processes: on a free port, until SIGTERM or SIGINT, then a clean stop."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may still take it before we bind).

    The one home of this fact: the sandbox servers, the tests (tests/support/processes.py) and the
    benches pick their ports here.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_until_signalled(stop: Callable[[], None]) -> int:
    """Block until SIGTERM/SIGINT (make run's Ctrl-C), then call `stop`; returns the exit code 0."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    stop()
    return 0
