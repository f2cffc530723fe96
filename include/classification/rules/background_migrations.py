"""Background migrations run inline: `Gitlab::BackgroundMigration.steal` (runs the queued jobs: `data`;
with a block that only deletes them: `background`) and `Gitlab::BackgroundMigration::X.new.perform(...)`
(the job's work, now: `data`); a scope of a model nested in a background migration class
(`MIGRATION::Build.builds_to_update`, the relation a legacy scheduler batches over) is a read."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.classification.rails import ACTION_WORDS
from include.classification.tree import captures, value_discarded

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.state import ReaderState

C = MigrationClass

# `Gitlab::BackgroundMigration::Job::Model`: a model the background migration class declares for itself.
NESTED_MODEL = re.compile(r"^Gitlab::BackgroundMigration::\w+::\w+$")


def steal(
    reader: ReaderState,
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
    reader: ReaderState,
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


def only_deletes(reader: ReaderState, block: Node) -> bool:
    """True when a `steal` block does nothing but delete the jobs it is given."""
    calls = captures("(call method: (identifier) @m)", block).get("m", [])
    return bool(calls) and all(reader.text(m) in ("delete", "delete_all") for m in calls)


def nested_model_scope(
    reader: ReaderState,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """A scope of a background migration's own model, its value used: it builds a relation, a read.

    The receiver may be spelled through a constant or a local (`MODEL = MIGRATION::Finding`,
    `migration::Build`); only a no-argument call whose name says no action and whose value is used counts.
    """
    if (
        receiver is None
        or receiver.type not in ("constant", "scope_resolution", "identifier")
        or args
        or block is not None
        or method[-1] in "!="
        or ACTION_WORDS.search(method)
        or value_discarded(node)
    ):
        return False
    path = reader.constant_path(receiver)
    if path is None or not NESTED_MODEL.match(path):
        return False
    reader.add(
        f"{receiver_text}.{method}",
        None,
        line,
        C.NOOP,
        f"a scope of the background migration's own model {path.rsplit('::', 1)[-1]}: builds a relation",
    )
    return True


def job_class_code(receiver_text: str) -> bool:
    """`Gitlab::BackgroundMigration::X.new.fix_rows(...)`, `...::X::Model.repaint_all`: code of a background
    migration class (or a model nested in one) called inline. The namespace itself is neutral
    (`Gitlab::BackgroundMigration.remaining`); what its classes do is not bounded by that, so the call is
    judged like any other (unknown unless a rule or the catalogue knows it)."""
    return receiver_text.startswith("Gitlab::BackgroundMigration::")
