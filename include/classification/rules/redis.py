"""Redis: `Gitlab::Redis::X.with do |redis|` yields a Redis handle; on it reads are `noop`, deleting one
fixed key is `noop`, anything else is Redis-only work that cannot be bounded (`unknown`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.classification.scope import Local

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.state import ReaderState

C = MigrationClass


def redis_with(
    reader: ReaderState,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """`Gitlab::Redis::X.with do |redis|`: the block gets a Redis handle."""
    if method == "with" and receiver_text.startswith("Gitlab::Redis::") and block is not None:
        reader.bind_block(block, [Local(kind="redis")])
        reader.walk_block(block)
        return True
    return False


def redis_handle(
    reader: ReaderState,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """A call on the Redis handle a `with` block got: noop reads and one-key deletes, else unknown."""
    if receiver is None or receiver.type != "identifier":
        return False
    local = reader.locals.get(receiver_text)
    if local is not None and local.kind == "redis":
        plain = all(a.type in ("string", "simple_symbol", "constant") for a in args)
        if method in reader.catalogue.redis_reads:
            reader.add(f"redis.{method}", None, line, C.NOOP, "reads Redis: nothing changes")
            reader.visit_parts(None, args, None)
            if block is not None:
                reader.bind_block(block, [Local(), Local()])
                reader.walk_block(block)
        elif method in ("del", "unlink") and plain and len(args) == 1:
            reader.add(
                f"redis.{method}",
                None,
                line,
                C.NOOP,
                "deletes one fixed key: nothing in the database",
            )
        else:
            reader.add(
                f"redis.{method}",
                None,
                line,
                C.UNKNOWN,
                "Redis-only work whose effect cannot be bounded",
            )
        return True
    return False
