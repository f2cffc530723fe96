"""The state one file's reading shares between its parts (declarations, values, walk, dispatch, ...).

Each part of the reader (a mixin in its own module) subclasses ReaderState, so the attributes are declared
once, with their types, and the reader stays a slotted object (the walk reads them on its hot path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.classification.config import Catalogue, ClassifierConfig, TableList
from include.classification.result import Operation
from include.classification.scope import Local

if TYPE_CHECKING:
    from tree_sitter import Node


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
