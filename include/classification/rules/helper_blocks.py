"""What a migration helper yields to its block (`create_table :t do |t|`, `each_batch do |relation|` of a
helper): calls on it are part of the helper the catalogue already judged, so only their arguments are walked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.state import ReaderState

C = MigrationClass


def helper_handle(
    reader: ReaderState,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """A call on what a catalogued helper yielded: part of that helper."""
    if receiver is None or receiver.type != "identifier":
        return False
    local = reader.locals.get(receiver_text)
    if local is not None and local.kind == "helper":
        reader.visit_parts(None, args, block)
        return True
    return False
