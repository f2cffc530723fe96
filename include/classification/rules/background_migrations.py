"""Background migrations run inline: `Gitlab::BackgroundMigration.steal` (runs the queued jobs: `data`;
with a block that only deletes them: `background`) and `Gitlab::BackgroundMigration::X.new.perform(...)`
(the job's work, now: `data`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.classification.tree import captures

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.engine import MigrationReader

C = MigrationClass


def steal(
    reader: MigrationReader,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """Gitlab::BackgroundMigration.steal: data, or background when its block only deletes the jobs."""
    if method == "steal" and receiver_text.endswith("BackgroundMigration"):
        if block is not None and only_deletes(reader, block):
            reader.add(
                "Gitlab::BackgroundMigration.steal",
                None,
                line,
                C.BACKGROUND,
                "steal with a block that only deletes the queued jobs",
            )
        else:
            reader.add(
                "Gitlab::BackgroundMigration.steal",
                None,
                line,
                C.DATA,
                "runs the queued background jobs inline",
            )
        return True
    return False


def perform_inline(
    reader: MigrationReader,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """Gitlab::BackgroundMigration::X...perform*: the background migration run inline, data."""
    if (
        receiver_text.startswith("Gitlab::BackgroundMigration::")
        and method.startswith("perform")
        and not reader.neutral_receiver_exact(receiver_text)
    ):
        # `.new.perform(...)`, `.new.perform_all_sync`: the background migration's work, run now.
        reader.add(f"{receiver_text}.{method}", None, line, C.DATA, "runs a background migration inline")
        reader.visit_parts(None, args, block)
        return True
    return False


def only_deletes(reader: MigrationReader, block: Node) -> bool:
    """True when a `steal` block does nothing but delete the jobs it is given."""
    calls = captures("(call method: (identifier) @m)", block).get("m", [])
    return bool(calls) and all(reader.text(m) in ("delete", "delete_all") for m in calls)
