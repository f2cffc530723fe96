"""The Sidekiq API (`Sidekiq::Queue`, `Sidekiq::ScheduledSet`, a job or connection it yields): jobs in
Redis, never the database, so `background`. `Sidekiq::Cron::Job` is left to the catalogue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.classification.scope import Local

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.state import ReaderState

C = MigrationClass
# How a Sidekiq API receiver starts (`Sidekiq::Queue`, `Sidekiq.redis`).
SIDEKIQ_PREFIXES = ("Sidekiq::", "Sidekiq.")
# Sidekiq classes the catalogue judges itself (cron jobs are `qualified` entries).
CATALOGUED = ("Sidekiq::Cron::Job",)


def sidekiq_api(
    reader: ReaderState,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """A call on Sidekiq or one of its classes: background; its block gets Sidekiq handles."""
    if (
        receiver_text == "Sidekiq" or receiver_text.startswith(SIDEKIQ_PREFIXES)
    ) and receiver_text not in CATALOGUED:
        reader.add(
            f"{receiver_text}.{method}",
            None,
            line,
            C.BACKGROUND,
            "Sidekiq API: jobs in Redis, not the database",
        )
        reader.visit_parts(None, args, None)
        if block is not None:
            # What the Sidekiq API yields (a job, a Redis connection) is Sidekiq's too.
            reader.bind_block(block, [Local(kind="sidekiq"), Local(kind="sidekiq")])
            reader.walk_block(block)
        return True
    return False


def sidekiq_handle(
    reader: ReaderState,
    node: Node,
    method: str,
    receiver: Node | None,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """A call on a local holding a Sidekiq object (a job, a set): background."""
    if receiver is None or receiver.type != "identifier":
        return False
    local = reader.locals.get(receiver_text)
    if local is not None and local.kind == "sidekiq":
        reader.add(
            f"{receiver_text}.{method}",
            None,
            line,
            C.BACKGROUND,
            "Sidekiq API: jobs in Redis, not the database",
        )
        reader.visit_parts(None, args, None)
        if block is not None:
            reader.bind_block(block, [Local(kind="sidekiq"), Local(kind="sidekiq")])
            reader.walk_block(block)
        return True
    return False
