"""Blocks that run only on some installations (`Gitlab.com do ... end`): walked when the catalogue's
predicate holds on the target, skipped (and said so) when it does not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.state import ReaderState

C = MigrationClass


def target_block(
    reader: ReaderState,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """`Receiver.method do ... end` guarded by a known `Receiver.method?`."""
    if block is not None and f"{receiver_text}.{method}?" in reader.predicates and not args:
        # `Gitlab.com do ... end`: the block runs only where `Gitlab.com?` holds.
        if reader.predicates[f"{receiver_text}.{method}?"] is False:
            reader.reasons.append(
                f"skipped on {reader.config.target}: code guarded by `{receiver_text}.{method}` "
                f"(runs only where {receiver_text}.{method}? holds, line {line})"
            )
        else:
            reader.bind_block(block, [])
            reader.walk_block(block)
        return True
    return False
