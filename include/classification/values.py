"""Constant evaluation: the static value of a node (strings, symbols, numbers, arrays, hashes, constants,
heredocs), the table a model, relation or helper argument names, and the receiver facts the rules ask."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.classification.classes import MigrationClass
from include.classification.rails import (
    MODEL_TABLE_READERS,
    QUOTERS,
    RUBY_COLLECTIONS,
    TO_COLLECTION,
    tableize,
)
from include.classification.state import ReaderState
from include.classification.tree import body_of, required_child

if TYPE_CHECKING:
    from tree_sitter import Node

    pass

C = MigrationClass


class ValueReader(ReaderState):
    """Part of the migration reader (engine.MigrationReader): values."""

    __slots__ = ()

    @staticmethod
    def text(node: Node | None) -> str:
        return (node.text or b"").decode("utf-8", "replace") if node is not None else ""

    def const_node(self, name: str) -> Node | None:
        """The value node of constant `name`: the migration class first, then the rest of the file."""
        if self.const_assignments:
            for assignment in self.const_assignments:
                left = assignment.child_by_field_name("left")
                if left is not None and left.type == "constant":
                    self.const_nodes[(left.text or b"").decode()] = assignment.child_by_field_name("right")
            self.const_assignments = []
        node = self.const_nodes.get(name)
        if node is None and not self.all_constants and self.root is not None:
            self.all_constants = True
            self.collect_constants(self.root)
            node = self.const_nodes.get(name)
        return node

    def constant(self, name: str) -> Any:
        if name in self.const_values:
            return self.const_values[name]
        self.const_values[name] = None  # recursion guard
        node = self.const_node(name)
        value = self.literal(node) if node is not None else None
        self.const_values[name] = value
        return value

    def literal(self, node: Node | None) -> Any:
        """Static value of a node: string, symbol, number, array, resolved constant; None when not static."""
        if node is None:
            return None
        kind = node.type
        if kind == "simple_symbol":
            return self.text(node)[1:]
        if kind in ("string", "delimited_symbol", "heredoc_beginning"):
            container = self.heredoc_body(node) if kind == "heredoc_beginning" else node
            if container is None:
                return None
            parts = []
            for child in container.named_children:
                if child.type == "string_content":
                    parts.append(self.text(child))
                elif child.type == "interpolation":
                    inner = child.named_children[0] if child.named_children else None
                    value = self.literal(inner)
                    if value is None or isinstance(value, list | dict):
                        return None
                    parts.append(str(value))
                elif child.type in ("escape_sequence", "heredoc_content"):
                    parts.append(self.text(child))
            return "".join(parts)
        if kind == "chained_string":
            pieces = [self.literal(part) for part in node.named_children]
            return "".join(pieces) if all(isinstance(p, str) for p in pieces) else None
        if kind == "integer":
            try:
                return int(self.text(node).replace("_", ""), 0)
            except ValueError:
                return None
        if kind == "constant":
            return self.constant(self.text(node))
        if kind == "scope_resolution":
            name = node.child_by_field_name("name")
            return self.constant(self.text(name)) if name is not None else None
        if kind in ("array", "string_array", "symbol_array"):
            # A heredoc element's body is a sibling of the elements (tree-sitter): it is not an element.
            values = [self.literal(c) for c in node.named_children if c.type != "heredoc_body"]
            if kind != "array":
                values = [self.text(c).lstrip(":") for c in node.named_children]
            return values if all(v is not None for v in values) else None
        if kind in ("bare_string", "bare_symbol"):
            return self.text(node)
        if kind == "identifier":
            local = self.locals.get(self.text(node))
            if local is not None and local.literal is not None:
                return local.literal
            if local is not None and local.value is not None and local.value is not node:
                return self.literal(local.value)
            return None
        if kind == "hash":
            mapping = {}
            for pair in node.named_children:
                if pair.type != "pair":
                    return None
                key = required_child(pair, "key")
                key_value = (
                    self.text(key).rstrip(":").strip("'\"")
                    if key.type == "hash_key_symbol"
                    else self.literal(key)
                )
                value = self.literal(pair.child_by_field_name("value"))
                if not isinstance(key_value, str | int) or value is None:
                    return None
                mapping[key_value] = value
            return mapping
        if kind == "element_reference":
            container = self.literal(node.child_by_field_name("object"))
            if isinstance(container, dict) and len(node.named_children) == 2:
                return container.get(self.literal(node.named_children[1]))
            return None
        if kind == "call":
            method = self.text(node.child_by_field_name("method"))
            if method in ("freeze", "to_s", "to_sym", "dup", "strip", "squish", "to_i", "strip_heredoc"):
                return self.literal(node.child_by_field_name("receiver"))
            receiver = node.child_by_field_name("receiver")
            if (
                method in MODEL_TABLE_READERS
                and receiver is not None
                and node.child_by_field_name("arguments") is None
            ):
                # `Metrics.table_name` of a model the migration defines is that model's fixed table.
                return self.relation_table(receiver)
            if method in QUOTERS:
                # `quote_table_name(:x)` is the name x (quoted): the table stays readable in SQL.
                arguments = node.child_by_field_name("arguments")
                if arguments is not None and len(arguments.named_children) == 1:
                    value = self.literal(arguments.named_children[0])
                    return value if isinstance(value, str) else None
        if kind == "parenthesized_statements" and node.named_children:
            return self.literal(node.named_children[-1])
        return None

    def table_name(self, node: Node | None) -> str | None:
        """The table a helper argument names: a literal, a constant, or a model class / relation."""
        value = self.literal(node)
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return str(value[0]) if value and isinstance(value[0], str) else None
        if node is not None and node.type in ("constant", "scope_resolution", "call", "identifier"):
            return self.relation_table(node)
        return None

    def relation_table(self, node: Node | None, depth: int = 0) -> str | None:
        """The table behind a model constant, relation chain, batch variable or `define_batchable_model`."""
        while node is not None and depth < 30:
            depth += 1
            kind = node.type
            if kind == "call":
                method = self.text(node.child_by_field_name("method"))
                receiver = node.child_by_field_name("receiver")
                if (
                    method == "new"
                    and receiver is not None
                    and self.text(receiver).removeprefix("::") == "Class"
                ):
                    return self.anonymous_model_table(node)
                if method in self.catalogue.model_factories or (
                    method == "new" and self.text(receiver).endswith("Table")
                ):
                    arguments = node.child_by_field_name("arguments")
                    first = (
                        arguments.named_children[0]
                        if arguments is not None and arguments.named_children
                        else None
                    )
                    value = self.literal(first)
                    return str(value) if isinstance(value, str) else None
                if method in self.associations and receiver is not None:
                    return self.associations[method]  # `group.stages`: the associated model's rows
                if receiver is None:
                    if method in self.methods and method not in self.stack:
                        return self.method_table(method)
                    return self.current_model
                node = receiver
                continue
            if kind in ("identifier", "instance_variable"):
                name = self.text(node)
                local = self.locals.get(name)
                if local is not None:
                    if local.table is None and isinstance(local.literal, str):
                        return local.literal
                    return local.table
                if name in self.methods and name not in self.stack:
                    return self.method_table(name)
                return None
            if kind in ("constant", "scope_resolution"):
                name = self.text(node).removeprefix("::")
                if name in self.models:
                    return self.models[name]
                definition = self.const_node(name.rsplit("::", 1)[-1])
                if (
                    definition is not None
                    and definition.type == "call"
                    and self.text(definition.child_by_field_name("receiver")).removeprefix("::") == "Class"
                ):
                    return self.anonymous_model_table(definition)
                value = self.literal(node)
                if isinstance(value, str):
                    return value
                known = self.catalogue.model_tables.get(name)
                if known is not None:
                    return known
                if self.neutral_receiver(name):
                    return None
                return tableize(name)
            if kind == "parenthesized_statements" and node.named_children:
                node = node.named_children[-1]
                continue
            if kind == "element_reference":
                node = node.child_by_field_name("object")
                continue
            return None
        return None

    def constant_path(self, node: Node | None, depth: int = 0) -> str | None:
        """The full constant a receiver names, through constant aliases and locals (`MODEL = JOB::Finding`,
        `migration = Gitlab::BackgroundMigration::X` then `migration::Build`); None when it is not one."""
        if node is None or depth > 8:
            return None
        kind = node.type
        if kind == "identifier":
            local = self.locals.get(self.text(node))
            value = local.value if local is not None else None
            return self.constant_path(value, depth + 1) if value is not node else None
        if kind == "constant":
            name = self.text(node)
            definition = self.const_node(name)
            if definition is not None and definition.type in ("constant", "scope_resolution"):
                return self.constant_path(definition, depth + 1)
            return name
        if kind == "scope_resolution":
            scope = node.child_by_field_name("scope")
            name = self.text(node.child_by_field_name("name"))
            if scope is None:
                return name
            outer = self.constant_path(scope, depth + 1)
            return f"{outer}::{name}" if outer is not None else None
        return None

    def anonymous_model_table(self, node: Node) -> str | None:
        """`Class.new(ActiveRecord::Base) { self.table_name = 'x' }`: a model defined in the migration, table x.

        A class built on anything else, or without a table name it can read, has no table (None): calls on
        it are judged as calls on an unknown receiver.
        """
        arguments = node.child_by_field_name("arguments")
        parent = arguments.named_children[0] if arguments is not None and arguments.named_children else None
        if parent is None or not self.catalogue.model_superclass.search(self.text(parent)):
            return None
        block = node.child_by_field_name("block")
        body = block.child_by_field_name("body") if block is not None else None
        for child in body.named_children if body is not None else []:
            if (
                child.type == "assignment"
                and self.text(child.child_by_field_name("left")) == "self.table_name"
            ):
                value = self.literal(child.child_by_field_name("right"))
                return str(value) if isinstance(value, str) else None
        return None

    def method_table(self, name: str) -> str | None:
        """A private method that returns a model (`def model = define_batchable_model(:x)`): its table."""
        body = body_of(self.methods[name])
        if body is None or not body.named_children:
            return None
        self.stack.append(name)
        try:
            last = body.named_children[-1]
            if last.type in ("assignment", "operator_assignment"):
                return self.relation_table(last.child_by_field_name("right"))
            return self.relation_table(last)
        finally:
            self.stack.pop()

    def keyword(self, args: list[Node], key: str) -> Node | None:
        for arg in args:
            pairs = [arg] if arg.type == "pair" else (arg.named_children if arg.type == "hash" else [])
            for pair in pairs:
                if pair.type != "pair":
                    continue
                name = self.text(pair.child_by_field_name("key")).strip(":'\" ")
                if name == key:
                    return pair.child_by_field_name("value")
        return None

    def heredoc_body(self, beginning: Node) -> Node | None:
        """The body of a heredoc: tree-sitter places it after the statement that opens it, in opening order."""
        if self.heredocs is None:
            self.heredocs = {}
        found = self.heredocs.get(beginning.start_byte)
        if found is not None:
            return found
        statement = beginning
        while statement.parent is not None:
            sibling = statement.next_named_sibling
            if sibling is not None and sibling.type == "heredoc_body":
                break
            statement = statement.parent
        else:
            return None
        openings, pending = [], [statement]
        while pending:
            node = pending.pop()
            if node.type == "heredoc_beginning":
                openings.append(node)
            else:
                pending.extend(node.named_children)
        openings.sort(key=lambda n: n.start_byte)
        sibling = statement.next_named_sibling
        for opening in openings:
            if sibling is None or sibling.type != "heredoc_body":
                break
            self.heredocs[opening.start_byte] = sibling
            sibling = sibling.next_named_sibling
        return self.heredocs.get(beginning.start_byte)

    def rule_table(self, spec: tuple[int | str, ...], args: list[Node]) -> str | None:
        """The table named by a catalogue `table:` spec (positional index or keyword, in order)."""
        if not spec:
            return None
        positional = [
            a for a in args if a.type not in ("pair", "hash", "block_argument", "hash_splat_argument")
        ]
        for item in spec:
            if isinstance(item, int):
                node = positional[item] if item < len(positional) else None
            else:
                node = self.keyword(args, item)
            table = self.table_name(node) if node is not None else None
            if table:
                return table
        return None

    def root_text(self, node: Node) -> str:
        """`Model` for `Model.where(...).limit(...)`: the start of a call chain, for readable helper names."""
        chained = False
        while node.type in ("call", "element_reference"):
            inner = node.child_by_field_name("receiver") or node.child_by_field_name("object")
            if inner is None:
                return self.text(node.child_by_field_name("method")) + ("…" if chained else "")
            node, chained = inner, True
        text = self.text(node).removeprefix("::")
        return f"{text}…" if chained else text

    def on_connection(self, receiver: Node | None, receiver_text: str) -> bool:
        if receiver is None or receiver_text == "self":
            return True
        return receiver_text == "connection" or receiver_text.endswith(".connection")

    def neutral_receiver_exact(self, receiver_text: str) -> bool:
        """A receiver listed itself (`Gitlab::BackgroundMigration::Logger`), not only under a listed prefix."""
        return receiver_text.split(".", 1)[0] in self.catalogue.neutral_receivers

    def neutral_receiver(self, receiver_text: str) -> bool:
        if not receiver_text:
            return False
        neutral = self.catalogue.neutral_receivers
        if receiver_text in neutral:
            return True
        for separator in ("::", "."):
            cut = receiver_text.rfind(separator)
            while cut > 0:
                if receiver_text[:cut] in neutral:
                    return True
                cut = receiver_text.rfind(separator, 0, cut)
        return False

    def plain_model_root(self, root: Node | None, depth: int = 0) -> bool:
        """True when a chain starts at an inner model with no mixins (`Setting.last&.import_sources`): any
        write it could make is a catalogued method, so an unknown no-argument call is a column read."""
        if root is None or depth > 5:
            return False
        if root.type in ("constant", "scope_resolution"):
            return self.text(root).removeprefix("::") in self.plain_models
        if root.type == "identifier":
            local = self.locals.get(self.text(root))
            value = local.value if local is not None else None
            while value is not None and value.type in ("call", "element_reference"):
                value = value.child_by_field_name("receiver") or value.child_by_field_name("object")
            return self.plain_model_root(value, depth + 1)
        return False

    def builds_collection(self, node: Node | None, depth: int = 0) -> str | None:
        """ "ruby" for a value that is certainly a plain Hash, Array or Set (`{}`, `Hash.new`, `x.to_h`);
        "copy" for a `dup` (a Ruby copy, or an unsaved copy of a record: deleting it deletes no row)."""
        if node is None or depth > 5:
            return None
        kind = node.type
        if kind in ("hash", "array", "string_array", "symbol_array"):
            return "ruby"
        if kind == "call":
            method = self.text(node.child_by_field_name("method"))
            if method == "new":
                return "ruby" if self.text(node.child_by_field_name("receiver")) in RUBY_COLLECTIONS else None
            if method in TO_COLLECTION:
                return "ruby"
            return "copy" if method in ("dup", "deep_dup") else None
        if kind == "parenthesized_statements" and node.named_children:
            return self.builds_collection(node.named_children[-1], depth + 1)
        if kind == "binary" and self.text(node.child_by_field_name("operator")) in ("||", "or"):
            left = self.builds_collection(node.child_by_field_name("left"), depth + 1)
            right = self.builds_collection(node.child_by_field_name("right"), depth + 1)
            if left and right:
                return "ruby" if left == right == "ruby" else "copy"
        return None

    def follow_key(self, node: Node) -> str:
        """An argument as a private method sees it: its static value when known, else its text."""
        if node.type == "identifier":
            value = self.literal(node)
            if value is not None:
                return repr(value)
        return self.text(node)
