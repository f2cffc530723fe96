"""`Rails.cache` calls: one key (`delete`, `read`, `fetch`, `exist?`, `write`) is `noop`, nothing in the
database; any other cache call works over many keys in Redis and is `unknown`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.state import ReaderState

C = MigrationClass
RAILS_CACHE = "Rails.cache"
# Calls on one cache key.
ONE_KEY = ("delete", "read", "fetch", "exist?", "write")


def rails_cache(
    reader: ReaderState,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """Rails.cache.<method>: noop for one key, unknown for work over many keys."""
    if receiver_text == RAILS_CACHE:
        if method in ONE_KEY:
            reader.add(f"Rails.cache.{method}", None, line, C.NOOP, "one cache key: nothing in the database")
        else:
            reader.add(
                f"Rails.cache.{method}", None, line, C.UNKNOWN, "cache work over many keys (Redis only)"
            )
        reader.visit_parts(None, args, block)
        return True
    return False
