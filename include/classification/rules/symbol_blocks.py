"""Methods passed as blocks (`relation.each_batch(&:delete_all)`): the symbol's method runs on every element,
judged like a call on the relation (catalogued receiver methods, inner models' methods); an unknown one that
is not an attribute read is `unknown`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.classification.rails import ATTRIBUTE

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.state import ReaderState

C = MigrationClass


def symbol_block(reader: ReaderState, argument: Node, receiver: Node | None, table: str | None) -> None:
    """`relation.each_batch(&:delete_all)`: the method named by the symbol runs on every element."""
    symbol = argument.named_children[0] if argument.named_children else None
    if symbol is None or symbol.type != "simple_symbol":
        return
    method = reader.text(symbol)[1:]
    line = argument.start_point[0] + 1
    if method in reader.model_methods:
        # A method of an inner model (`find_each(&:recompute_fingerprint)`): walked like a call on it.
        reader.follow_model_method(method, None, [], None)
        return
    rule = reader.catalogue.receiver_methods.get(method)
    if rule is not None:
        if table is None and rule.cls is not C.BACKGROUND:
            table = reader.relation_table(receiver) if receiver is not None else reader.current_model
        reader.add(f"&:{method}", table, line, rule.cls, rule.rationale)
    elif method not in reader.catalogue.neutral_methods and not ATTRIBUTE.search(method):
        reader.add(
            f"&:{method}",
            None,
            line,
            C.UNKNOWN,
            f"method passed as a block (&:{method}) that the catalogue does not know",
        )
