"""`reversible do |dir| dir.up { ... } end` and `up_only { ... }`: only what runs on the way up counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.classification.scope import Local

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.state import ReaderState

C = MigrationClass


def reversible_block(
    reader: ReaderState,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """`reversible do |dir|` binds the direction handle; `up_only` runs its block."""
    if method in ("reversible", "up_only") and receiver is None and block is not None:
        if method == "up_only":
            reader.walk_block(block)
        else:
            reader.bind_block(block, [Local(kind="reversible")])
            reader.walk_block(block)
        return True
    return False


def reversible_direction(
    reader: ReaderState,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """`dir.up { ... }` runs (walked); `dir.down { ... }` does not."""
    if receiver is not None and receiver.type == "identifier" and method in ("up", "down"):
        local = reader.locals.get(receiver_text)
        if local is not None and local.kind == "reversible":
            if method == "up" and block is not None:
                reader.walk_block(block)
            return True
    return False
