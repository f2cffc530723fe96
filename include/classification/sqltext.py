"""The SQL text an `execute`-like call runs: string and heredoc literals, interpolations of static values,
`+=` fragments, private methods that return SQL, Arel SELECT builders and Arel managers; the parts only
known at run time are marked DYNAMIC for include/classification/sql.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.classification.rails import (
    SELECT_BUILDERS,
    STRING_METHODS,
)
from include.classification.scope import Local
from include.classification.sql import DYNAMIC
from include.classification.state import ReaderState
from include.classification.tree import (
    body_of,
)

if TYPE_CHECKING:
    from tree_sitter import Node

    pass

C = MigrationClass


class SqlTextReader(ReaderState):
    """Part of the migration reader (engine.MigrationReader): sqltext."""

    __slots__ = ()

    def sql_text(self, node: Node | None, depth: int = 0) -> str | None:
        """The SQL an argument holds, with run-time parts as DYNAMIC; None when it cannot be read at all."""
        if node is None or depth > 20:
            return None
        kind = node.type
        if kind in ("string", "heredoc_beginning"):
            container = self.heredoc_body(node) if kind == "heredoc_beginning" else node
            if container is None:
                return None
            parts = []
            for child in container.named_children:
                child_kind = child.type
                if child_kind in ("string_content", "heredoc_content", "escape_sequence"):
                    parts.append(self.text(child))
                elif child_kind == "interpolation":
                    inner = child.named_children[0] if child.named_children else None
                    value = self.literal(inner)
                    if isinstance(value, list):
                        value = ", ".join(str(v) for v in value)
                    parts.append(str(value) if value is not None else f" {DYNAMIC} ")
            return "".join(parts)
        if kind == "chained_string":
            # `"UPDATE users " "SET ..."`: adjacent literals are one string, read part by part.
            texts = [self.sql_text(part, depth + 1) for part in node.named_children]
            return "".join(text if text is not None else f" {DYNAMIC} " for text in texts)
        if kind in ("constant", "scope_resolution"):
            name = node.child_by_field_name("name") if kind == "scope_resolution" else node
            target = self.const_node(self.text(name))
            return self.sql_text(target, depth + 1) if target is not None else None
        if kind == "identifier":
            local = self.locals.get(self.text(node))
            if local is not None and local.pieces:
                # `sql = "..."; sql += "..."`: the fragments in order.
                texts = [self.sql_text(piece, depth + 1) for piece in local.pieces]
                return "".join(text if text is not None else f" {DYNAMIC} " for text in texts)
            if local is not None and local.value is not None:
                return self.sql_text(local.value, depth + 1)
            if local is not None and isinstance(local.literal, str):
                return local.literal
            called = self.text(node)
            if local is None and called in self.methods:
                return self.method_sql(called, [], depth)
            return None
        if kind == "call":
            method = self.text(node.child_by_field_name("method"))
            receiver = node.child_by_field_name("receiver")
            if method in self.methods and (receiver is None or self.text(receiver) == "self"):
                arguments = node.child_by_field_name("arguments")
                return self.method_sql(method, arguments.named_children if arguments else [], depth)
            if receiver is not None and self.select_builder(node):
                return f"SELECT {DYNAMIC}"
            if receiver is not None and method == "to_sql":
                return self.arel_manager_sql(receiver)
            if method in STRING_METHODS and receiver is not None:
                return self.sql_text(receiver, depth + 1)
            if method in ("format", "sprintf") and receiver is None:
                arguments = node.child_by_field_name("arguments")
                if arguments is not None and arguments.named_children:
                    return self.sql_text(arguments.named_children[0], depth + 1)
            if method == "sql" and self.text(receiver).removeprefix("::") == "Arel":
                arguments = node.child_by_field_name("arguments")
                if arguments is not None and arguments.named_children:
                    return self.sql_text(arguments.named_children[0], depth + 1)
            return None
        if kind == "binary" and self.text(node.child_by_field_name("operator")) == "%":
            return self.sql_text(node.child_by_field_name("left"), depth + 1)
        if kind == "binary" and self.text(node.child_by_field_name("operator")) == "+":
            left = self.sql_text(node.child_by_field_name("left"), depth + 1)
            right = self.sql_text(node.child_by_field_name("right"), depth + 1)
            return (left or f" {DYNAMIC} ") + (right or f" {DYNAMIC} ")
        if kind == "parenthesized_statements" and node.named_children:
            return self.sql_text(node.named_children[-1], depth + 1)
        if kind in ("if", "unless"):
            taken = self.taken_branch(node)
            return self.sql_text(taken, depth + 1) if taken is not None else None
        return None

    def taken_branch(self, node: Node) -> Node | None:
        """`if Gitlab::Database.postgresql? then <<-SQL ... else ... end`: the value of the branch the target
        takes, when the condition is known there (else None: both could run)."""
        value = self.truth(node.child_by_field_name("condition"))
        if value is None:
            return None
        branch = node.child_by_field_name("consequence" if value is (node.type == "if") else "alternative")
        kept = (
            [c for c in branch.named_children if c.type not in ("comment", "heredoc_body")]
            if branch is not None
            else []
        )
        return kept[-1] if kept else None

    def select_builder(self, node: Node | None, depth: int = 0) -> bool:
        """`table.project(...).where(...).to_sql` on an `Arel::Table`: a SELECT, whatever its conditions.

        Only a chain of query-building calls that starts at an `Arel::Table` (directly or through a local)
        and has a `project` (Arel's SELECT list) qualifies: update, delete and insert managers never do.
        """
        projected = False
        while node is not None and node.type == "call":
            method = self.text(node.child_by_field_name("method"))
            if method == "project":
                projected = True
            elif method not in SELECT_BUILDERS and method not in self.catalogue.neutral_methods:
                return False  # anything else in the chain may build other SQL: not read as a SELECT
            node = node.child_by_field_name("receiver")
        if node is None or depth > 3:
            return False
        if node.type == "identifier":
            local = self.locals.get(self.text(node))
            value = local.value if local is not None else None
            if value is None:
                return False
            if value.type == "call" and (
                (
                    self.text(value.child_by_field_name("receiver")).removeprefix("::") == "Arel::Table"
                    and self.text(value.child_by_field_name("method")) == "new"
                )
                or self.text(value.child_by_field_name("method")) == "arel_table"
            ):
                return projected
            return projected and self.select_builder(value, depth + 1) if value.type == "call" else False
        return False

    def arel_manager_sql(self, node: Node | None, depth: int = 0) -> str | None:
        """`Arel::UpdateManager.new(...).table(t)...`, `Arel::DeleteManager.new(...).from(t)...`: the
        statement's kind (and table, when the Arel::Table it names is static) as SQL text."""
        table = None
        while node is not None and depth < 30:
            depth += 1
            if node.type == "identifier":
                local = self.locals.get(self.text(node))
                node = local.value if local is not None else None
                continue
            if node.type != "call":
                return None
            method = self.text(node.child_by_field_name("method"))
            receiver = node.child_by_field_name("receiver")
            arguments = node.child_by_field_name("arguments")
            first = (
                arguments.named_children[0] if arguments is not None and arguments.named_children else None
            )
            if method in ("table", "from", "into") and first is not None and table is None:
                table = self.arel_table_name(first)
            if method == "new" and receiver is not None:
                manager = self.text(receiver).removeprefix("::")
                verb = {
                    "Arel::UpdateManager": "UPDATE {t} SET",
                    "Arel::DeleteManager": "DELETE FROM {t}",
                    "Arel::InsertManager": "INSERT INTO {t}",
                }.get(manager)
                if verb is None:
                    return None
                if table is None:
                    return None  # which table it writes is not readable: its size could not count
                return verb.format(t=table) + f" {DYNAMIC}"
            node = receiver
        return None

    def arel_table_name(self, reference: Node) -> str | None:
        """The table of `Arel::Table.new(:x)` or `Model.arel_table`, directly, through a local or a private
        method that returns it."""
        node: Node | None = reference
        if (
            reference.type == "identifier"
            and self.text(reference) not in self.locals
            and self.text(reference) in self.methods
        ):
            body = body_of(self.methods[self.text(reference)])
            statements = [c for c in body.named_children if c.type != "comment"] if body is not None else []
            node = statements[-1] if len(statements) == 1 else None
            if node is not None and node.type in ("assignment", "operator_assignment"):
                node = node.child_by_field_name("right")  # `@users_table ||= Arel::Table.new(:users)`
            if node is None:
                return None
        elif reference.type == "identifier":
            local = self.locals.get(self.text(reference))
            node = local.value if local is not None else None
        if (
            node is not None
            and node.type == "call"
            and self.text(node.child_by_field_name("method")) == "arel_table"
        ):
            receiver = node.child_by_field_name("receiver")
            return self.relation_table(receiver) if receiver is not None else None
        if node is None or node.type != "call" or self.text(node.child_by_field_name("method")) != "new":
            return None
        if self.text(node.child_by_field_name("receiver")).removeprefix("::") != "Arel::Table":
            return None
        arguments = node.child_by_field_name("arguments")
        value = self.literal(arguments.named_children[0]) if arguments and arguments.named_children else None
        return value if isinstance(value, str) else None

    def method_sql(self, name: str, args: list[Node], depth: int) -> str | None:
        """The SQL a private method of the migration returns (its last expression), its parameters bound to
        the static values of the caller's arguments; a parameter without one is a run-time part."""
        if name in self.stack:
            return None
        definition = self.methods[name]
        body = body_of(definition)
        statements = (
            [c for c in body.named_children if c.type not in ("comment", "heredoc_body")]
            if body is not None
            else []
        )
        if not statements:
            return None
        last = statements[-1]
        returned: Node | None = last
        if last.type == "return" and last.named_children:
            returned = (
                last.named_children[0].named_children[0] if last.named_children[0].named_children else None
            )
        positional = [
            a for a in args if a.type not in ("pair", "hash", "block_argument", "hash_splat_argument")
        ]
        bound: dict[str, Local] = {}
        parameters = definition.child_by_field_name("parameters")
        for index, parameter in enumerate(parameters.named_children if parameters is not None else []):
            named = parameter.child_by_field_name("name") if parameter.type != "identifier" else parameter
            value = None
            if parameter.type == "identifier" and index < len(positional):
                value = self.literal(positional[index])
            elif parameter.type in ("keyword_parameter", "optional_parameter") and named is not None:
                given = (
                    self.keyword(args, self.text(named)) if parameter.type == "keyword_parameter" else None
                )
                if given is None and parameter.type == "optional_parameter" and index < len(positional):
                    given = positional[index]
                value = self.literal(given if given is not None else parameter.child_by_field_name("value"))
            bound[self.text(named if named is not None else parameter)] = Local(literal=value)
        for statement in statements[:-1]:
            left = statement.child_by_field_name("left") if statement.type == "assignment" else None
            if left is not None and left.type == "identifier":
                bound[self.text(left)] = Local(value=statement.child_by_field_name("right"))
        saved, self.locals = self.locals, bound
        self.stack.append(name)
        try:
            return self.sql_text(returned, depth + 1)
        finally:
            self.stack.pop()
            self.locals = saved
