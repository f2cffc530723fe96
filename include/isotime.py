"""ISO-8601 text to datetimes: the one place that knows GitLab's, Prometheus's and our files' spellings.

GitLab and our scenario and policy files write instants with `Z` or an offset; Python 3.11 reads `Z`
itself, the replacement keeps the older spelling `...Z` readable everywhere the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_iso_datetime(text: str) -> datetime:
    """The date-time `text` spells (`Z` or an offset; naive stays naive); raises ValueError if it is none."""
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def parse_iso_instant(text: str) -> datetime:
    """An aware instant: like parse_iso_datetime, a naive value taken as UTC; raises ValueError."""
    moment = parse_iso_datetime(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
