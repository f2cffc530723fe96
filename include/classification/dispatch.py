"""Dispatch: which rule judges one call. The order is the precedence: the migration's own methods, catalogued
helpers, dynamic calls, helper classes, the special rules of rules/, SQL calls, qualified and receiver
methods, neutral calls, inner models' methods, attribute reads; anything else is `unknown`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.classification.rails import (
    ACTION_WORDS,
    ATTRIBUTE,
    SENDERS,
)
from include.classification.rules import SPECIAL_RULES
from include.classification.rules.background_migrations import job_class_code
from include.classification.rules.helper_classes import helper_class_call
from include.classification.rules.rails_cache import RAILS_CACHE
from include.classification.state import ReaderState
from include.classification.tree import (
    STATEMENT_PARENTS,
    value_discarded,
)

if TYPE_CHECKING:
    from tree_sitter import Node

    pass

C = MigrationClass


class Dispatcher(ReaderState):
    """Part of the migration reader (engine.MigrationReader): dispatch."""

    __slots__ = ()

    def visit_call(self, node: Node) -> None:
        method_node = node.child_by_field_name("method")
        arguments = node.child_by_field_name("arguments")
        self.dispatch(
            node,
            self.text(method_node) if method_node is not None else "call",
            node.child_by_field_name("receiver"),
            arguments.named_children if arguments is not None else [],
            node.child_by_field_name("block"),
        )

    def dispatch(
        self, node: Node, method: str, receiver: Node | None, args: list[Node], block: Node | None
    ) -> None:
        """Classify one call, then walk what it runs (receiver chain, arguments, block)."""
        catalogue = self.catalogue
        line = node.start_point[0] + 1
        if receiver is None:
            # The migration's own methods: follow them (once per argument list, never recursively).
            if method in self.methods:
                self.follow(method, args, block)
                return
            rule = catalogue.helpers.get(method)
            if rule is not None:  # the common case: a migration helper
                self.add_helper(rule, method, args, block, line)
                return
        receiver_text = self.text(receiver).removeprefix("::") if receiver is not None else ""
        bare = receiver is None or receiver_text == "self"
        if bare and method in self.methods:
            self.follow(method, args, block)
            return
        if method in SENDERS and args and args[0].type in ("simple_symbol", "string"):
            target = self.literal(args[0])
            if isinstance(target, str) and target and target not in SENDERS:
                # `send(:helper, ...)` with a literal name is a plain call of that helper.
                self.dispatch(node, target, receiver, args[1:], block)
                return
        if method in catalogue.dynamic_methods and receiver_text != RAILS_CACHE:
            self.add(
                f"{receiver_text + '.' if receiver_text else ''}{method}",
                None,
                line,
                C.UNKNOWN,
                "dynamic call: the code it runs is computed at run time",
            )
            self.visit_parts(receiver, args, block)
            return
        if (
            receiver is not None
            and self.catalogue.helper_classes
            and helper_class_call(self, method, receiver, receiver_text, args, block, line)
        ):
            return
        for special in SPECIAL_RULES:  # the rule families of rules/, in their precedence
            if special(self, node, method, receiver, receiver_text, args, block, line):
                return
        if method in ("call", "yield", "[]") and receiver is not None and receiver.type == "identifier":
            local = self.locals.get(receiver_text)
            if local is not None and local.value is not None and local.value.type == "lambda":
                # A lambda held in a local (or a parameter's default): calling it runs its body here.
                self.visit_parts(None, args, block)
                self.visit(local.value)
                return
        if method in catalogue.sql_methods and self.on_connection(receiver, receiver_text):
            first = next((a for a in args if a.type not in ("pair", "hash", "block_argument")), None)
            if method not in ("update", "delete", "insert") or (
                first is not None
                and first.type in ("string", "heredoc_beginning", "constant", "identifier", "call")
                and self.sql_text(first) is not None
            ):
                self.add_sql(method, receiver_text, first, line)
                self.visit_parts(None, args[1:], block)
                return
        qualified = catalogue.qualified.get(f"{receiver_text}.{method}") if receiver_text else None
        if qualified is not None:
            self.add_rule(qualified, f"{receiver_text}.{method}", args, line)
            self.visit_parts(None, args, block)
            return
        if (f"{receiver_text}.{method}" if receiver_text else method) in self.predicates:
            return
        if method[-1] == "?" and receiver_text in catalogue.guard_receivers:
            return  # an environment check the catalogue has no value for: a guard, both paths count
        if (
            receiver_text in catalogue.setting_readers
            and not args
            and block is None
            and method[-1] != "!"
            and not ACTION_WORDS.search(method)
        ):
            self.add(f"{receiver_text}.{method}", None, line, C.NOOP, "reads one application setting")
            return
        rule = catalogue.helpers.get(method)
        if rule is not None and (bare or self.on_connection(receiver, receiver_text)):
            self.add_helper(rule, method, args, block, line)
            return
        if receiver is not None and receiver.type == "identifier" and rule is None:
            local = self.locals.get(receiver_text)
            if (
                local is not None
                and local.kind in ("ruby", "builder")
                and method not in catalogue.receiver_methods
            ):
                # `jobs.clear`, `ids.uniq!`: a method of a plain Hash/Array/Set built in the migration;
                # `order.apply_cursor_conditions(...)`: a method of a query builder (catalogue).
                self.visit_parts(None, args, block, iterating=block is not None)
                return
        rule = catalogue.receiver_methods.get(method)
        if rule is not None and receiver is not None and receiver.type == "identifier":
            local = self.locals.get(receiver_text)
            if local is not None and (local.kind == "ruby" or (local.kind == "copy" and method == "delete")):
                # `options.delete(:key)`, `ids.insert(0, x)`: a Ruby collection method, not SQL. A `dup`
                # may be an unsaved record copy: its `delete` deletes no row, but its `update` inserts one.
                self.visit_parts(None, args, block)
                return
        if rule is not None:
            table = None
            if rule.cls is not C.BACKGROUND:
                table = self.relation_table(receiver) if receiver is not None else self.current_model
            helper = f"{self.root_text(receiver)}.{method}" if receiver is not None else method
            self.add(helper, table, line, rule.cls, rule.rationale)
            self.visit_parts(receiver, args, block)
            return
        neutral_receiver = self.neutral_receiver(receiver_text) and (
            method == "new" or not job_class_code(receiver_text) or self.neutral_receiver_exact(receiver_text)
        )
        if neutral_receiver or method in catalogue.neutral_methods:
            table = None
            if receiver is None and args and method in catalogue.table_iterators:
                table = self.table_name(args[0])  # each_batch(:table, scope: ...) { |batch| ... }
            self.visit_parts(
                None if neutral_receiver else receiver, args, block, iterating=block is not None, table=table
            )
            return
        if method in self.generated_writes and receiver is not None:
            # A write a model declaration defines (`has_internal_id` -> `ensure_project_iid!`).
            table = self.generated_writes[method]
            self.add(
                f"{self.root_text(receiver)}.{method}", table, line, C.DATA, f"allocates an id in {table}"
            )
            self.visit_parts(receiver, args, block)
            return
        if method in self.model_methods and (
            receiver is not None or self.current_model is not None or self.in_helper_class
        ):
            self.follow_model_method(method, receiver, args, block)
            return
        if receiver is not None and receiver.type in (
            "identifier",
            "call",
            "instance_variable",
            "element_reference",
        ):
            root = receiver
            while root.type in ("call", "element_reference"):
                next_root = root.child_by_field_name("receiver") or root.child_by_field_name("object")
                if next_root is None:
                    break
                root = next_root
            # A value read off a local, or off the result of a call the walk judges on its own.
            plain_root = root.type in ("identifier", "instance_variable") or receiver.type == "call"
            if (
                not args
                and block is None
                and plain_root
                and (
                    method.endswith("?")
                    or ATTRIBUTE.search(method)
                    or (
                        not method.endswith("!")
                        and not ACTION_WORDS.search(method)
                        and not value_discarded(node)  # `project.rename_repo if ...` runs for its effect
                    )
                    or (
                        not method.endswith("!")
                        and node.parent is not None
                        and node.parent.type not in STATEMENT_PARENTS
                        and self.plain_model_root(root)
                    )
                )
            ):
                self.visit_parts(receiver, args, block)
                return  # reading an attribute of a local value
        if (
            bare
            and not args
            and block is None
            and self.current_model
            and (
                method[-1] == "?"
                or (method[-1] != "!" and not ACTION_WORDS.search(method) and not value_discarded(node))
            )
        ):
            return  # inside an inner model's method: a predicate or a column of the record (`self.raw_metadata`)
        what = f"{self.root_text(receiver)}.{method}" if receiver is not None else method
        origin = receiver
        while origin is not None and origin.type in ("call", "element_reference"):
            origin = origin.child_by_field_name("receiver") or origin.child_by_field_name("object")
        if receiver is None:
            rationale = "helper not in the catalogue: what it does cannot be bounded"
        elif origin is not None and origin.type in ("constant", "scope_resolution"):
            rationale = "calls into application code: its effect on the database cannot be bounded"
        else:
            rationale = "call the catalogue does not know: its effect on the database cannot be bounded"
        self.add(what, None, line, C.UNKNOWN, rationale)
        self.visit_parts(receiver, args, block)
