"""The classifier: reads a migration with tree-sitter-ruby and classifies what its `up` does at PDM time.

The most restrictive operation wins; anything the engine cannot bound is `unknown` with the reason, and
one bad file is a result, never an exception.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from include.classification.annotation import Annotation, find_annotation
from include.classification.classes import MigrationClass, most_restrictive
from include.classification.config import Catalogue, ClassifierConfig, HelperClass, HelperRule, TableList
from include.classification.result import ClassificationResult, Operation
from include.classification.sql import DYNAMIC, SqlVerdict, classify_sql

C = MigrationClass
_FILE_NAME = re.compile(r"^(\d+)_([a-z0-9_]+)\.rb$")
_MIGRATION_SUPERCLASS = re.compile(r"Migration(\[|$)")
_MODEL_SUPERCLASS = re.compile(r"(MigrationRecord|ApplicationRecord|ActiveRecord::Base|SharedModel|Model)$")
_CONFLICT_MARKER = re.compile(rb"^(<<<<<<<( |$)|=======\s*$|>>>>>>>( |$))", re.MULTILINE)
_SPACE = re.compile(r"\s+|\(\)")
_TABLE_SENSITIVE = (C.DATA, C.SCHEMA_HEAVY)
_SIZE_RANK = {None: 0, "large": 1, "over_limit": 2}
_DECLARATIONS = frozenset(
    {b"restrict_gitlab_migration", b"milestone", b"disable_ddl_transaction!", b"enable_lock_retries!"}
)
_DECLARATION_STARTS = tuple(_DECLARATIONS)
# A declaration as nearly every migration writes it (no parentheses, a plain literal argument), for which
# the text alone gives what read_declaration would find in the tree; anything else is read from the tree.
_SIMPLE_DECLARATION = re.compile(
    rb"(disable_ddl_transaction!|enable_lock_retries!)"
    rb"|milestone[ \t]+(['\"])(\d+(?:\.\d+)*)\2"
    rb"|restrict_gitlab_migration[ \t]+gitlab_schema:[ \t]*:([A-Za-z_][A-Za-z0-9_]*)"
)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_KINDS: dict[str, Any] = {}
# What `visit` does with a node, by grammar kind id (an int lookup instead of a chain of type-string tests).
_V_CHILDREN, _V_LITERAL, _V_CALL, _V_IDENTIFIER, _V_IF, _V_MODIFIER, _V_TERNARY, _V_JUMP = range(8)
_V_YIELD, _V_ASSIGNMENT, _V_LAMBDA, _V_EXCEPTION_VARIABLE = range(8, 12)
_VISIT_ACTIONS: dict[int, int] = {}
# Every kind id whose type is in _LITERALS (a type can have several ids: aliases in the grammar).
_LITERAL_IDS: set[int] = set()


def _kinds() -> dict[str, Any]:
    """Grammar ids of the node kinds read on the hot path (an int compare is cheaper than a type string)."""
    if not _KINDS:
        _parser()
        for name in ("method", "assignment", "call", "identifier", "class", "singleton_method"):
            _KINDS[name] = _LANGUAGE.id_for_node_kind(name, True)
        for kind_id in range(_LANGUAGE.node_kind_count):
            _visit_action(kind_id, _LANGUAGE.node_kind_for_id(kind_id))
    return _KINDS


def _visit_action(kind_id: int, kind: str | None) -> int:
    """The _V_* action for a node kind, from its type name (remembered per id)."""
    if kind in _LITERALS:
        action = _V_LITERAL
        _LITERAL_IDS.add(kind_id)
    else:
        action = _VISIT_BY_TYPE.get(kind, _V_CHILDREN)
    _VISIT_ACTIONS[kind_id] = action
    return action


_RANK = {member: index for index, member in enumerate(MigrationClass)}
_INDEX_ADDERS = frozenset({"add_concurrent_index", "add_index", "add_concurrent_partitioned_index"})
_INDEX_REMOVERS = frozenset(
    {
        "remove_concurrent_index_by_name",
        "remove_concurrent_index",
        "remove_index",
        "remove_concurrent_partitioned_index_by_name",
    }
)
_SENDERS = frozenset({"send", "public_send", "__send__"})
_QUOTERS = frozenset({"quote_table_name", "quote_column_name", "quote_ident"})
# A query built with Arel or a relation, given as SQL: a SELECT whatever its conditions.
_SELECT_BUILDERS = frozenset({"project", "to_sql"})
# Calls whose first argument names the table of the relation they return.
_TABLE_FROM_FIRST_ARG = frozenset({"define_batchable_model", "define_model", "find_partitioned_table"})
_TO_COLLECTION = frozenset(
    {"to_h", "to_a", "to_set", "to_hash", "with_indifferent_access", "symbolize_keys", "stringify_keys"}
)
# Mixins that add batching or query helpers only (no callbacks, no writes): a model with just these is plain.
_PLAIN_MIXIN = re.compile(
    r"\(?\s*(::)?(EachBatch|FromUnion|IgnorableColumns|Gitlab::Database::PartitioningMigrationHelpers)\s*\)?|,|\s"
)
# What a model body may declare and stay plain (no associations, callbacks or application mixins).
_PLAIN_MODEL_CALLS = frozenset(
    {"include", "extend", "scope", "serialize", "ignore_column", "ignore_columns", "enum", "attribute"}
)
# Parents of a call in statement position: its value is discarded, so it runs for its effect.
_STATEMENT_PARENTS = frozenset(
    {"body_statement", "block_body", "then", "else", "do", "begin", "ensure", "program"}
)
_RUBY_COLLECTIONS = frozenset({"Hash", "Array", "Set", "::Hash", "::Array", "::Set"})
# A constant array walked element by element (`TABLES.each do |table|`): at most this many walks.
_MAX_UNROLL = 40
_TABLE_ITERATORS = frozenset({"each_batch", "each_batch_range", "each_partition", "within_each_partition"})
_STRING_METHODS = frozenset(
    {
        "squish",
        "strip",
        "strip_heredoc",
        "chomp",
        "freeze",
        "to_s",
        "dup",
        "lstrip",
        "rstrip",
        "squeeze",
        "html_safe",
    }
)
# A no-argument call on a record is read as an attribute (harmless) unless it is named for an action
# (`expire_cache`, `run`); a name that says "attribute" (`start_date`, `update_count`) is still a read.
_ATTRIBUTE = re.compile(r"_(at|on|date|id|ids|count|name|type|by|status|state|size|version|key|value)$")
_ACTION_WORDS = re.compile(
    r"^(expire|refresh|schedule|execute|perform|reset|sync|destroy|delete|update|save|remove|run|process|clear|"
    r"flush|enqueue|create|migrate|purge|cleanup|touch|recalculate|backfill|import|export|call|invoke|apply|"
    r"trigger|start|stop|drop|truncate|write|fix|repair|rebuild|reindex|recompute|populate|generate|notify|"
    r"deliver|insert|upsert|increment|decrement|enable|disable|lock|unlock|archive|transfer|move|copy)(?:_|$)"
)
_LITERALS = frozenset(
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

_VISIT_BY_TYPE = {
    "call": _V_CALL,
    "identifier": _V_IDENTIFIER,
    "if": _V_IF,
    "unless": _V_IF,
    "elsif": _V_IF,
    "if_modifier": _V_MODIFIER,
    "unless_modifier": _V_MODIFIER,
    "conditional": _V_TERNARY,
    "return": _V_JUMP,
    "next": _V_JUMP,
    "break": _V_JUMP,
    "yield": _V_YIELD,
    "assignment": _V_ASSIGNMENT,
    "operator_assignment": _V_ASSIGNMENT,
    "lambda": _V_LAMBDA,
    "exception_variable": _V_EXCEPTION_VARIABLE,
}

_LANGUAGE: Any = None
_PARSER: Any = None
_QUERIES: dict[str, Any] = {}


def _parser() -> Any:
    """tree-sitter-ruby parser, created on first use (never at import time)."""
    global _LANGUAGE, _PARSER
    if _PARSER is None:
        import tree_sitter_ruby
        from tree_sitter import Language, Parser

        _LANGUAGE = Language(tree_sitter_ruby.language())
        _PARSER = Parser(_LANGUAGE)
    return _PARSER


def _captures(pattern: str, node: Any) -> dict[str, list[Any]]:
    """Nodes matched by a tree-sitter query (runs in C: no Python walk of the whole tree)."""
    from tree_sitter import Query, QueryCursor

    query = _QUERIES.get(pattern)
    if query is None:
        _parser()
        query = _QUERIES[pattern] = Query(_LANGUAGE, pattern)
    return QueryCursor(query).captures(node)


# -- public API -------------------------------------------------------------------------------------------


def classify_path(path: str | Path, *, config: ClassifierConfig | None = None) -> ClassificationResult:
    """Classify a migration file on disk; an unreadable or oversized file is `unknown` with the reason."""
    config = config or ClassifierConfig()
    path_text = str(path)
    try:
        data = _read_bounded(path_text, config.max_bytes)
    except OSError as exc:
        return _failed(path_text, f"cannot read the file: {exc.strerror or exc}")
    return classify_source(data, path_text, config=config)


def _read_bounded(path: str, limit: int) -> bytes:
    """At most `limit + 1` bytes of a file (one more than allowed tells an oversized file apart).

    A regular file is read in one call sized from fstat: `read(limit + 1)` would allocate (and map) a
    buffer of the whole limit for every small migration, which costs more than the read itself.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        status = os.fstat(fd)
        if stat.S_ISREG(status.st_mode) and status.st_size <= limit:
            data = os.read(fd, status.st_size + 1)
            if len(data) == status.st_size:
                return data  # the whole file, as fstat saw it (no second call just to meet EOF)
            parts, total = [data], len(data)
        else:
            parts, total = [], 0
        while total <= limit:  # oversized, growing, or not a regular file: read on to EOF or the limit
            chunk = os.read(fd, min(limit + 1 - total, 1 << 16))
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def classify_source(
    source: str | bytes, path: str, *, config: ClassifierConfig | None = None
) -> ClassificationResult:
    """Classify one migration's Ruby source; `path` gives the version, the name and the expected class name.

    Never raises for a bad file: syntax errors, binary or huge files, conflict markers and the like are
    `unknown` with the reason.
    """
    config = config or ClassifierConfig()
    path = str(path)
    try:
        data = source.encode("utf-8", "surrogateescape") if isinstance(source, str) else bytes(source)
        return _MigrationReader(data, path, config).classify()
    except RecursionError:
        return _failed(path, "the file nests too deeply to analyse")
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop a run; it is the strictest class
        return _failed(path, f"could not be analysed ({type(exc).__name__}: {exc})")


def version_and_name(path: str) -> tuple[str, str]:
    """Timestamp prefix and snake-case name from a migration file name (`""` version when it has none)."""
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    match = _FILE_NAME.match(base)
    if match:
        return match.group(1), match.group(2)
    return "", base[:-3] if base.endswith(".rb") else base


def _failed(path: str, reason: str) -> ClassificationResult:
    version, name = version_and_name(path)
    return ClassificationResult(path, version, name, C.UNKNOWN, "unknown", reasons=[reason])


def _tableize(constant: str) -> str:
    """Rails' default table of a model constant: `Ci::Build` -> ci_builds, `MergeRequest` -> merge_requests."""
    snake = "_".join(
        re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", part).lower() for part in constant.split("::") if part
    )
    if snake.endswith("y") and not snake.endswith(("ay", "ey", "oy", "uy")):
        return snake[:-1] + "ies"
    if snake.endswith(("s", "x", "ch", "sh")):
        return snake + "es"
    return snake + "s"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _squash(name: str) -> str:
    return name.replace("_", "").lower()


class _Local:
    """What the engine knows of a local variable: the table of the relation it holds, or its value node.

    `literal` is a static value already worked out elsewhere (an element of a constant array, an argument
    a private method yields): it is read as is, never re-resolved in the scope the local is used in.
    """

    __slots__ = ("table", "value", "kind", "literal", "instance", "pieces")

    def __init__(
        self, table: str | None = None, value: Any = None, kind: str | None = None, literal: Any = None
    ) -> None:
        self.table = table
        self.value = value
        # "redis", "sidekiq", "reversible", "helper": a handle that is not a database relation;
        # "ruby": a plain Ruby Hash/Array/Set built in the migration (its `delete` is not a DELETE).
        self.kind = kind
        self.literal = literal
        self.instance: HelperClass | None = None  # a bounded helper class instance (kind "helper_class")
        self.pieces: list[Any] | None = None  # a string grown with `+=`: its fragments in order


class _MigrationReader:
    """One file's analysis: parse, find the migration class, walk `up`, build the result."""

    __slots__ = (
        "all_constants",
        "catalogue",
        "config",
        "const_assignments",
        "const_nodes",
        "const_values",
        "current_model",
        "data",
        "followed",
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
        self.const_nodes: dict[str, Any] = {}
        self.const_values: dict[str, Any] = {}
        self.methods: dict[str, Any] = {}
        self.models: dict[str, str] = {}
        self.plain_models: set[str] = set()
        self.model_methods: dict[str, tuple[Any, str]] = {}
        self.heredocs: dict[int, Any] | None = None
        self.locals: dict[str, _Local] = {}
        self.stack: list[str] = []
        self.followed: set[tuple[str, str]] = set()
        self.current_model: str | None = None
        self.indexes_added: dict[str, int] = {}
        self.indexes_removed: dict[str, int] = {}
        self.root: Any = None
        self.yields: list[list[_Local]] | None = None  # what the followed method yields, when it has a block
        self.const_assignments: list[Any] = []
        self.all_constants = False
        self.in_helper_class = False  # walking a method of a non-model class defined in the migration

    # -- entry ----------------------------------------------------------------------------------------------
    def classify(self) -> ClassificationResult:
        data, path = self.data, self.path
        version, name = version_and_name(path)
        if len(data) > self.config.max_bytes:
            return _failed(path, f"file is over the {self.config.max_bytes}-byte limit: not analysed")
        if b"\x00" in data:
            return _failed(path, "binary file (NUL bytes): Rails cannot load it as a migration")
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                return _failed(
                    path, f"not UTF-8 text (byte {exc.start}): Rails cannot load it as a migration"
                )
        if not data or data.isspace():
            return _failed(path, "empty file: Rails cannot load a migration from it")
        if (b"<<<<<<<" in data or b">>>>>>>" in data or b"=======" in data) and _CONFLICT_MARKER.search(data):
            line = data[: _CONFLICT_MARKER.search(data).start()].count(b"\n") + 1
            return _failed(path, f"merge-conflict marker at line {line}: Rails cannot load the file")
        tree = _parser().parse(data)
        root = tree.root_node
        if root.has_error:
            return _failed(
                path, f"Ruby syntax error near line {_first_error_line(root)}: Rails cannot load the file"
            )
        self.root = root
        klass = self.find_migration_class(root, name)
        if klass is None:
            return _failed(
                path, "no migration class (class ... < Gitlab::Database::Migration[...]) in the file"
            )
        class_name = self.text(klass.child_by_field_name("name")).rsplit("::", 1)[-1]
        if name and _squash(class_name) != _squash(name):
            expected = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
            return _failed(
                path, f"class {class_name} does not match the file name (Rails expects {expected})"
            )
        result = ClassificationResult(path, version, name, C.NOOP, "all")
        entry = self.read_class_body(klass, result)
        self.check_load_time_constants()
        if entry is None:
            self.reasons.append("no `up` or `change` method: Rails runs nothing for this migration")
        else:
            self.stack.append(entry)
            self.walk(_body(self.methods[entry]))
            self.stack.pop()
        self.finish(result)
        annotation = find_annotation(data, root) if b"pdm:" in data else None
        if annotation is not None:
            self.apply_annotation(result, annotation)
        return result

    @staticmethod
    def text(node: Any) -> str:
        return node.text.decode("utf-8", "replace") if node is not None else ""

    def find_migration_class(self, root: Any, name: str) -> Any:
        """The migration class: the one named after the file, else the first `< ...Migration[...]` class."""
        found = []
        pending = list(root.named_children)
        while pending:
            node = pending.pop(0)
            if node.type == "class":
                superclass = node.child_by_field_name("superclass")
                if superclass is not None and _MIGRATION_SUPERCLASS.search(self.text(superclass)):
                    found.append(node)
            elif node.type == "module":
                body = _body(node)
                if body is not None:
                    pending.extend(body.named_children)
        if len(found) < 2:
            return found[0] if found else None
        for node in found:
            if _squash(self.text(node.child_by_field_name("name")).rsplit("::", 1)[-1]) == _squash(name):
                return node
        return found[0]

    def collect_constants(self, root: Any) -> None:
        """Constant definitions at top level, in modules and in classes (not inside methods)."""
        pending = [root]
        while pending:
            node = pending.pop()
            for child in node.named_children:
                kind = child.type
                if kind == "assignment":
                    left = child.child_by_field_name("left")
                    if left is not None and left.type == "constant":
                        self.const_nodes.setdefault(self.text(left), child.child_by_field_name("right"))
                elif kind in ("class", "module"):
                    body = _body(child)
                    if body is not None:
                        pending.append(body)

    def read_class_body(self, klass: Any, result: ClassificationResult) -> str | None:
        """Methods, inner models and declarations of the migration class; returns the entry method."""
        body = _body(klass)
        if body is None:
            return None
        data = self.data
        kinds = _kinds()
        method_kind, assignment_kind, call_kind = kinds["method"], kinds["assignment"], kinds["call"]
        for child in body.named_children:
            kind = child.kind_id
            if kind == method_kind:
                self.methods[child.child_by_field_name("name").text.decode()] = child
            elif kind == assignment_kind:
                self.const_assignments.append(child)  # read on first use of a constant
            elif kind == call_kind or kind == kinds["identifier"]:
                start = child.start_byte
                if data.startswith(_DECLARATION_STARTS, start):
                    simple = _SIMPLE_DECLARATION.fullmatch(data, start, child.end_byte)
                    if simple is None:
                        self.read_declaration(child, result)
                    else:
                        self.read_simple_declaration(simple, result)
            elif kind == kinds["class"]:
                self.read_model(child)
            elif kind == kinds["singleton_method"]:
                method_name = self.text(child.child_by_field_name("name"))
                if method_name in ("up", "change", "down"):
                    self.methods.setdefault(method_name, child)
        for entry in ("up", "change"):
            if entry in self.methods:
                return entry
        return None

    def check_load_time_constants(self) -> None:
        """`TABLE_NAME = namespace_settings` in the class body calls a method when Rails loads the file: no
        migration method is callable there, so what runs (or whether the file loads at all) is unknown."""
        for assignment in self.const_assignments:
            right = assignment.child_by_field_name("right")
            if right is not None and right.type == "identifier":
                name = self.text(right)
                if name not in self.catalogue.neutral_methods:
                    self.add(
                        name,
                        None,
                        right.start_point[0] + 1,
                        C.UNKNOWN,
                        f"constant {self.text(assignment.child_by_field_name('left'))} is set from `{name}`, "
                        "a call made when the file loads (not a value the engine knows; it may not even load)",
                    )

    def read_simple_declaration(self, match: re.Match[bytes], result: ClassificationResult) -> None:
        """The usual spelling of a declaration, read off its text: what read_declaration makes of it."""
        flag, milestone, schema = match.group(1, 3, 4)
        if flag == b"disable_ddl_transaction!":
            result.ddl_transaction = False
        elif flag == b"enable_lock_retries!":
            result.lock_retries = True
        elif milestone is not None:
            result.milestone = milestone.decode()
        else:
            value = schema.decode()
            result.database = self.catalogue.schemas.get(value) or (
                value.removeprefix("gitlab_") or "unknown"
            )

    def read_declaration(self, node: Any, result: ClassificationResult) -> None:
        method_node = node if node.type == "identifier" else node.child_by_field_name("method")
        method = method_node.text if method_node is not None else b""
        if method not in _DECLARATIONS:
            return
        method = method.decode()
        arguments = node.child_by_field_name("arguments") if node.type == "call" else None
        args = arguments.named_children if arguments is not None else []
        if method == "restrict_gitlab_migration":
            schema = self.keyword(args, "gitlab_schema")
            value = str(self.literal(schema) or self.text(schema)).lstrip(":") if schema is not None else ""
            result.database = self.catalogue.schemas.get(value) or (
                value.removeprefix("gitlab_") or "unknown"
            )
        elif method == "milestone" and args:
            value = self.literal(args[0])
            result.milestone = str(value) if value is not None else self.text(args[0]).strip("'\"")
        elif method == "disable_ddl_transaction!":
            result.ddl_transaction = False
        elif method == "enable_lock_retries!":
            result.lock_retries = True

    def read_model(self, node: Any) -> None:
        """An inner model class: its table (`self.table_name = ...` or Rails' default) and its methods."""
        name = self.text(node.child_by_field_name("name"))
        superclass = self.text(node.child_by_field_name("superclass"))
        body = _body(node)
        table = None
        for child in body.named_children if body is not None else []:
            if (
                child.type == "assignment"
                and self.text(child.child_by_field_name("left")) == "self.table_name"
            ):
                value = self.literal(child.child_by_field_name("right"))
                table = str(value) if value is not None else None
        if table is None and not _MODEL_SUPERCLASS.search(superclass) and "::" not in superclass:
            # Not a model: a helper class of the migration (an old scheduling or job-moving helper kept in
            # the file). Its methods are walked where they are called, like the migration's own.
            for child in body.named_children if body is not None else []:
                if child.type in ("method", "singleton_method"):
                    method_name = self.text(child.child_by_field_name("name"))
                    if method_name != "initialize":
                        self.model_methods.setdefault(method_name, (child, None))
            return
        table = table or _tableize(name.rsplit("::", 1)[-1])
        self.models[name] = table
        self.models[name.rsplit("::", 1)[-1]] = table
        behaviour = [
            child
            for child in (body.named_children if body is not None else [])
            if child.type in ("call", "identifier") and not self.plain_declaration(child)
        ]
        if not behaviour:
            # Its whole behaviour is in this file: a no-argument call on its records reads a column.
            self.plain_models.update((name, name.rsplit("::", 1)[-1]))
        for child in body.named_children if body is not None else []:
            if child.type in ("method", "singleton_method"):
                self.model_methods[self.text(child.child_by_field_name("name"))] = (child, table)
            elif child.type == "call" and self.text(child.child_by_field_name("method")) == "scope":
                arguments = child.child_by_field_name("arguments")
                first = (
                    arguments.named_children[0]
                    if arguments is not None and arguments.named_children
                    else None
                )
                if first is not None and first.type == "simple_symbol":
                    self.model_methods.setdefault(self.text(first)[1:], (None, table))

    # -- values ---------------------------------------------------------------------------------------------
    def const_node(self, name: str) -> Any:
        """The value node of constant `name`: the migration class first, then the rest of the file."""
        if self.const_assignments:
            for assignment in self.const_assignments:
                left = assignment.child_by_field_name("left")
                if left is not None and left.type == "constant":
                    self.const_nodes[left.text.decode()] = assignment.child_by_field_name("right")
            self.const_assignments = []
        node = self.const_nodes.get(name)
        if node is None and not self.all_constants:
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

    def literal(self, node: Any) -> Any:
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
                key = pair.child_by_field_name("key")
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
            if method in _QUOTERS:
                # `quote_table_name(:x)` is the name x (quoted): the table stays readable in SQL.
                arguments = node.child_by_field_name("arguments")
                if arguments is not None and len(arguments.named_children) == 1:
                    value = self.literal(arguments.named_children[0])
                    return value if isinstance(value, str) else None
        if kind == "parenthesized_statements" and node.named_children:
            return self.literal(node.named_children[-1])
        return None

    def table_name(self, node: Any) -> str | None:
        """The table a helper argument names: a literal, a constant, or a model class / relation."""
        value = self.literal(node)
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return str(value[0]) if value and isinstance(value[0], str) else None
        if node is not None and node.type in ("constant", "scope_resolution", "call", "identifier"):
            return self.relation_table(node)
        return None

    def relation_table(self, node: Any, depth: int = 0) -> str | None:
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
                if method in _TABLE_FROM_FIRST_ARG or (
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
                return _tableize(name)
            if kind == "parenthesized_statements" and node.named_children:
                node = node.named_children[-1]
                continue
            if kind == "element_reference":
                node = node.child_by_field_name("object")
                continue
            return None
        return None

    def anonymous_model_table(self, node: Any) -> str | None:
        """`Class.new(ActiveRecord::Base) { self.table_name = 'x' }`: a model defined in the migration, table x.

        A class built on anything else, or without a table name it can read, has no table (None): calls on
        it are judged as calls on an unknown receiver.
        """
        arguments = node.child_by_field_name("arguments")
        parent = arguments.named_children[0] if arguments is not None and arguments.named_children else None
        if parent is None or not _MODEL_SUPERCLASS.search(self.text(parent)):
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
        body = _body(self.methods[name])
        if body is None or not body.named_children:
            return None
        self.stack.append(name)
        try:
            last = body.named_children[-1]
            if last.type in ("assignment", "operator_assignment"):
                last = last.child_by_field_name("right")
            return self.relation_table(last)
        finally:
            self.stack.pop()

    def keyword(self, args: list[Any], key: str) -> Any:
        for arg in args:
            pairs = [arg] if arg.type == "pair" else (arg.named_children if arg.type == "hash" else [])
            for pair in pairs:
                if pair.type != "pair":
                    continue
                name = self.text(pair.child_by_field_name("key")).strip(":'\" ")
                if name == key:
                    return pair.child_by_field_name("value")
        return None

    def heredoc_body(self, beginning: Any) -> Any:
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

    def sql_text(self, node: Any, depth: int = 0) -> str | None:
        """The SQL an argument holds, with run-time parts as DYNAMIC; None when it cannot be read at all."""
        if node is None or depth > 20:
            return None
        kind = node.type
        if kind in ("string", "heredoc_beginning"):
            container = self.heredoc_body(node) if kind == "heredoc_beginning" else node
            if container is None:
                return None
            parts = []
            for child in container.named_children:
                child_kind = child.type
                if child_kind in ("string_content", "heredoc_content", "escape_sequence"):
                    parts.append(self.text(child))
                elif child_kind == "interpolation":
                    inner = child.named_children[0] if child.named_children else None
                    value = self.literal(inner)
                    if isinstance(value, list):
                        value = ", ".join(str(v) for v in value)
                    parts.append(str(value) if value is not None else f" {DYNAMIC} ")
            return "".join(parts)
        if kind in ("constant", "scope_resolution"):
            name = node.child_by_field_name("name") if kind == "scope_resolution" else node
            target = self.const_node(self.text(name))
            return self.sql_text(target, depth + 1) if target is not None else None
        if kind == "identifier":
            local = self.locals.get(self.text(node))
            if local is not None and local.pieces:
                # `sql = "..."; sql += "..."`: the fragments in order.
                texts = [self.sql_text(piece, depth + 1) for piece in local.pieces]
                return "".join(text if text is not None else f" {DYNAMIC} " for text in texts)
            if local is not None and local.value is not None:
                return self.sql_text(local.value, depth + 1)
            if local is not None and isinstance(local.literal, str):
                return local.literal
            name = self.text(node)
            if local is None and name in self.methods:
                return self.method_sql(name, [], depth)
            return None
        if kind == "call":
            method = self.text(node.child_by_field_name("method"))
            receiver = node.child_by_field_name("receiver")
            if method in self.methods and (receiver is None or self.text(receiver) == "self"):
                arguments = node.child_by_field_name("arguments")
                return self.method_sql(method, arguments.named_children if arguments else [], depth)
            if receiver is not None and self.select_builder(node):
                return f"SELECT {DYNAMIC}"
            if receiver is not None and method == "to_sql":
                return self.arel_manager_sql(receiver)
            if method in _STRING_METHODS and receiver is not None:
                return self.sql_text(receiver, depth + 1)
            if method in ("format", "sprintf") and receiver is None:
                arguments = node.child_by_field_name("arguments")
                if arguments is not None and arguments.named_children:
                    return self.sql_text(arguments.named_children[0], depth + 1)
            if method == "sql" and self.text(receiver).removeprefix("::") == "Arel":
                arguments = node.child_by_field_name("arguments")
                if arguments is not None and arguments.named_children:
                    return self.sql_text(arguments.named_children[0], depth + 1)
            return None
        if kind == "binary" and self.text(node.child_by_field_name("operator")) == "%":
            return self.sql_text(node.child_by_field_name("left"), depth + 1)
        if kind == "binary" and self.text(node.child_by_field_name("operator")) == "+":
            left = self.sql_text(node.child_by_field_name("left"), depth + 1)
            right = self.sql_text(node.child_by_field_name("right"), depth + 1)
            return (left or f" {DYNAMIC} ") + (right or f" {DYNAMIC} ")
        if kind == "parenthesized_statements" and node.named_children:
            return self.sql_text(node.named_children[-1], depth + 1)
        if kind in ("if", "unless"):
            taken = self.taken_branch(node)
            return self.sql_text(taken, depth + 1) if taken is not None else None
        return None

    def taken_branch(self, node: Any) -> Any:
        """`if Gitlab::Database.postgresql? then <<-SQL ... else ... end`: the value of the branch the target
        takes, when the condition is known there (else None: both could run)."""
        value = self.truth(node.child_by_field_name("condition"))
        if value is None:
            return None
        branch = node.child_by_field_name("consequence" if value is (node.type == "if") else "alternative")
        kept = (
            [c for c in branch.named_children if c.type not in ("comment", "heredoc_body")]
            if branch is not None
            else []
        )
        return kept[-1] if kept else None

    def select_builder(self, node: Any, depth: int = 0) -> bool:
        """`table.project(...).where(...).to_sql` on an `Arel::Table`: a SELECT, whatever its conditions.

        Only a chain of query-building calls that starts at an `Arel::Table` (directly or through a local)
        and has a `project` (Arel's SELECT list) qualifies: update, delete and insert managers never do.
        """
        projected = False
        while node is not None and node.type == "call":
            method = self.text(node.child_by_field_name("method"))
            if method == "project":
                projected = True
            elif method not in _SELECT_BUILDERS and method not in self.catalogue.neutral_methods:
                return False  # anything else in the chain may build other SQL: not read as a SELECT
            node = node.child_by_field_name("receiver")
        if node is None or depth > 3:
            return False
        if node.type == "identifier":
            local = self.locals.get(self.text(node))
            value = local.value if local is not None else None
            if value is None:
                return False
            if value.type == "call" and (
                (
                    self.text(value.child_by_field_name("receiver")).removeprefix("::") == "Arel::Table"
                    and self.text(value.child_by_field_name("method")) == "new"
                )
                or self.text(value.child_by_field_name("method")) == "arel_table"
            ):
                return projected
            return projected and self.select_builder(value, depth + 1) if value.type == "call" else False
        return False

    def arel_manager_sql(self, node: Any, depth: int = 0) -> str | None:
        """`Arel::UpdateManager.new(...).table(t)...`, `Arel::DeleteManager.new(...).from(t)...`: the
        statement's kind (and table, when the Arel::Table it names is static) as SQL text."""
        table = None
        while node is not None and depth < 30:
            depth += 1
            if node.type == "identifier":
                local = self.locals.get(self.text(node))
                node = local.value if local is not None else None
                continue
            if node.type != "call":
                return None
            method = self.text(node.child_by_field_name("method"))
            receiver = node.child_by_field_name("receiver")
            arguments = node.child_by_field_name("arguments")
            first = (
                arguments.named_children[0] if arguments is not None and arguments.named_children else None
            )
            if method in ("table", "from", "into") and first is not None and table is None:
                table = self.arel_table_name(first)
            if method == "new" and receiver is not None:
                manager = self.text(receiver).removeprefix("::")
                verb = {
                    "Arel::UpdateManager": "UPDATE {t} SET",
                    "Arel::DeleteManager": "DELETE FROM {t}",
                    "Arel::InsertManager": "INSERT INTO {t}",
                }.get(manager)
                if verb is None:
                    return None
                if table is None:
                    return None  # which table it writes is not readable: its size could not count
                return verb.format(t=table) + f" {DYNAMIC}"
            node = receiver
        return None

    def arel_table_name(self, node: Any) -> str | None:
        """The table of `Arel::Table.new(:x)` or `Model.arel_table`, directly, through a local or a private
        method that returns it."""
        if (
            node.type == "identifier"
            and self.text(node) not in self.locals
            and self.text(node) in self.methods
        ):
            body = _body(self.methods[self.text(node)])
            statements = [c for c in body.named_children if c.type != "comment"] if body is not None else []
            node = statements[-1] if len(statements) == 1 else None
            if node is not None and node.type in ("assignment", "operator_assignment"):
                node = node.child_by_field_name("right")  # `@users_table ||= Arel::Table.new(:users)`
            if node is None:
                return None
        elif node.type == "identifier":
            local = self.locals.get(self.text(node))
            node = local.value if local is not None else None
        if (
            node is not None
            and node.type == "call"
            and self.text(node.child_by_field_name("method")) == "arel_table"
        ):
            receiver = node.child_by_field_name("receiver")
            return self.relation_table(receiver) if receiver is not None else None
        if node is None or node.type != "call" or self.text(node.child_by_field_name("method")) != "new":
            return None
        if self.text(node.child_by_field_name("receiver")).removeprefix("::") != "Arel::Table":
            return None
        arguments = node.child_by_field_name("arguments")
        value = self.literal(arguments.named_children[0]) if arguments and arguments.named_children else None
        return value if isinstance(value, str) else None

    def method_sql(self, name: str, args: list[Any], depth: int) -> str | None:
        """The SQL a private method of the migration returns (its last expression), its parameters bound to
        the static values of the caller's arguments; a parameter without one is a run-time part."""
        if name in self.stack:
            return None
        definition = self.methods[name]
        body = _body(definition)
        statements = (
            [c for c in body.named_children if c.type not in ("comment", "heredoc_body")]
            if body is not None
            else []
        )
        if not statements:
            return None
        last = statements[-1]
        if last.type == "return" and last.named_children:
            last = last.named_children[0].named_children[0] if last.named_children[0].named_children else None
        positional = [
            a for a in args if a.type not in ("pair", "hash", "block_argument", "hash_splat_argument")
        ]
        bound: dict[str, _Local] = {}
        parameters = definition.child_by_field_name("parameters")
        for index, parameter in enumerate(parameters.named_children if parameters is not None else []):
            named = parameter.child_by_field_name("name") if parameter.type != "identifier" else parameter
            value = None
            if parameter.type == "identifier" and index < len(positional):
                value = self.literal(positional[index])
            elif parameter.type in ("keyword_parameter", "optional_parameter") and named is not None:
                given = (
                    self.keyword(args, self.text(named)) if parameter.type == "keyword_parameter" else None
                )
                if given is None and parameter.type == "optional_parameter" and index < len(positional):
                    given = positional[index]
                value = self.literal(given if given is not None else parameter.child_by_field_name("value"))
            bound[self.text(named if named is not None else parameter)] = _Local(literal=value)
        for statement in statements[:-1]:
            left = statement.child_by_field_name("left") if statement.type == "assignment" else None
            if left is not None and left.type == "identifier":
                bound[self.text(left)] = _Local(value=statement.child_by_field_name("right"))
        saved, self.locals = self.locals, bound
        self.stack.append(name)
        try:
            return self.sql_text(last, depth + 1)
        finally:
            self.stack.pop()
            self.locals = saved

    # -- conditions -----------------------------------------------------------------------------------------
    def truth(self, node: Any, depth: int = 0) -> bool | None:
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
                body = _body(self.methods[key])
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

    def predicate_key(self, node: Any) -> str:
        """`Gitlab.com?` for `::Gitlab.com?`, `Feature.enabled?` for `Feature.enabled?(:flag, project)`."""
        if node.type == "call":
            receiver = node.child_by_field_name("receiver")
            method = self.text(node.child_by_field_name("method"))
            if receiver is None:
                return method
            return f"{_SPACE.sub('', self.text(receiver)).removeprefix('::')}.{method}"
        return self.text(node)

    def note_guard(self, node: Any, condition: Any, value: bool, skipped: bool) -> None:
        line = node.start_point[0] + 1
        condition_text = " ".join(self.text(condition).split())
        target = self.config.target
        if skipped:
            self.reasons.append(f"skipped on {target}: code guarded by `{condition_text}` (line {line})")
        else:
            self.reasons.append(
                f"returns early on {target}: `{' '.join(self.text(node).split())}` (line {line})"
            )

    # -- walking --------------------------------------------------------------------------------------------
    def walk(self, body: Any) -> bool:
        """Walk statements in order; True when the path certainly returned (the rest is unreachable)."""
        if body is None:
            return False
        for statement in body.named_children:
            if self.visit(statement):
                return True
        return False

    def visit(self, node: Any) -> bool:
        action = _VISIT_ACTIONS.get(node.kind_id)
        if action is None:
            action = _visit_action(node.kind_id, node.type)
        if action == _V_CALL:
            self.visit_call(node)
            return False
        if action == _V_LITERAL:
            return False
        if action == _V_IDENTIFIER:
            name = self.text(node)
            if name not in self.locals:
                self.dispatch(node, name, None, [], None)
            return False
        if action == _V_IF:
            return self.visit_if(node)
        if action == _V_MODIFIER:
            return self.visit_modifier(node)
        if action == _V_TERNARY:
            return self.visit_ternary(node)
        if action == _V_JUMP:
            for child in node.named_children:
                self.visit(child)
            return True
        if action == _V_ASSIGNMENT:
            self.visit_assignment(node)
            return False
        if action == _V_LAMBDA:
            parameters = node.child_by_field_name("parameters")
            for parameter in parameters.named_children if parameters is not None else []:
                name = parameter.child_by_field_name("name") if parameter.type != "identifier" else parameter
                self.locals[self.text(name if name is not None else parameter)] = _Local()
            body = node.child_by_field_name("body")
            if body is not None:
                self.walk_block(body) if body.type in ("block", "do_block") else self.visit(body)
            return False
        if action == _V_EXCEPTION_VARIABLE:
            # `rescue X => e`: `e` is the exception object, a local (never a helper call).
            for child in node.named_children:
                self.locals[self.text(child)] = _Local(kind="ruby")
            return False
        if action == _V_YIELD and self.yields is not None and not self.yields:
            self.note_yield(node)
        for child in node.named_children:
            if self.visit(child):
                return True
        return False

    def visit_if(self, node: Any) -> bool:
        condition = node.child_by_field_name("condition")
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

    def visit_modifier(self, node: Any) -> bool:
        condition = node.child_by_field_name("condition")
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

    def visit_ternary(self, node: Any) -> bool:
        condition = node.child_by_field_name("condition")
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

    def visit_assignment(self, node: Any) -> None:
        left = node.child_by_field_name("left")
        right = node.child_by_field_name("right")
        if right is not None:
            self.visit(right)
        if left is None:
            return
        if left.type in ("identifier", "instance_variable"):
            name = self.text(left)
            local = _Local(value=right)
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
                instance = self.helper_instance(right) if self.catalogue.helper_classes else None
                if instance is not None:
                    local.kind, local.instance, local.table = "helper_class", instance[0], instance[1]
                elif self.text(right).removeprefix("::").startswith(("Sidekiq::", "Sidekiq.")):
                    local.kind = "sidekiq"
                else:
                    local.table = self.relation_table(right)
            self.locals[name] = local
        elif left.type in ("left_assignment_list", "destructured_left_assignment"):
            for child in left.named_children:
                self.locals[self.text(child).lstrip("*")] = _Local()
        elif left.type == "call":
            receiver = left.child_by_field_name("receiver")
            if receiver is not None and receiver.type == "call":
                self.visit_call(receiver)

    def plain_declaration(self, node: Any) -> bool:
        """A model-body call that adds no behaviour: a scope, a serializer, a batching mixin."""
        method = self.text(node.child_by_field_name("method") or node)
        if method not in _PLAIN_MODEL_CALLS:
            return False
        if method in ("include", "extend"):
            return not _PLAIN_MIXIN.sub("", self.text(node.child_by_field_name("arguments")))
        return True

    def plain_model_root(self, root: Any, depth: int = 0) -> bool:
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

    def builds_collection(self, node: Any, depth: int = 0) -> str | None:
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
                return (
                    "ruby" if self.text(node.child_by_field_name("receiver")) in _RUBY_COLLECTIONS else None
                )
            if method in _TO_COLLECTION:
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

    def visit_call(self, node: Any) -> None:
        method_node = node.child_by_field_name("method")
        arguments = node.child_by_field_name("arguments")
        self.dispatch(
            node,
            self.text(method_node) if method_node is not None else "call",
            node.child_by_field_name("receiver"),
            arguments.named_children if arguments is not None else [],
            node.child_by_field_name("block"),
        )

    def dispatch(self, node: Any, method: str, receiver: Any, args: list[Any], block: Any) -> None:
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
        if method in _SENDERS and args and args[0].type in ("simple_symbol", "string"):
            target = self.literal(args[0])
            if isinstance(target, str) and target and target not in _SENDERS:
                # `send(:helper, ...)` with a literal name is a plain call of that helper.
                self.dispatch(node, target, receiver, args[1:], block)
                return
        if method in catalogue.dynamic_methods and receiver_text not in ("Rails.cache",):
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
            and self.helper_class_call(method, receiver, receiver_text, args, block, line)
        ):
            return
        if self.special(node, method, receiver, receiver_text, args, block, line):
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
            and not _ACTION_WORDS.search(method)
        ):
            self.add(f"{receiver_text}.{method}", None, line, C.NOOP, "reads one application setting")
            return
        rule = catalogue.helpers.get(method)
        if rule is not None and (bare or self.on_connection(receiver, receiver_text)):
            self.add_helper(rule, method, args, block, line)
            return
        if receiver is not None and receiver.type == "identifier" and rule is None:
            local = self.locals.get(receiver_text)
            if local is not None and local.kind == "ruby" and method not in catalogue.receiver_methods:
                # `jobs.clear`, `ids.uniq!`: a method of a plain Hash/Array/Set built in the migration.
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
        neutral_receiver = self.neutral_receiver(receiver_text)
        if neutral_receiver or method in catalogue.neutral_methods:
            table = None
            if receiver is None and args and method in _TABLE_ITERATORS:
                table = self.table_name(args[0])  # each_batch(:table, scope: ...) { |batch| ... }
            self.visit_parts(
                None if neutral_receiver else receiver, args, block, iterating=block is not None, table=table
            )
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
                    or _ATTRIBUTE.search(method)
                    or (
                        not method.endswith("!")
                        and not _ACTION_WORDS.search(method)
                        and not _value_discarded(node)  # `project.rename_repo if ...` runs for its effect
                    )
                    or (
                        not method.endswith("!")
                        and node.parent is not None
                        and node.parent.type not in _STATEMENT_PARENTS
                        and self.plain_model_root(root)
                    )
                )
            ):
                self.visit_parts(receiver, args, block)
                return  # reading an attribute of a local value
        if (
            receiver is None
            and not args
            and block is None
            and self.current_model
            and (
                method[-1] == "?"
                or (method[-1] != "!" and not _ACTION_WORDS.search(method) and not _value_discarded(node))
            )
        ):
            return  # inside an inner model's method: a predicate or a column of the record (`raw_metadata`)
        what = f"{self.root_text(receiver)}.{method}" if receiver is not None else method
        root = receiver
        while root is not None and root.type in ("call", "element_reference"):
            root = root.child_by_field_name("receiver") or root.child_by_field_name("object")
        if receiver is None:
            rationale = "helper not in the catalogue: what it does cannot be bounded"
        elif root is not None and root.type in ("constant", "scope_resolution"):
            rationale = "calls into application code: its effect on the database cannot be bounded"
        else:
            rationale = "call the catalogue does not know: its effect on the database cannot be bounded"
        self.add(what, None, line, C.UNKNOWN, rationale)
        self.visit_parts(receiver, args, block)

    def add_helper(self, rule: HelperRule, method: str, args: list[Any], block: Any, line: int) -> None:
        self.add_rule(rule, method, args, line)
        if method in _INDEX_ADDERS or method in _INDEX_REMOVERS:
            self.track_index(method, args)
        for arg in args:
            if arg.kind_id not in _LITERAL_IDS:
                self.visit(arg)
        if block is not None:
            # What the helper yields (a table definition, the query to refine) is part of the helper.
            self.bind_block(block, [_Local(kind="helper"), _Local(kind="helper")])
            self.walk_block(block)

    def special(
        self,
        node: Any,
        method: str,
        receiver: Any,
        receiver_text: str,
        args: list[Any],
        block: Any,
        line: int,
    ) -> bool:
        """The finer points of product.md §3 that a catalogue row cannot express."""
        if receiver_text == "Rails.cache":
            if method in ("delete", "read", "fetch", "exist?", "write"):
                self.add(
                    f"Rails.cache.{method}", None, line, C.NOOP, "one cache key: nothing in the database"
                )
            else:
                self.add(
                    f"Rails.cache.{method}", None, line, C.UNKNOWN, "cache work over many keys (Redis only)"
                )
            self.visit_parts(None, args, block)
            return True
        if (
            receiver_text == "Sidekiq" or receiver_text.startswith(("Sidekiq::", "Sidekiq."))
        ) and receiver_text not in ("Sidekiq::Cron::Job",):
            self.add(
                f"{receiver_text}.{method}",
                None,
                line,
                C.BACKGROUND,
                "Sidekiq API: jobs in Redis, not the database",
            )
            self.visit_parts(None, args, None)
            if block is not None:
                # What the Sidekiq API yields (a job, a Redis connection) is Sidekiq's too.
                self.bind_block(block, [_Local(kind="sidekiq"), _Local(kind="sidekiq")])
                self.walk_block(block)
            return True
        if method == "steal" and receiver_text.endswith("BackgroundMigration"):
            if block is not None and self.block_only_deletes(block):
                self.add(
                    "Gitlab::BackgroundMigration.steal",
                    None,
                    line,
                    C.BACKGROUND,
                    "steal with a block that only deletes the queued jobs",
                )
            else:
                self.add(
                    "Gitlab::BackgroundMigration.steal",
                    None,
                    line,
                    C.DATA,
                    "runs the queued background jobs inline",
                )
            return True
        if (
            receiver_text.startswith("Gitlab::BackgroundMigration::")
            and method.startswith("perform")
            and not self.neutral_receiver_exact(receiver_text)
        ):
            # `.new.perform(...)`, `.new.perform_all_sync`: the background migration's work, run now.
            self.add(f"{receiver_text}.{method}", None, line, C.DATA, "runs a background migration inline")
            self.visit_parts(None, args, block)
            return True
        if block is not None and f"{receiver_text}.{method}?" in self.predicates and not args:
            # `Gitlab.com do ... end`: the block runs only where `Gitlab.com?` holds.
            if self.predicates[f"{receiver_text}.{method}?"] is False:
                self.reasons.append(
                    f"skipped on {self.config.target}: code guarded by `{receiver_text}.{method}` "
                    f"(runs only where {receiver_text}.{method}? holds, line {line})"
                )
            else:
                self.bind_block(block, [])
                self.walk_block(block)
            return True
        if method == "with" and receiver_text.startswith("Gitlab::Redis::") and block is not None:
            self.bind_block(block, [_Local(kind="redis")])
            self.walk_block(block)
            return True
        if receiver is not None and receiver.type == "identifier":
            local = self.locals.get(receiver_text)
            if local is not None and local.kind == "helper":
                self.visit_parts(None, args, block)
                return True
            if local is not None and local.kind == "sidekiq":
                self.add(
                    f"{receiver_text}.{method}",
                    None,
                    line,
                    C.BACKGROUND,
                    "Sidekiq API: jobs in Redis, not the database",
                )
                self.visit_parts(None, args, None)
                if block is not None:
                    self.bind_block(block, [_Local(kind="sidekiq"), _Local(kind="sidekiq")])
                    self.walk_block(block)
                return True
            if local is not None and local.kind == "redis":
                plain = all(a.type in ("string", "simple_symbol", "constant") for a in args)
                if method in self.catalogue.redis_reads:
                    self.add(f"redis.{method}", None, line, C.NOOP, "reads Redis: nothing changes")
                    self.visit_parts(None, args, None)
                    if block is not None:
                        self.bind_block(block, [_Local(), _Local()])
                        self.walk_block(block)
                elif method in ("del", "unlink") and plain and len(args) == 1:
                    self.add(
                        f"redis.{method}",
                        None,
                        line,
                        C.NOOP,
                        "deletes one fixed key: nothing in the database",
                    )
                else:
                    self.add(
                        f"redis.{method}",
                        None,
                        line,
                        C.UNKNOWN,
                        "Redis-only work whose effect cannot be bounded",
                    )
                return True
        if method in ("reversible", "up_only") and receiver is None and block is not None:
            if method == "up_only":
                self.walk_block(block)
            else:
                self.bind_block(block, [_Local(kind="reversible")])
                self.walk_block(block)
            return True
        if receiver is not None and receiver.type == "identifier" and method in ("up", "down"):
            local = self.locals.get(receiver_text)
            if local is not None and local.kind == "reversible":
                if method == "up" and block is not None:
                    self.walk_block(block)
                return True
        return False

    def helper_instance(self, node: Any) -> tuple[HelperClass, str | None] | None:
        """The bounded helper class a receiver is an instance of (`X.on_table(t)`, a local holding one)."""
        kind = node.type
        if kind == "identifier":
            local = self.locals.get(self.text(node))
            if local is not None and local.instance is not None:
                return local.instance, local.table
            return None
        if kind == "parenthesized_statements" and node.named_children:
            return self.helper_instance(node.named_children[-1])
        if kind != "call":
            return None
        inner = node.child_by_field_name("receiver")
        if inner is None or inner.type not in ("constant", "scope_resolution"):
            return None
        helper_class = self.catalogue.helper_classes.get(self.text(inner).removeprefix("::"))
        method = self.text(node.child_by_field_name("method"))
        if helper_class is None or method not in helper_class.constructors:
            return None
        arguments = node.child_by_field_name("arguments")
        return helper_class, self.rule_table(
            helper_class.table, arguments.named_children if arguments else []
        )

    def helper_class_call(
        self, method: str, receiver: Any, receiver_text: str, args: list[Any], block: Any, line: int
    ) -> bool:
        """A call on one of GitLab's bounded helper classes: its catalogued class, else `unknown`."""
        table = None
        if receiver.type in ("constant", "scope_resolution"):
            helper_class = self.catalogue.helper_classes.get(receiver_text)
            if helper_class is None:
                return False
            if method in helper_class.constructors:
                self.visit_parts(None, args, block)  # building an instance does nothing on the database
                return True
        else:
            found = self.helper_instance(receiver)
            if found is None:
                return False
            helper_class, table = found
            constructor = receiver if receiver.type == "call" else None
            if constructor is not None:
                arguments = constructor.child_by_field_name("arguments")
                self.visit_parts(None, arguments.named_children if arguments else [], None)
        rule = helper_class.methods.get(method)
        helper = f"{helper_class.name}.{method}"
        if rule is None:
            self.add(
                helper,
                table,
                line,
                C.UNKNOWN,
                f"{helper_class.name} has no catalogued method `{method}`: add it to helper_classes",
            )
        else:
            self.add(helper, self.rule_table(rule.table, args) or table, line, rule.cls, rule.rationale)
        self.visit_parts(None, args, block)
        return True

    def rule_table(self, spec: tuple[int | str, ...], args: list[Any]) -> str | None:
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

    def root_text(self, node: Any) -> str:
        """`Model` for `Model.where(...).limit(...)`: the start of a call chain, for readable helper names."""
        chained = False
        while node.type in ("call", "element_reference"):
            inner = node.child_by_field_name("receiver") or node.child_by_field_name("object")
            if inner is None:
                return self.text(node.child_by_field_name("method")) + ("…" if chained else "")
            node, chained = inner, True
        text = self.text(node).removeprefix("::")
        return f"{text}…" if chained else text

    def block_only_deletes(self, block: Any) -> bool:
        """True when a `steal` block does nothing but delete the jobs it is given."""
        calls = _captures("(call method: (identifier) @m)", block).get("m", [])
        return bool(calls) and all(self.text(m) in ("delete", "delete_all") for m in calls)

    def on_connection(self, receiver: Any, receiver_text: str) -> bool:
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

    def visit_parts(
        self, receiver: Any, args: list[Any], block: Any, iterating: bool = False, table: str | None = None
    ) -> None:
        if receiver is not None and receiver.type not in (
            "identifier",
            "constant",
            "scope_resolution",
            "self",
        ):
            self.visit(receiver)
        for arg in args:
            if arg.kind_id not in _LITERAL_IDS:
                if arg.type == "block_argument":
                    self.symbol_block(arg, receiver, table)
                self.visit(arg)
        if block is not None:
            if iterating:
                elements = self.static_elements(receiver) if table is None and receiver is not None else None
                if elements is not None:
                    for element in elements[:_MAX_UNROLL]:
                        self.bind_block(block, self.element_locals(block, element))
                        self.walk_block(block)
                    return
                if table is None:
                    table = self.relation_table(receiver) if receiver is not None else self.current_model
                self.bind_block(block, [_Local(table=table)])
            else:
                self.bind_block(block, [])
            self.walk_block(block)

    def symbol_block(self, argument: Any, receiver: Any, table: str | None) -> None:
        """`relation.each_batch(&:delete_all)`: the method named by the symbol runs on every element."""
        symbol = argument.named_children[0] if argument.named_children else None
        if symbol is None or symbol.type != "simple_symbol":
            return
        method = self.text(symbol)[1:]
        line = argument.start_point[0] + 1
        if method in self.model_methods:
            # A method of an inner model (`find_each(&:recompute_fingerprint)`): walked like a call on it.
            self.follow_model_method(method, None, [], None)
            return
        rule = self.catalogue.receiver_methods.get(method)
        if rule is not None:
            if table is None and rule.cls is not C.BACKGROUND:
                table = self.relation_table(receiver) if receiver is not None else self.current_model
            self.add(f"&:{method}", table, line, rule.cls, rule.rationale)
        elif method not in self.catalogue.neutral_methods and not _ATTRIBUTE.search(method):
            self.add(
                f"&:{method}",
                None,
                line,
                C.UNKNOWN,
                f"method passed as a block (&:{method}) that the catalogue does not know",
            )

    def static_elements(self, receiver: Any) -> list[Any] | None:
        """The elements of a constant collection a block iterates (`TABLES.each`, `%i[a b].each_with_index`)."""
        node = receiver
        while node.type == "call" and self.text(node.child_by_field_name("method")) in (
            "freeze",
            "each_with_index",
            "each",
            "uniq",
        ):
            node = node.child_by_field_name("receiver")
            if node is None:
                return None
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

    def element_locals(self, block: Any, element: Any) -> list[_Local]:
        """Block parameters bound to one element (destructured when the block takes several)."""
        parameters = block.child_by_field_name("parameters")
        count = len(parameters.named_children) if parameters is not None else 0
        if count == 1 and parameters.named_children[0].type == "destructured_parameter":
            return [_Local(literal=element)]  # the whole element, spread by bind_block
        items = element if isinstance(element, list) and count > 1 else [element]
        return [_Local(item if isinstance(item, str) else None, literal=item) for item in items]

    def bind_block(self, block: Any, values: list[_Local]) -> None:
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
                    self.locals[self.text(named)] = _Local(
                        item if isinstance(item, str) else None, literal=item
                    )
                continue
            name = parameter.child_by_field_name("name") if parameter.type != "identifier" else parameter
            self.locals[self.text(name if name is not None else parameter)] = (
                values[index] if index < len(values) else _Local()
            )

    def walk_block(self, block: Any) -> None:
        body = block.child_by_field_name("body")
        if body is not None:
            self.walk(body)

    def follow(self, method: str, args: list[Any], block: Any) -> None:
        """Walk a private method of the migration where it is called (guarded against recursion)."""
        for arg in args:
            if arg.kind_id not in _LITERAL_IDS:
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
            local = _Local(value=value)
            if parameter.type == "hash_splat_parameter":
                local.kind = "ruby"  # **options: always a Hash
            elif value is not None and value.type == "identifier" and self.text(value) in saved:
                # A local of the caller passed on: resolve it in the caller's scope, keep the result.
                outer = saved[self.text(value)]
                with_saved, self.locals = self.locals, saved
                literal = self.literal(value)
                table = self.relation_table(value)
                self.locals = with_saved
                local = _Local(table, None, outer.kind, literal)
            if local.value is not None and value.type in (
                "call",
                "identifier",
                "constant",
                "scope_resolution",
            ):
                with_saved = self.locals
                self.locals = saved
                local.table = self.relation_table(value)
                self.locals = with_saved
            self.locals[self.text(name if name is not None else parameter)] = local
        self.stack.append(method)
        saved_yields, self.yields = self.yields, [] if block is not None else None
        try:
            self.walk(_body(definition))
        finally:
            self.stack.pop()
            self.locals = saved
            yielded, self.yields = self.yields, saved_yields
        if block is not None:
            # The block's parameters are what the method yields (its first `yield`), as far as it is known.
            self.bind_block(block, yielded[0] if yielded else [])
            self.walk_block(block)

    def follow_key(self, node: Any) -> str:
        """An argument as a private method sees it: its static value when known, else its text."""
        if node.type == "identifier":
            value = self.literal(node)
            if value is not None:
                return repr(value)
        return self.text(node)

    def note_yield(self, node: Any) -> None:
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
            values.append(_Local(table, None, local.kind if local is not None else None, literal))
        self.yields.append(values)

    def follow_model_method(self, method: str, receiver: Any, args: list[Any], block: Any) -> None:
        """A scope or method defined on an inner model class: walk it with that model as `self`."""
        definition, table = self.model_methods[method]
        self.visit_parts(receiver, args, None)
        if definition is not None and f"model:{method}" not in self.stack:
            saved_model, saved_locals, saved_helper = self.current_model, self.locals, self.in_helper_class
            self.current_model, self.locals, self.in_helper_class = table, {}, table is None
            parameters = definition.child_by_field_name("parameters")
            for parameter in parameters.named_children if parameters is not None else []:
                named = parameter.child_by_field_name("name") if parameter.type != "identifier" else parameter
                self.locals[self.text(named if named is not None else parameter)] = _Local()
            self.stack.append(f"model:{method}")
            try:
                self.walk(_body(definition))
            finally:
                self.stack.pop()
                self.current_model, self.locals, self.in_helper_class = (
                    saved_model,
                    saved_locals,
                    saved_helper,
                )
        if block is not None:
            self.bind_block(block, [_Local(table=table)])
            self.walk_block(block)

    # -- operations -----------------------------------------------------------------------------------------
    def add(self, helper: str, table: str | None, line: int, cls: MigrationClass, rationale: str) -> None:
        if cls is C.DATA and table is not None and table in self.catalogue.bookkeeping_tables:
            # Rows that only track queued background work (job-tracking rows deleted before re-queuing).
            cls, rationale = C.BACKGROUND, f"{rationale}; {table} only tracks background migration jobs"
        self.operations.append(Operation(helper, table, line, cls, rationale))

    def add_rule(self, rule: HelperRule, helper: str, args: list[Any], line: int) -> None:
        table = None
        positional = (
            [a for a in args if a.type not in ("pair", "hash", "block_argument", "hash_splat_argument")]
            if rule.table or rule.locks or rule.when
            else []
        )
        for spec in rule.table:
            node = (positional[spec] if spec < len(positional) else None) if isinstance(spec, int) else None
            if not isinstance(spec, int):
                node = self.keyword(args, spec)
            table = self.table_name(node) if node is not None else None
            if table:
                break
        cls, rationale = rule.cls, rule.rationale
        if rule.when is not None:
            # Argument semantics: `change_column_null(t, c, true)` drops NOT NULL, `false` adds it.
            spec, cases = rule.when
            if isinstance(spec, int):
                chosen = positional[spec] if spec < len(positional) else None
            else:
                chosen = self.keyword(args, spec)
            case = cases.get(self.text(chosen)) if chosen is not None else None
            if case is not None:
                cls, rationale = case
        self.add(helper, table, line, cls, rationale)
        for spec in rule.locks:
            # A foreign key locks the table it references as well: its size counts too.
            node = (positional[spec] if spec < len(positional) else None) if isinstance(spec, int) else None
            if not isinstance(spec, int):
                node = self.keyword(args, spec)
            other = self.table_name(node) if node is not None else None
            if other and other != table:
                self.add(
                    f"{helper} (referenced table)",
                    other,
                    line,
                    rule.cls,
                    f"{rule.rationale}; locks {other} too",
                )

    def add_sql(self, method: str, receiver_text: str, argument: Any, line: int) -> None:
        helper = f"{receiver_text}.{method}" if receiver_text and receiver_text != "self" else method
        sql = self.sql_text(argument) if argument is not None else None
        verdicts = classify_sql(sql)
        if sql is None and argument is not None:
            # Name what could not be read, so that a reviewer knows where to look.
            preview = " ".join(self.text(argument)[:60].split())
            verdicts = [
                SqlVerdict(
                    C.UNKNOWN, f"SQL built at run time ({preview}): its kind cannot be read", None, "?"
                )
            ]
        for verdict in verdicts[:25]:
            kind = f" ({verdict.kind})" if verdict.kind and verdict.kind != "?" else ""
            self.add(f"{helper}{kind}", verdict.table, line, verdict.cls, verdict.rationale)
        if len(verdicts) > 25:
            strictest = most_restrictive(v.cls for v in verdicts[25:])
            self.add(helper, None, line, strictest, f"{len(verdicts) - 25} more SQL statements")

    def track_index(self, method: str, args: list[Any]) -> None:
        """Remember index names created and dropped: a temporary index makes the migration cleanup."""
        if method not in _INDEX_ADDERS and method not in _INDEX_REMOVERS:
            return
        name = self.keyword(args, "name")
        if name is None and method == "remove_concurrent_index_by_name":
            positional = [a for a in args if a.type not in ("pair", "hash")]
            name = positional[1] if len(positional) > 1 else None
        value = self.literal(name) if name is not None else None
        if isinstance(value, str):
            (self.indexes_added if method in _INDEX_ADDERS else self.indexes_removed)[value] = 1

    # -- result ---------------------------------------------------------------------------------------------
    def finish(self, result: ClassificationResult) -> None:
        operations = self.operations
        size_of = self.tables.size_of
        worst_size = None
        escalations = []
        for index, op in enumerate(operations):
            size = size_of(op.table) if op.table else None
            if size is None:
                continue
            if _SIZE_RANK[size] > _SIZE_RANK[worst_size]:
                worst_size = size
            if op.cls in _TABLE_SENSITIVE:
                label = size.replace("_", "-")
                if op.cls is C.DATA:
                    operations[index] = Operation(
                        op.helper,
                        op.table,
                        op.line,
                        C.SCHEMA_HEAVY,
                        f"{op.rationale}; escalated: {op.table} is {_article(label)} {label} table",
                    )
                    escalations.append(
                        f"{op.helper} on {op.table} ({label} table, line {op.line}) counts as schema_heavy"
                    )
                else:
                    escalations.append(
                        f"{op.helper} on {op.table}: {_article(label)} {label} table (line {op.line})"
                    )
        result.table_size = worst_size
        cls, strictness = C.NOOP, 0  # the strictest class (the first one found at that rank)
        for op in operations:
            rank = _RANK[op.cls]
            if rank > strictness:
                cls, strictness = op.cls, rank
        result.migration_class = cls
        result.operations = operations
        reasons: list[str] = []
        strongest = next((op for op in operations if op.cls is cls), None)
        if strongest is not None and cls is not C.NOOP:
            where = f" on {strongest.table}" if strongest.table else ""
            reasons.append(
                f"{cls.value}: {strongest.helper}{where} (line {strongest.line}): {strongest.rationale}"
            )
        elif not self.reasons:
            if strongest is not None:
                reasons.append(f"noop: {strongest.helper} (line {strongest.line}): {strongest.rationale}")
            else:
                reasons.append("noop: `up` is empty (or only comments)")
        else:
            reasons.append(f"noop: nothing runs on {self.config.target}")
        if self.indexes_removed and self.indexes_added:
            for name in sorted(set(self.indexes_added) & set(self.indexes_removed)):
                reasons.append(f"temporary index {name} is created and dropped inside `up`: cleanup")
        reasons.extend(escalations)
        if cls is C.UNKNOWN:
            unknown = [op for op in operations if op.cls is C.UNKNOWN and op is not strongest]
            for op in unknown[:10]:
                reasons.append(f"unknown: {op.helper} (line {op.line}): {op.rationale}")
            if len(unknown) > 10:
                reasons.append(f"unknown: {len(unknown) - 10} more calls the engine cannot bound")
        reasons.extend(self.reasons)
        result.reasons = reasons

    def apply_annotation(self, result: ClassificationResult, annotation: Annotation) -> None:
        """An explicit `# pdm:` annotation decides when it is as strict as the code; lighter is a conflict."""
        if annotation.error:
            result.conflicts.append(f"annotation ignored (line {annotation.line}): {annotation.error}")
            return
        declared, inferred = annotation.cls, result.migration_class
        reason = annotation.reason or "no reason given"
        if declared >= inferred:
            result.migration_class = declared
            result.annotated = True
            result.reasons.insert(0, f"annotated {declared.value} (line {annotation.line}): {reason}")
            return
        known = most_restrictive(op.cls for op in result.operations if op.cls is not C.UNKNOWN)
        if inferred is C.UNKNOWN and declared >= known:
            # `unknown` means "a human must say": the annotation is that human's word for calls the engine
            # cannot bound, as long as it is not lighter than what the engine can see.
            result.migration_class = declared
            result.annotated = True
            result.reasons.insert(
                0,
                f"annotated {declared.value} (line {annotation.line}): {reason} (decides calls the engine cannot bound)",
            )
            return
        strongest = next((op for op in result.operations if op.cls is inferred), None)
        evidence = f" ({strongest.helper}, line {strongest.line})" if strongest else ""
        result.conflicts.append(
            f"annotation says {declared.value} (line {annotation.line}) but the code is {inferred.value}{evidence}; "
            f"the stricter class {inferred.value} is used"
        )


_MODIFIERS = frozenset(
    {"if_modifier", "unless_modifier", "while_modifier", "until_modifier", "rescue_modifier"}
)


def _value_discarded(node: Any) -> bool:
    """True when a call is a statement of its own (its value unused): it is made for what it does."""
    parent = node.parent
    if parent is None:
        return False
    if parent.type in _STATEMENT_PARENTS:
        return True
    return parent.type in _MODIFIERS and parent.child_by_field_name("body") == node


def _body(node: Any) -> Any:
    if node is None:
        return None
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    for child in node.named_children:
        if child.type in ("body_statement", "block_body"):
            return child
    return None


def _first_error_line(root: Any) -> int:
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            return node.start_point[0] + 1
        if node.has_error:
            stack.extend(reversed(node.children))
    return 1
