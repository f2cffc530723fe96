"""Recording operations: a catalogued helper with its table (and the tables it locks), argument-dependent
classes (`when:`), SQL statements, and the indexes created and dropped (a temporary index is cleanup)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass, most_restrictive
from include.classification.config import HelperRule
from include.classification.result import Operation
from include.classification.scope import Local
from include.classification.sql import SqlVerdict, classify_sql
from include.classification.state import ReaderState
from include.classification.tree import (
    LITERAL_IDS,
)

if TYPE_CHECKING:
    from tree_sitter import Node

    pass

C = MigrationClass
# Calls and SQL kinds that only delete rows.
ROW_DELETERS = frozenset({"delete_all", "destroy_all", "delete_by", "destroy_by", "delete", "destroy"})


def deletes_rows(helper: str) -> bool:
    """Whether an operation's helper (`X.delete_all`, `execute (DELETE)`) only deletes rows."""
    return helper.endswith(" (DELETE)") or helper.rsplit(".", 1)[-1] in ROW_DELETERS


class OperationRecorder(ReaderState):
    """Part of the migration reader (engine.MigrationReader): operations."""

    __slots__ = ()

    def add(self, helper: str, table: str | None, line: int, cls: MigrationClass, rationale: str) -> None:
        if cls is C.DATA and table is not None and table in self.catalogue.bookkeeping_tables:
            # Rows that only track queued background work (job-tracking rows deleted before re-queuing).
            cls, rationale = C.BACKGROUND, f"{rationale}; {table} only tracks background migration jobs"
        elif cls is C.DATA and table in self.catalogue.bookkeeping_deletes and deletes_rows(helper):
            cls = C.BACKGROUND
            rationale = f"{rationale}; withdraws a batched background migration ({table}), as delete_batched_background_migration does"
        self.operations.append(Operation(helper, table, line, cls, rationale))

    def add_rule(self, rule: HelperRule, helper: str, args: list[Node], line: int) -> None:
        table = None
        positional = (
            [a for a in args if a.type not in ("pair", "hash", "block_argument", "hash_splat_argument")]
            if rule.table or rule.locks or rule.when
            else []
        )
        for spec in rule.table:
            node = (positional[spec] if spec < len(positional) else None) if isinstance(spec, int) else None
            if not isinstance(spec, int):
                node = self.keyword(args, spec)
            table = self.table_name(node) if node is not None else None
            if table:
                break
        cls, rationale = rule.cls, rule.rationale
        if rule.when is not None:
            # Argument semantics: `change_column_null(t, c, true)` drops NOT NULL, `false` adds it.
            spec, cases = rule.when
            if isinstance(spec, int):
                chosen = positional[spec] if spec < len(positional) else None
            else:
                chosen = self.keyword(args, spec)
            case = cases.get(self.text(chosen)) if chosen is not None else None
            if case is not None:
                cls, rationale = case
        self.add(helper, table, line, cls, rationale)
        for spec in rule.locks:
            # A foreign key locks the table it references as well: its size counts too.
            node = (positional[spec] if spec < len(positional) else None) if isinstance(spec, int) else None
            if not isinstance(spec, int):
                node = self.keyword(args, spec)
            other = self.table_name(node) if node is not None else None
            if other and other != table:
                self.add(
                    f"{helper} (referenced table)",
                    other,
                    line,
                    rule.cls,
                    f"{rule.rationale}; locks {other} too",
                )

    def add_helper(
        self, rule: HelperRule, method: str, args: list[Node], block: Node | None, line: int
    ) -> None:
        self.add_rule(rule, method, args, line)
        if method in self.catalogue.index_creators or method in self.catalogue.index_droppers:
            self.track_index(method, args)
        for arg in args:
            if arg.kind_id not in LITERAL_IDS:
                self.visit(arg)
        if block is not None:
            # What the helper yields (a table definition, the query to refine) is part of the helper.
            self.bind_block(block, [Local(kind="helper"), Local(kind="helper")])
            self.walk_block(block)

    def add_sql(self, method: str, receiver_text: str, argument: Node | None, line: int) -> None:
        helper = f"{receiver_text}.{method}" if receiver_text and receiver_text != "self" else method
        sql = self.sql_text(argument) if argument is not None else None
        verdicts = classify_sql(sql)
        if sql is None and argument is not None:
            # Name what could not be read, so that a reviewer knows where to look.
            preview = " ".join(self.text(argument)[:60].split())
            verdicts = [
                SqlVerdict(
                    C.UNKNOWN, f"SQL built at run time ({preview}): its kind cannot be read", None, "?"
                )
            ]
        for verdict in verdicts[:25]:
            kind = f" ({verdict.kind})" if verdict.kind and verdict.kind != "?" else ""
            self.add(f"{helper}{kind}", verdict.table, line, verdict.cls, verdict.rationale)
        if len(verdicts) > 25:
            strictest = most_restrictive(v.cls for v in verdicts[25:])
            self.add(helper, None, line, strictest, f"{len(verdicts) - 25} more SQL statements")

    def track_index(self, method: str, args: list[Node]) -> None:
        """Remember index names created and dropped: a temporary index makes the migration cleanup."""
        creators = self.catalogue.index_creators
        where = creators.get(method) or self.catalogue.index_droppers.get(method)
        if where is None:
            return
        name = None
        for spec in where:
            if isinstance(spec, int):
                positional = [a for a in args if a.type not in ("pair", "hash")]
                name = positional[spec] if len(positional) > spec else None
            else:
                name = self.keyword(args, spec)
            if name is not None:
                break
        value = self.literal(name) if name is not None else None
        if isinstance(value, str):
            (self.indexes_added if method in creators else self.indexes_removed)[value] = 1
