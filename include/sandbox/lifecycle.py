"""How the sandbox servers run as processes: until SIGTERM or SIGINT, then a clean stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def serve_until_signalled(stop: Callable[[], None]) -> int:
    """Block until SIGTERM/SIGINT (make run's Ctrl-C), then call `stop`; returns the exit code 0."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    stop()
    return 0
