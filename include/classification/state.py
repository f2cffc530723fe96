"""The state one file's reading shares between its parts (declarations, values, walk, dispatch, ...).

Each part of the reader (a mixin in its own module) subclasses ReaderState, so the attributes are declared
once, with their types, and the reader stays a slotted object (the walk reads them on its hot path).

The parts call each other through `self`, and the rules of rules/ get the reader: ReaderState also
declares, for the type checker only, the methods one part offers the others, so that mypy sees the whole
reader's shape. At run time they do not exist here (the class body skips them): every call goes straight
to the part that defines it, and mypy checks each definition against its declaration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.classification.config import Catalogue, ClassifierConfig, TableList
from include.classification.result import Operation
from include.classification.scope import Local

if TYPE_CHECKING:
    from tree_sitter import Node

    from include.classification.classes import MigrationClass
    from include.classification.config import HelperRule


class ReaderState:
    """What the reader knows of one file while it reads it."""

    __slots__ = (
        "all_constants",
        "associations",
        "catalogue",
        "config",
        "const_assignments",
        "const_nodes",
        "const_values",
        "current_model",
        "data",
        "followed",
        "generated_writes",
        "heredocs",
        "indexes_added",
        "indexes_removed",
        "locals",
        "methods",
        "model_methods",
        "models",
        "operations",
        "path",
        "plain_models",
        "predicates",
        "reasons",
        "root",
        "stack",
        "tables",
        "yields",
        "in_helper_class",
    )

    def __init__(self, data: bytes, path: str, config: ClassifierConfig) -> None:
        self.data = data
        self.path = path
        self.config = config
        self.catalogue: Catalogue = config.catalogue()
        self.tables: TableList = config.tables()
        self.predicates = self.catalogue.predicates.get(config.target, {})
        self.operations: list[Operation] = []
        self.reasons: list[str] = []
        self.const_nodes: dict[str, Node | None] = {}
        self.const_values: dict[str, Any] = {}  # static values (None: not static)
        self.methods: dict[str, Node] = {}
        self.models: dict[str, str] = {}
        self.plain_models: set[str] = set()
        self.model_methods: dict[str, tuple[Node | None, str | None]] = {}
        self.generated_writes: dict[str, str] = {}  # a method a model declaration defines -> what it writes
        self.associations: dict[str, str | None] = {}  # an inner model's association -> its target's table
        self.heredocs: dict[int, Node] | None = None
        self.locals: dict[str, Local] = {}
        self.stack: list[str] = []
        self.followed: set[tuple[str, str]] = set()
        self.current_model: str | None = None
        self.indexes_added: dict[str, int] = {}
        self.indexes_removed: dict[str, int] = {}
        self.root: Node | None = None
        self.yields: list[list[Local]] | None = None  # what the followed method yields, when it has a block
        self.const_assignments: list[Node] = []
        self.all_constants = False
        self.in_helper_class = False  # walking a method of a non-model class defined in the migration

    if TYPE_CHECKING:
        # What the parts call on each other (and the rules on the reader), by the module that defines it.

        # declarations.py
        def collect_constants(self, root: Node) -> None: ...

        # values.py
        @staticmethod
        def text(node: Node | None) -> str: ...
        def const_node(self, name: str) -> Node | None: ...
        def literal(self, node: Node | None) -> Any: ...
        def table_name(self, node: Node | None) -> str | None: ...
        def relation_table(self, node: Node | None, depth: int = 0) -> str | None: ...
        def constant_path(self, node: Node | None, depth: int = 0) -> str | None: ...
        def keyword(self, args: list[Node], key: str) -> Node | None: ...
        def heredoc_body(self, beginning: Node) -> Node | None: ...
        def rule_table(self, spec: tuple[int | str, ...], args: list[Node]) -> str | None: ...
        def root_text(self, node: Node) -> str: ...
        def on_connection(self, receiver: Node | None, receiver_text: str) -> bool: ...
        def neutral_receiver_exact(self, receiver_text: str) -> bool: ...
        def neutral_receiver(self, receiver_text: str) -> bool: ...
        def plain_model_root(self, root: Node | None, depth: int = 0) -> bool: ...
        def builds_collection(self, node: Node | None, depth: int = 0) -> str | None: ...
        def follow_key(self, node: Node) -> str: ...

        # sqltext.py
        def sql_text(self, node: Node | None, depth: int = 0) -> str | None: ...
        def method_sql(self, name: str, args: list[Node], depth: int) -> str | None: ...

        # guards.py
        def truth(self, node: Node | None, depth: int = 0) -> bool | None: ...
        def note_guard(self, node: Node, condition: Node, value: bool, skipped: bool) -> None: ...

        # walk.py
        def visit(self, node: Node) -> bool: ...
        def visit_parts(
            self,
            receiver: Node | None,
            args: list[Node],
            block: Node | None,
            iterating: bool = False,
            table: str | None = None,
        ) -> None: ...
        def bind_block(self, block: Node, values: list[Local]) -> None: ...
        def walk_block(self, block: Node) -> None: ...
        def follow(self, method: str, args: list[Node], block: Node | None) -> None: ...
        def follow_model_method(
            self, method: str, receiver: Node | None, args: list[Node], block: Node | None
        ) -> None: ...

        # dispatch.py
        def visit_call(self, node: Node) -> None: ...
        def dispatch(
            self, node: Node, method: str, receiver: Node | None, args: list[Node], block: Node | None
        ) -> None: ...

        # operations.py
        def add(
            self, helper: str, table: str | None, line: int, cls: MigrationClass, rationale: str
        ) -> None: ...
        def add_rule(self, rule: HelperRule, helper: str, args: list[Node], line: int) -> None: ...
        def add_helper(
            self, rule: HelperRule, method: str, args: list[Node], block: Node | None, line: int
        ) -> None: ...
        def add_sql(self, method: str, receiver_text: str, argument: Node | None, line: int) -> None: ...
