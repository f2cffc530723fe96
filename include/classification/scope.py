"""What the walk knows of a local variable (or a parameter, a block argument) while it reads a method."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.config import HelperClass


class Local:
    """What the engine knows of a local variable: the table of the relation it holds, or its value node.

    `literal` is a static value already worked out elsewhere (an element of a constant array, an argument
    a private method yields): it is read as is, never re-resolved in the scope the local is used in.
    """

    __slots__ = ("table", "value", "kind", "literal", "instance", "pieces")

    def __init__(
        self,
        table: str | None = None,
        value: Node | None = None,
        kind: str | None = None,
        literal: Any = None,
    ) -> None:
        self.table = table
        self.value = value
        # "redis", "sidekiq", "reversible", "helper": a handle that is not a database relation;
        # "ruby": a plain Ruby Hash/Array/Set built in the migration (its `delete` is not a DELETE).
        self.kind = kind
        self.literal = literal
        self.instance: HelperClass | None = None  # a bounded helper class instance (kind "helper_class")
        self.pieces: list[Node | None] | None = None  # a string grown with `+=`: its fragments in order
