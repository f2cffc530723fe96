"""The walk: statements in order, branches by their guards, assignments into locals, blocks bound to what
their call yields, the migration's private methods and inner models' methods followed where they are called.
Each call found goes to dispatch.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.classification.classes import MigrationClass
from include.classification.rails import (
    MAX_UNROLL,
)
from include.classification.rules.helper_classes import helper_instance
from include.classification.rules.sidekiq import SIDEKIQ_PREFIXES
from include.classification.rules.symbol_blocks import symbol_block
from include.classification.scope import Local
from include.classification.state import ReaderState
from include.classification.tree import (
    LITERAL_IDS,
    V_ASSIGNMENT,
    V_CALL,
    V_EXCEPTION_VARIABLE,
    V_IDENTIFIER,
    V_IF,
    V_JUMP,
    V_LAMBDA,
    V_LITERAL,
    V_MODIFIER,
    V_TERNARY,
    V_YIELD,
    VISIT_ACTIONS,
    body_of,
    required_child,
    visit_action,
)

if TYPE_CHECKING:
    from tree_sitter import Node

    pass

C = MigrationClass


class Walker(ReaderState):
    """Part of the migration reader (engine.MigrationReader): walk."""

    __slots__ = ()

    def walk(self, body: Node | None) -> bool:
        """Walk statements in order; True when the path certainly returned (the rest is unreachable)."""
        if body is None:
            return False
        for statement in body.named_children:
            if self.visit(statement):
                return True
        return False

    def visit(self, node: Node) -> bool:
        action = VISIT_ACTIONS.get(node.kind_id)
        if action is None:
            action = visit_action(node.kind_id, node.type)
        if action == V_CALL:
            self.visit_call(node)
            return False
        if action == V_LITERAL:
            return False
        if action == V_IDENTIFIER:
            name = self.text(node)
            if name not in self.locals:
                self.dispatch(node, name, None, [], None)
            return False
        if action == V_IF:
            return self.visit_if(node)
        if action == V_MODIFIER:
            return self.visit_modifier(node)
        if action == V_TERNARY:
            return self.visit_ternary(node)
        if action == V_JUMP:
            for child in node.named_children:
                self.visit(child)
            return True
        if action == V_ASSIGNMENT:
            self.visit_assignment(node)
            return False
        if action == V_LAMBDA:
            parameters = node.child_by_field_name("parameters")
            for parameter in parameters.named_children if parameters is not None else []:
                named = parameter.child_by_field_name("name") if parameter.type != "identifier" else parameter
                self.locals[self.text(named if named is not None else parameter)] = Local()
            body = node.child_by_field_name("body")
            if body is not None:
                self.walk_block(body) if body.type in ("block", "do_block") else self.visit(body)
            return False
        if action == V_EXCEPTION_VARIABLE:
            # `rescue X => e`: `e` is the exception object, a local (never a helper call).
            for child in node.named_children:
                self.locals[self.text(child)] = Local(kind="ruby")
            return False
        if action == V_YIELD and self.yields is not None and not self.yields:
            self.yields.append(self.yielded_locals(node))
        for child in node.named_children:
            if self.visit(child):
                return True
        return False

    def visit_if(self, node: Node) -> bool:
        condition = required_child(node, "condition")
        value = self.truth(condition)
        if value is not None and node.type == "unless":
            value = not value
        consequence = node.child_by_field_name("consequence")
        alternative = node.child_by_field_name("alternative")
        if value is None:
            self.visit(condition)
        elif value is False and consequence is not None and consequence.named_children:
            self.note_guard(node, condition, value, skipped=True)
        elif value is True and alternative is not None:
            self.note_guard(alternative, condition, value, skipped=True)
        stopped_then = self.walk(consequence) if value is not False and consequence is not None else False
        stopped_else = self.visit(alternative) if value is not True and alternative is not None else False
        if value is True:
            return stopped_then
        if value is False:
            return stopped_else
        return stopped_then and stopped_else

    def visit_modifier(self, node: Node) -> bool:
        condition = required_child(node, "condition")
        body = node.child_by_field_name("body")
        value = self.truth(condition)
        if value is not None and node.type == "unless_modifier":
            value = not value
        if value is None:
            self.visit(condition)
        elif body is not None and body.type in ("return", "next"):
            if value:
                self.note_guard(node, condition, value, skipped=False)
        elif value is False:
            self.note_guard(node, condition, value, skipped=True)
        if value is False or body is None:
            return False
        stopped = self.visit(body)
        return stopped and value is True

    def visit_ternary(self, node: Node) -> bool:
        condition = required_child(node, "condition")
        value = self.truth(condition)
        if value is None:
            self.visit(condition)
        consequence = node.child_by_field_name("consequence")
        alternative = node.child_by_field_name("alternative")
        if value is not False and consequence is not None:
            self.visit(consequence)
        if value is not True and alternative is not None:
            self.visit(alternative)
        return False

    def visit_assignment(self, node: Node) -> None:
        left = node.child_by_field_name("left")
        right = node.child_by_field_name("right")
        if right is not None:
            self.visit(right)
        if left is None:
            return
        if left.type in ("identifier", "instance_variable"):
            name = self.text(left)
            local = Local(value=right)
            earlier = self.locals.get(name)
            if (
                node.type == "operator_assignment"
                and earlier is not None
                and (earlier.pieces or earlier.value is not None)
                and self.text(node.child_by_field_name("operator")) == "+="
            ):
                local.value = None
                local.pieces = [*(earlier.pieces or [earlier.value]), right]
                self.locals[name] = local
                return
            collection = self.builds_collection(right)
            if collection:
                earlier = self.locals.get(name)
                # Only a name that never held anything else: a record assigned on another path stays one.
                if earlier is None or earlier.kind in ("ruby", "copy"):
                    local.kind = collection
            elif right is not None and right.type in ("call", "identifier", "constant", "scope_resolution"):
                instance = helper_instance(self, right) if self.catalogue.helper_classes else None
                if instance is not None:
                    local.kind, local.instance, local.table = "helper_class", instance[0], instance[1]
                elif self.text(right).removeprefix("::").startswith(SIDEKIQ_PREFIXES):
                    local.kind = "sidekiq"
                elif self.query_builder(right):
                    local.kind = "builder"
                else:
                    local.table = self.relation_table(right)
            self.locals[name] = local
        elif left.type in ("left_assignment_list", "destructured_left_assignment"):
            for child in left.named_children:
                self.locals[self.text(child).lstrip("*")] = Local()
        elif left.type == "call":
            receiver = left.child_by_field_name("receiver")
            if receiver is not None and receiver.type == "call":
                self.visit_call(receiver)

    def query_builder(self, node: Node) -> bool:
        """`Gitlab::Pagination::Keyset::Order.build(...)`, `Arel::UpdateManager.new`: a query-building
        object (catalogue `query_builders`), made by `build`/`new` on the listed class itself."""
        if node.type != "call" or self.text(node.child_by_field_name("method")) not in ("build", "new"):
            return False
        receiver = node.child_by_field_name("receiver")
        return (
            receiver is not None and self.text(receiver).removeprefix("::") in self.catalogue.query_builders
        )

    def visit_parts(
        self,
        receiver: Node | None,
        args: list[Node],
        block: Node | None,
        iterating: bool = False,
        table: str | None = None,
    ) -> None:
        if receiver is not None and receiver.type not in (
            "identifier",
            "constant",
            "scope_resolution",
            "self",
        ):
            self.visit(receiver)
        for arg in args:
            if arg.kind_id not in LITERAL_IDS:
                if arg.type == "block_argument":
                    symbol_block(self, arg, receiver, table)
                self.visit(arg)
        if block is not None:
            if iterating:
                elements = self.static_elements(receiver) if table is None and receiver is not None else None
                if elements is not None:
                    for element in elements[:MAX_UNROLL]:
                        self.bind_block(block, self.element_locals(block, element))
                        self.walk_block(block)
                    return
                if table is None:
                    table = self.relation_table(receiver) if receiver is not None else self.current_model
                self.bind_block(block, [Local(table=table)])
            else:
                self.bind_block(block, [])
            self.walk_block(block)

    def static_elements(self, receiver: Node) -> list[Any] | None:
        """The elements of a constant collection a block iterates (`TABLES.each`, `%i[a b].each_with_index`)."""
        node = receiver
        while node.type == "call" and self.text(node.child_by_field_name("method")) in (
            "freeze",
            "each_with_index",
            "each",
            "uniq",
        ):
            inner = node.child_by_field_name("receiver")
            if inner is None:
                return None
            node = inner
        if node.type not in ("constant", "scope_resolution", "array", "string_array", "symbol_array", "hash"):
            return None
        value = self.literal(node)
        if value is None and node.type == "array" and node.named_children:
            # `[Issue, MergeRequest].each do |model|`: each model's table, so that its size counts.
            if all(c.type in ("constant", "scope_resolution") for c in node.named_children):
                tables = [self.relation_table(c) for c in node.named_children]
                return tables if all(tables) else None
            # `[namespaces_sql, projects_sql].each do |sql|`: the SQL each private method returns.
            if all(c.type == "identifier" and self.text(c) in self.methods for c in node.named_children):
                statements = [self.method_sql(self.text(c), [], 0) for c in node.named_children]
                return statements if all(statements) else None
        if isinstance(value, dict):
            return [[key, item] for key, item in value.items()] or None
        return value if isinstance(value, list) and value else None

    def element_locals(self, block: Node, element: Any) -> list[Local]:
        """Block parameters bound to one element (destructured when the block takes several)."""
        parameters = block.child_by_field_name("parameters")
        named = parameters.named_children if parameters is not None else []
        count = len(named)
        if count == 1 and named[0].type == "destructured_parameter":
            return [Local(literal=element)]  # the whole element, spread by bind_block
        items = element if isinstance(element, list) and count > 1 else [element]
        return [Local(item if isinstance(item, str) else None, literal=item) for item in items]

    def bind_block(self, block: Node, values: list[Local]) -> None:
        parameters = block.child_by_field_name("parameters")
        if parameters is None:
            return
        for index, parameter in enumerate(parameters.named_children):
            if parameter.type == "destructured_parameter":
                # `|(from_table, column)|`: each name gets its item of the element, when it is known.
                given = values[index] if index < len(values) else None
                items = given.literal if given is not None and isinstance(given.literal, list) else []
                names = [c for c in parameter.named_children if c.type == "identifier"]
                for position, named in enumerate(names):
                    item = items[position] if position < len(items) else None
                    self.locals[self.text(named)] = Local(
                        item if isinstance(item, str) else None, literal=item
                    )
                continue
            name = parameter.child_by_field_name("name") if parameter.type != "identifier" else parameter
            self.locals[self.text(name if name is not None else parameter)] = (
                values[index] if index < len(values) else Local()
            )

    def walk_block(self, block: Node) -> None:
        body = block.child_by_field_name("body")
        if body is not None:
            self.walk(body)

    def follow(self, method: str, args: list[Node], block: Node | None) -> None:
        """Walk a private method of the migration where it is called (guarded against recursion)."""
        for arg in args:
            if arg.kind_id not in LITERAL_IDS:
                self.visit(arg)
        if method in self.stack:
            return
        key = (method, " ".join(self.follow_key(a) for a in args))
        if key in self.followed:
            return
        self.followed.add(key)
        definition = self.methods[method]
        saved = self.locals
        self.locals = {}
        parameters = definition.child_by_field_name("parameters")
        positional = [a for a in args if a.type not in ("pair", "hash", "block_argument")]
        for index, parameter in enumerate(parameters.named_children if parameters is not None else []):
            name = parameter.child_by_field_name("name") if parameter.type != "identifier" else parameter
            value = positional[index] if index < len(positional) and parameter.type == "identifier" else None
            if parameter.type in ("keyword_parameter", "optional_parameter") and name is not None:
                value = self.keyword(args, self.text(name)) or parameter.child_by_field_name("value")
            local = Local(value=value)
            if parameter.type == "hash_splat_parameter":
                local.kind = "ruby"  # **options: always a Hash
            elif value is not None and value.type == "identifier" and self.text(value) in saved:
                # A local of the caller passed on: resolve it in the caller's scope, keep the result.
                outer = saved[self.text(value)]
                with_saved, self.locals = self.locals, saved
                literal = self.literal(value)
                table = self.relation_table(value)
                self.locals = with_saved
                local = Local(table, None, outer.kind, literal)
            if (
                local.value is not None
                and value is not None
                and value.type in ("call", "identifier", "constant", "scope_resolution")
            ):
                with_saved = self.locals
                self.locals = saved
                local.table = self.relation_table(value)
                self.locals = with_saved
            self.locals[self.text(name if name is not None else parameter)] = local
        self.stack.append(method)
        saved_yields, self.yields = self.yields, [] if block is not None else None
        try:
            self.walk(body_of(definition))
        finally:
            self.stack.pop()
            self.locals = saved
            yielded, self.yields = self.yields, saved_yields
        if block is not None:
            # The block's parameters are what the method yields (its first `yield`), as far as it is known.
            self.bind_block(block, yielded[0] if yielded else [])
            self.walk_block(block)

    def yielded_locals(self, node: Node) -> list[Local]:
        """What a followed method yields: tables and static values, resolved where the yield is."""
        values = []
        arguments = node.named_children[0] if node.named_children else None
        for arg in arguments.named_children if arguments is not None else []:
            literal = self.literal(arg)
            table = None
            if not isinstance(literal, str) and arg.type in (
                "identifier",
                "call",
                "constant",
                "scope_resolution",
            ):
                table = self.relation_table(arg)
            local = self.locals.get(self.text(arg)) if arg.type == "identifier" else None
            values.append(Local(table, None, local.kind if local is not None else None, literal))
        return values

    def follow_model_method(
        self, method: str, receiver: Node | None, args: list[Node], block: Node | None
    ) -> None:
        """A scope or method defined on an inner model class: walk it with that model as `self`."""
        definition, table = self.model_methods[method]
        self.visit_parts(receiver, args, None)
        if definition is not None and f"model:{method}" not in self.stack:
            saved_model, saved_locals, saved_helper = self.current_model, self.locals, self.in_helper_class
            self.current_model, self.locals, self.in_helper_class = table, {}, table is None
            parameters = definition.child_by_field_name("parameters")
            for parameter in parameters.named_children if parameters is not None else []:
                named = parameter.child_by_field_name("name") if parameter.type != "identifier" else parameter
                self.locals[self.text(named if named is not None else parameter)] = Local()
            self.stack.append(f"model:{method}")
            try:
                self.walk(body_of(definition))
            finally:
                self.stack.pop()
                self.current_model, self.locals, self.in_helper_class = (
                    saved_model,
                    saved_locals,
                    saved_helper,
                )
        if block is not None:
            self.bind_block(block, [Local(table=table)])
            self.walk_block(block)
