"""Guards: conditions whose value on the target is known (`Gitlab.com?`, `Gitlab.dev_or_test_env?`, a
private predicate returning one), so that code the target never runs is skipped and said so."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.classification.rails import (
    SPACE,
)
from include.classification.state import ReaderState
from include.classification.tree import (
    body_of,
)

if TYPE_CHECKING:
    from tree_sitter import Node

    pass

C = MigrationClass


class GuardReader(ReaderState):
    """Part of the migration reader (engine.MigrationReader): guards."""

    __slots__ = ()

    def truth(self, node: Node | None, depth: int = 0) -> bool | None:
        """Value of a condition on the target (`Gitlab.com?`, `!Gitlab.dev_or_test_env?`, ...); None if unknown."""
        if node is None or depth > 10:
            return None
        kind = node.type
        if kind == "parenthesized_statements":
            return self.truth(node.named_children[-1], depth + 1) if node.named_children else None
        if kind == "unary":
            operand = node.child_by_field_name("operand")
            operator = self.text(node.child_by_field_name("operator"))
            if operator in ("!", "not"):
                value = self.truth(operand, depth + 1)
                return None if value is None else not value
            return None
        if kind == "binary":
            operator = self.text(node.child_by_field_name("operator"))
            if operator in ("&&", "and", "||", "or"):
                left = self.truth(node.child_by_field_name("left"), depth + 1)
                right = self.truth(node.child_by_field_name("right"), depth + 1)
                if operator in ("&&", "and"):
                    if left is False or right is False:
                        return False
                    return True if left and right else None
                if left is True or right is True:
                    return True
                return False if left is False and right is False else None
            return None
        if kind in ("true", "false", "nil"):
            return kind == "true"
        if kind in ("call", "identifier"):
            key = self.predicate_key(node)
            if key in self.predicates:
                return self.predicates[key]
            if (
                key in self.methods
                and key not in self.stack
                and (
                    kind == "identifier"
                    or (
                        node.child_by_field_name("receiver") is None
                        and node.child_by_field_name("arguments") is None
                    )
                )
            ):
                body = body_of(self.methods[key])
                statements = (
                    [c for c in body.named_children if c.type != "comment"] if body is not None else []
                )
                if len(statements) == 1:
                    self.stack.append(key)
                    try:
                        return self.truth(statements[0], depth + 1)
                    finally:
                        self.stack.pop()
        return None

    def predicate_key(self, node: Node) -> str:
        """`Gitlab.com?` for `::Gitlab.com?`, `Feature.enabled?` for `Feature.enabled?(:flag, project)`."""
        if node.type == "call":
            receiver = node.child_by_field_name("receiver")
            method = self.text(node.child_by_field_name("method"))
            if receiver is None:
                return method
            return f"{SPACE.sub('', self.text(receiver)).removeprefix('::')}.{method}"
        return self.text(node)

    def note_guard(self, node: Node, condition: Node, value: bool, skipped: bool) -> None:
        line = node.start_point[0] + 1
        condition_text = " ".join(self.text(condition).split())
        target = self.config.target
        if skipped:
            self.reasons.append(f"skipped on {target}: code guarded by `{condition_text}` (line {line})")
        else:
            self.reasons.append(
                f"returns early on {target}: `{' '.join(self.text(node).split())}` (line {line})"
            )
