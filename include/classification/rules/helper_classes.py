"""GitLab's bounded helper classes (catalogue `helper_classes:`, e.g. a partitioning or a table-sized helper):
a constructor does nothing on the database; each catalogued method has its class and table; a method the
catalogue does not list is `unknown`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.classification.config import HelperClass

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.state import ReaderState

C = MigrationClass


def helper_instance(reader: ReaderState, node: Node) -> tuple[HelperClass, str | None] | None:
    """The bounded helper class a receiver is an instance of (`X.on_table(t)`, a local holding one)."""
    kind = node.type
    if kind == "identifier":
        local = reader.locals.get(reader.text(node))
        if local is not None and local.instance is not None:
            return local.instance, local.table
        return None
    if kind == "parenthesized_statements" and node.named_children:
        return helper_instance(reader, node.named_children[-1])
    if kind != "call":
        return None
    inner = node.child_by_field_name("receiver")
    if inner is None or inner.type not in ("constant", "scope_resolution"):
        return None
    helper_class = reader.catalogue.helper_classes.get(reader.text(inner).removeprefix("::"))
    method = reader.text(node.child_by_field_name("method"))
    if helper_class is None or method not in helper_class.constructors:
        return None
    arguments = node.child_by_field_name("arguments")
    return helper_class, reader.rule_table(helper_class.table, arguments.named_children if arguments else [])


def helper_class_call(
    reader: ReaderState,
    method: str,
    receiver: Node,
    receiver_text: str,
    args: list[Node],
    block: Node | None,
    line: int,
) -> bool:
    """A call on one of GitLab's bounded helper classes: its catalogued class, else `unknown`."""
    table = None
    if receiver.type in ("constant", "scope_resolution"):
        helper_class = reader.catalogue.helper_classes.get(receiver_text)
        if helper_class is None:
            return False
        if method in helper_class.constructors:
            reader.visit_parts(None, args, block)  # building an instance does nothing on the database
            return True
    else:
        found = helper_instance(reader, receiver)
        if found is None:
            return False
        helper_class, table = found
        constructor = receiver if receiver.type == "call" else None
        if constructor is not None:
            arguments = constructor.child_by_field_name("arguments")
            reader.visit_parts(None, arguments.named_children if arguments else [], None)
    rule = helper_class.methods.get(method)
    helper = f"{helper_class.name}.{method}"
    if rule is None:
        reader.add(
            helper,
            table,
            line,
            C.UNKNOWN,
            f"{helper_class.name} has no catalogued method `{method}`: add it to helper_classes",
        )
    else:
        reader.add(helper, reader.rule_table(rule.table, args) or table, line, rule.cls, rule.rationale)
    reader.visit_parts(None, args, block)
    return True
