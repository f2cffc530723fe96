"""tree-sitter-ruby set-up and the grammar's node kinds as the classifier sorts them.

The parser is created on first use (never at import time: declaring a DAG must not load tree-sitter), and
every node kind gets one walk action, looked up by its integer id on the hot path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Language, Node, Parser, Query

_LANGUAGE: Language | None = None
_PARSER: Parser | None = None
_QUERIES: dict[str, Query] = {}
_KINDS: dict[str, int] = {}
# What `visit` does with a node, by grammar kind id (an int lookup instead of a chain of type-string tests).
V_CHILDREN, V_LITERAL, V_CALL, V_IDENTIFIER, V_IF, V_MODIFIER, V_TERNARY, V_JUMP = range(8)
V_YIELD, V_ASSIGNMENT, V_LAMBDA, V_EXCEPTION_VARIABLE = range(8, 12)
VISIT_ACTIONS: dict[int, int] = {}
# Every kind id whose type is in LITERAL_KINDS (a type can have several ids: aliases in the grammar).
LITERAL_IDS: set[int] = set()

LITERAL_KINDS = frozenset(
    {
        "comment",
        "string_content",
        "heredoc_content",
        "heredoc_body",
        "escape_sequence",
        "simple_symbol",
        "hash_key_symbol",
        "integer",
        "float",
        "rational",
        "complex",
        "true",
        "false",
        "nil",
        "constant",
        "scope_resolution",
        "self",
        "string_array",
        "symbol_array",
        "regex",
        "character",
        "method",
        "singleton_method",
        "class",
        "module",
        "singleton_class",
        "empty_statement",
        "uninterpreted",
    }
)

VISIT_BY_TYPE = {
    "call": V_CALL,
    "identifier": V_IDENTIFIER,
    "if": V_IF,
    "unless": V_IF,
    "elsif": V_IF,
    "if_modifier": V_MODIFIER,
    "unless_modifier": V_MODIFIER,
    "conditional": V_TERNARY,
    "return": V_JUMP,
    "next": V_JUMP,
    "break": V_JUMP,
    "yield": V_YIELD,
    "assignment": V_ASSIGNMENT,
    "operator_assignment": V_ASSIGNMENT,
    "lambda": V_LAMBDA,
    "exception_variable": V_EXCEPTION_VARIABLE,
}


def get_language() -> Language:
    """tree-sitter-ruby's grammar, loaded on first use (never at import time)."""
    global _LANGUAGE
    if _LANGUAGE is None:
        import tree_sitter_ruby
        from tree_sitter import Language

        _LANGUAGE = Language(tree_sitter_ruby.language())
    return _LANGUAGE


def get_parser() -> Parser:
    """tree-sitter-ruby parser, created on first use (never at import time)."""
    global _PARSER
    if _PARSER is None:
        from tree_sitter import Parser

        _PARSER = Parser(get_language())
    return _PARSER


def captures(pattern: str, node: Node) -> dict[str, list[Node]]:
    """Nodes matched by a tree-sitter query (runs in C: no Python walk of the whole tree)."""
    from tree_sitter import Query, QueryCursor

    query = _QUERIES.get(pattern)
    if query is None:
        query = _QUERIES[pattern] = Query(get_language(), pattern)
    return QueryCursor(query).captures(node)


def node_kinds() -> dict[str, int]:
    """Grammar ids of the node kinds read on the hot path (an int compare is cheaper than a type string)."""
    if not _KINDS:
        language = get_language()
        for name in ("method", "assignment", "call", "identifier", "class", "singleton_method"):
            kind_id = language.id_for_node_kind(name, True)
            if kind_id is None:
                raise ValueError(f"tree-sitter-ruby has no node kind {name!r}")
            _KINDS[name] = kind_id
        for kind_id in range(language.node_kind_count):
            visit_action(kind_id, language.node_kind_for_id(kind_id))
    return _KINDS


def visit_action(kind_id: int, kind: str | None) -> int:
    """The _V_* action for a node kind, from its type name (remembered per id)."""
    if kind in LITERAL_KINDS:
        action = V_LITERAL
        LITERAL_IDS.add(kind_id)
    else:
        action = VISIT_BY_TYPE.get(kind, V_CHILDREN) if kind is not None else V_CHILDREN
    VISIT_ACTIONS[kind_id] = action
    return action


# Parents of a call in statement position: its value is discarded, so it runs for its effect.
STATEMENT_PARENTS = frozenset(
    {"body_statement", "block_body", "then", "else", "do", "begin", "ensure", "program"}
)
MODIFIERS = frozenset(
    {"if_modifier", "unless_modifier", "while_modifier", "until_modifier", "rescue_modifier"}
)


def value_discarded(node: Node) -> bool:
    """True when a call is a statement of its own (its value unused): it is made for what it does."""
    parent = node.parent
    if parent is None:
        return False
    if parent.type in STATEMENT_PARENTS:
        return True
    return parent.type in MODIFIERS and parent.child_by_field_name("body") == node


def required_child(node: Node, field: str) -> Node:
    """The child in a field the Ruby grammar requires (an `if`'s condition, a method's name).

    tree-sitter types every field as optional; in a tree without syntax errors (the only kind the reader
    walks) these are always there, so a missing one is a broken invariant, said plainly.
    """
    child = node.child_by_field_name(field)
    if child is None:
        raise ValueError(f"{node.type} at line {node.start_point[0] + 1} has no {field}")
    return child


def body_of(node: Node | None) -> Node | None:
    """The statements of a method, class, module or block (None when it has none)."""
    if node is None:
        return None
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    for child in node.named_children:
        if child.type in ("body_statement", "block_body"):
            return child
    return None


def first_error_line(root: Node) -> int:
    """The line of the first syntax error tree-sitter marked (ERROR or missing node)."""
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            return node.start_point[0] + 1
        if node.has_error:
            stack.extend(reversed(node.children))
    return 1
