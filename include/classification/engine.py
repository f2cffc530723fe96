"""The classifier: parses a migration with tree-sitter-ruby and classifies what its `up` does.

Most restrictive wins; anything it cannot understand is `unknown` with the reason (never lighter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from include.classification.classes import MigrationClass, most_restrictive
from include.classification.sql import classify_sql

HERE = Path(__file__).resolve().parent
MAX_BYTES = 512 * 1024
_VERSION = re.compile(r"^(\d{14})_([a-z0-9_]+)\.rb$")
_ANNOTATION = re.compile(r"#\s*pdm:\s*class\s*=\s*([a-z_]+)(?:\s+reason\s*=\s*\"([^\"]*)\")?", re.IGNORECASE)
_CONFLICT_MARKERS = re.compile(rb"^(<<<<<<<|>>>>>>>|=======$)", re.MULTILINE)
SCHEMAS = {
    "gitlab_main": "main",
    "gitlab_main_cell": "main",
    "gitlab_main_clusterwide": "main",
    "gitlab_main_org": "main",
    "gitlab_main_cell_local": "main",
    "gitlab_ci": "ci",
    "gitlab_ci_cell_local": "ci",
    "gitlab_sec": "sec",
    "gitlab_pm": "main",
    "gitlab_shared": "all",
    "gitlab_internal": "all",
}
# Environment predicates as they evaluate on each target (None: cannot be known statically).
PREDICATES = {
    "gitlab_com": {
        "Gitlab.com?": True,
        "Gitlab.com_except_jh?": True,
        "Gitlab.org_or_com?": True,
        "Gitlab.dev_env_or_com?": True,
        "Gitlab.dev_or_test_env?": False,
        "Gitlab.dev_env_org_or_com?": True,
        "Gitlab.jh?": False,
        "Gitlab.ee?": True,
        "Gitlab.staging?": False,
        "Gitlab.canary?": False,
        "Gitlab.self_managed?": False,
        "Gitlab::Saas.feature_available?": None,
        "Rails.env.production?": True,
        "Rails.env.development?": False,
        "Rails.env.test?": False,
        "Rails.env.staging?": False,
    },
    "self_managed": {
        "Gitlab.com?": False,
        "Gitlab.com_except_jh?": False,
        "Gitlab.org_or_com?": False,
        "Gitlab.dev_env_or_com?": False,
        "Gitlab.dev_or_test_env?": False,
        "Gitlab.dev_env_org_or_com?": False,
        "Gitlab.jh?": None,
        "Gitlab.ee?": None,
        "Gitlab.staging?": False,
        "Gitlab.canary?": False,
        "Gitlab.self_managed?": True,
        "Rails.env.production?": True,
        "Rails.env.development?": False,
        "Rails.env.test?": False,
        "Rails.env.staging?": False,
    },
}
TABLE_SENSITIVE = {MigrationClass.DATA, MigrationClass.SCHEMA_HEAVY}


@dataclass(frozen=True)
class Operation:
    """One helper call found in `up`: what it is, the table it touches, where, and its class."""

    helper: str
    table: str | None
    line: int
    cls: MigrationClass
    rationale: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "helper": self.helper,
            "table": self.table,
            "line": self.line,
            "class": self.cls.value,
            "rationale": self.rationale,
        }


@dataclass
class ClassificationResult:
    """What one migration does at PDM time, and why."""

    path: str
    version: str
    name: str
    migration_class: MigrationClass
    database: str
    milestone: str | None = None
    operations: list[Operation] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    annotated: bool = False
    conflicts: list[str] = field(default_factory=list)
    table_size: str | None = None
    ddl_transaction_disabled: bool = False
    lock_retries: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "version": self.version,
            "name": self.name,
            "class": self.migration_class.value,
            "database": self.database,
            "milestone": self.milestone,
            "operations": [op.to_dict() for op in self.operations],
            "reasons": list(self.reasons),
            "annotated": self.annotated,
            "conflicts": list(self.conflicts),
            "table_size": self.table_size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassificationResult:
        return cls(
            path=data["path"],
            version=data["version"],
            name=data["name"],
            migration_class=MigrationClass.parse(data["class"]),
            database=data["database"],
            milestone=data.get("milestone"),
            operations=[
                Operation(
                    o["helper"],
                    o.get("table"),
                    o["line"],
                    MigrationClass.parse(o["class"]),
                    o.get("rationale", ""),
                )
                for o in data.get("operations", [])
            ],
            reasons=list(data.get("reasons", [])),
            annotated=bool(data.get("annotated")),
            conflicts=list(data.get("conflicts", [])),
            table_size=data.get("table_size"),
        )


@dataclass(frozen=True)
class Catalogue:
    helpers: dict[str, dict[str, Any]]
    neutral: frozenset[str]


@dataclass(frozen=True)
class ClassifierConfig:
    """Target installation, the helper catalogue and the large-table list (files; defaults shipped)."""

    target: str = "gitlab_com"
    catalogue_path: str = str(HERE / "catalogue.yaml")
    tables_path: str = str(HERE / "tables.yaml")


@lru_cache(maxsize=8)
def load_catalogue(path: str) -> Catalogue:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    helpers = {}
    for name, entry in (data.get("helpers") or {}).items():
        helpers[str(name)] = {
            "class": MigrationClass.parse(entry["class"]),
            "table_arg": entry.get("table_arg"),
            "rationale": str(entry.get("rationale", "")),
        }
    return Catalogue(helpers, frozenset(str(n) for n in data.get("neutral") or []))


@lru_cache(maxsize=8)
def load_tables(path: str) -> dict[str, str]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    sizes: dict[str, str] = {}
    for size in ("large", "over_limit"):
        for table in data.get(size) or []:
            sizes[str(table)] = size
    return sizes


@lru_cache(maxsize=1)
def _parser():
    import tree_sitter_ruby
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_ruby.language()))


def classify_path(path: str | Path, *, config: ClassifierConfig | None = None) -> ClassificationResult:
    """Classify a file on disk; unreadable files are `unknown` with the reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return _unknown(str(path), f"file is {size} bytes, over the {MAX_BYTES}-byte limit")
        source = path.read_bytes()
    except OSError as exc:
        return _unknown(str(path), f"cannot read the file: {exc.strerror}")
    return classify_source(source, str(path), config=config)


def classify_source(
    source: str | bytes, path: str, *, config: ClassifierConfig | None = None
) -> ClassificationResult:
    """Classify one migration's Ruby source. Never raises for a bad file: it is `unknown` with the reason."""
    config = config or ClassifierConfig()
    data = source.encode("utf-8") if isinstance(source, str) else source
    try:
        return _Classifier(data, path, config).run()
    except RecursionError:
        return _unknown(path, "the file nests too deeply to analyse")
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop a run; it is the strictest class
        return _unknown(path, f"could not be analysed ({type(exc).__name__}: {exc})")


def _unknown(path: str, reason: str) -> ClassificationResult:
    version, name = _version_and_name(path)
    return ClassificationResult(path, version, name, MigrationClass.UNKNOWN, "unknown", reasons=[reason])


def _version_and_name(path: str) -> tuple[str, str]:
    match = _VERSION.match(Path(path).name)
    if match:
        return match.group(1), match.group(2)
    return "", Path(path).stem


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


class _Classifier:
    def __init__(self, data: bytes, path: str, config: ClassifierConfig) -> None:
        self.data = data
        self.path = path
        self.config = config
        self.catalogue = load_catalogue(config.catalogue_path)
        self.tables = load_tables(config.tables_path)
        self.predicates = PREDICATES.get(config.target, PREDICATES["gitlab_com"])
        self.operations: list[Operation] = []
        self.reasons: list[str] = []
        self.constants: dict[str, str] = {}
        self.methods: dict[str, Any] = {}
        self.model_tables: dict[str, str] = {}
        self.heredocs: dict[int, Any] = {}
        self.visiting: set[str] = set()

    def text(self, node: Any) -> str:
        return node.text.decode("utf-8", "replace") if node is not None else ""

    # -- entry --------------------------------------------------------------------------------------
    def run(self) -> ClassificationResult:
        version, name = _version_and_name(self.path)
        if len(self.data) > MAX_BYTES:
            return _unknown(self.path, f"file is {len(self.data)} bytes, over the {MAX_BYTES}-byte limit")
        if b"\x00" in self.data:
            return _unknown(self.path, "binary file (contains NUL bytes)")
        if not self.data.strip():
            return _unknown(self.path, "empty file: Rails cannot load a migration from it")
        if _CONFLICT_MARKERS.search(self.data):
            return _unknown(self.path, "merge-conflict markers in the file")
        tree = _parser().parse(self.data)
        root = tree.root_node
        if root.has_error:
            line = _first_error_line(root)
            return _unknown(self.path, f"Ruby syntax error near line {line}")
        klass = self.migration_class(root)
        if klass is None:
            return _unknown(self.path, "no migration class (class … < Gitlab::Database::Migration[…]) found")
        class_name = self.text(klass.child_by_field_name("name")).split("::")[-1]
        if name and _camel(name) != class_name:
            return _unknown(
                self.path, f"class {class_name} does not match the file name (Rails expects {_camel(name)})"
            )
        self.collect_heredocs(root)
        body = _body(klass)
        database, milestone, ddl_off, lock_retries = "unspecified", None, False, False
        up = change = None
        for child in body.named_children if body is not None else []:
            if child.type == "assignment":
                left, right = child.child_by_field_name("left"), child.child_by_field_name("right")
                if left is not None and left.type == "constant":
                    value = self.literal(right)
                    if value is not None:
                        self.constants[self.text(left)] = value
            elif child.type == "method":
                method_name = self.text(child.child_by_field_name("name"))
                self.methods[method_name] = child
                if method_name == "up":
                    up = child
                elif method_name == "change":
                    change = child
            elif child.type == "class":
                self.collect_model(child)
            elif child.type in ("call", "identifier"):
                method, _, args = self.call_parts(child)
                if method == "restrict_gitlab_migration":
                    schema = self.keyword_arg(args, "gitlab_schema")
                    database = SCHEMAS.get((schema or "").lstrip(":"), schema or "unknown")
                elif method == "milestone":
                    milestone = self.literal(args[0]) if args else None
                elif method == "disable_ddl_transaction!":
                    ddl_off = True
                elif method == "enable_lock_retries!":
                    lock_retries = True
        target = up or change
        if target is None:
            result = _unknown(self.path, "no `up` or `change` method: what runs cannot be determined")
            return result
        self.visiting.add(self.text(target.child_by_field_name("name")))
        self.walk_statements(_body(target))
        cls = most_restrictive(op.cls for op in self.operations)
        if not self.operations:
            self.reasons.append("`up` performs nothing on this target")
        table_size = self.escalate()
        cls = most_restrictive([cls, *(op.cls for op in self.operations)])
        if database == "unspecified":
            database = "all"
        result = ClassificationResult(
            path=self.path,
            version=version,
            name=name,
            migration_class=cls,
            database=database,
            milestone=milestone,
            operations=self.operations,
            reasons=self.reasons,
            table_size=table_size,
            ddl_transaction_disabled=ddl_off,
            lock_retries=lock_retries,
        )
        self.apply_annotation(result)
        if cls is not MigrationClass.NOOP or self.operations:
            strongest = [op for op in self.operations if op.cls is result.migration_class]
            if strongest and not result.annotated:
                op = strongest[0]
                where = f" on {op.table}" if op.table else ""
                result.reasons.insert(
                    0, f"{result.migration_class.value}: {op.helper}{where} (line {op.line}): {op.rationale}"
                )
        return result

    def migration_class(self, root: Any) -> Any:
        """The migration class: top level, or nested in modules (not a full-tree walk: it is the hot path)."""
        pending = list(root.named_children)
        while pending:
            node = pending.pop(0)
            if node.type == "class" and "Migration" in self.text(node.child_by_field_name("superclass")):
                return node
            if node.type == "module":
                body = _body(node)
                pending.extend(body.named_children if body is not None else [])
        return None

    def collect_model(self, node: Any) -> None:
        """Inner model classes: `self.table_name = 'x'` maps the constant to its table."""
        name = self.text(node.child_by_field_name("name"))
        for assignment in _descendants(node, "assignment"):
            left = self.text(assignment.child_by_field_name("left"))
            if left == "self.table_name":
                value = self.literal(assignment.child_by_field_name("right"))
                if value:
                    self.model_tables[name] = value
        self.model_tables.setdefault(name, _snake(name) + "s")

    def collect_heredocs(self, root: Any) -> None:
        if b"<<" not in self.data:
            return
        starts = list(_descendants(root, "heredoc_beginning"))
        bodies = list(_descendants(root, "heredoc_body"))
        for start, body in zip(starts, bodies, strict=False):
            self.heredocs[start.id] = body

    # -- values -------------------------------------------------------------------------------------
    def literal(self, node: Any) -> str | None:
        """A constant's or argument's static value: symbols, strings, resolved constants."""
        if node is None:
            return None
        if node.type == "simple_symbol":
            return self.text(node)[1:]
        if node.type in ("string", "delimited_symbol"):
            if any(c.type == "interpolation" for c in node.named_children):
                return None
            return "".join(self.text(c) for c in node.named_children if c.type == "string_content")
        if node.type == "constant":
            return self.constants.get(self.text(node))
        if node.type == "scope_resolution":
            return self.constants.get(self.text(node).split("::")[-1])
        if node.type in ("integer", "float"):
            return self.text(node)
        if node.type == "call" and self.text(node.child_by_field_name("method")) in (
            "freeze",
            "to_s",
            "to_sym",
        ):
            return self.literal(node.child_by_field_name("receiver"))
        return None

    def sql_text(self, node: Any) -> tuple[str, bool]:
        """SQL of an `execute` argument; the flag says it had interpolation (parts unknown)."""
        if node is None:
            return "", True
        if node.type == "heredoc_beginning":
            body = self.heredocs.get(node.id)
            if body is None:
                return "", True
            parts = [
                self.text(c) if c.type == "heredoc_content" else " ? "
                for c in body.named_children
                if c.type != "heredoc_end"
            ]
            return "".join(parts), any(c.type == "interpolation" for c in body.named_children)
        if node.type == "string":
            parts = [self.text(c) if c.type == "string_content" else " ? " for c in node.named_children]
            return "".join(parts), any(c.type == "interpolation" for c in node.named_children)
        if node.type in ("constant", "identifier", "scope_resolution"):
            value = self.literal(node)
            return (value, False) if value else ("", True)
        if node.type == "call":
            receiver = node.child_by_field_name("receiver")
            if receiver is not None:
                return self.sql_text(receiver)
        heredoc = next(iter(_descendants(node, "heredoc_beginning")), None)
        if heredoc is not None:
            return self.sql_text(heredoc)
        return self.text(node), True

    def keyword_arg(self, args: list[Any], key: str) -> str | None:
        for arg in args:
            for pair in [arg] if arg.type == "pair" else _descendants(arg, "pair"):
                if self.text(pair.child_by_field_name("key")).rstrip(":").lstrip(":") == key:
                    return self.literal(pair.child_by_field_name("value")) or self.text(
                        pair.child_by_field_name("value")
                    )
        return None

    def call_parts(self, node: Any) -> tuple[str, Any, list[Any]]:
        if node.type == "identifier":
            return self.text(node), None, []
        method = self.text(node.child_by_field_name("method"))
        receiver = node.child_by_field_name("receiver")
        arguments = node.child_by_field_name("arguments")
        args = [c for c in arguments.named_children] if arguments is not None else []
        return method, receiver, args

    # -- walking ------------------------------------------------------------------------------------
    def walk_statements(self, body: Any) -> None:
        """Walk statements in order; `return if <known true>` ends the reachable part."""
        if body is None:
            return
        for statement in body.named_children:
            if statement.type in ("if_modifier", "unless_modifier") and statement.named_children:
                action = statement.named_children[0]
                condition = statement.child_by_field_name("condition") or statement.named_children[-1]
                verdict = self.condition(condition)
                if statement.type == "unless_modifier" and verdict is not None:
                    verdict = not verdict
                if action.type in ("return", "next") or self.text(action) in ("return", "next"):
                    if verdict is True:
                        self.reasons.append(
                            f"stops early on this target: `{self.text(statement)}` (line {statement.start_point[0] + 1})"
                        )
                        return
                    continue
                if verdict is None:
                    self.visit_condition(condition)
                if verdict is False:
                    continue
                self.visit(action)
                continue
            self.visit(statement)

    def condition(self, node: Any) -> bool | None:
        """Evaluate an environment predicate for the target; None when not statically known."""
        if node is None:
            return None
        text = re.sub(r"\s+", "", self.text(node))
        if node.type == "parenthesized_statements" and node.named_children:
            return self.condition(node.named_children[0])
        if node.type == "unary" and text.startswith(("!", "not")):
            inner = self.condition(node.named_children[0]) if node.named_children else None
            return None if inner is None else not inner
        if node.type == "binary":
            left = self.condition(node.child_by_field_name("left"))
            right = self.condition(node.child_by_field_name("right"))
            operator = self.text(node.child_by_field_name("operator"))
            if operator in ("&&", "and"):
                if left is False or right is False:
                    return False
                return True if left and right else None
            if operator in ("||", "or"):
                if left is True or right is True:
                    return True
                return False if left is False and right is False else None
            return None
        return self.predicates.get(text.removeprefix("::"))

    def visit_condition(self, node: Any) -> None:
        """A condition the target does not decide still runs: its calls count (strictest first)."""
        if node is None:
            return
        if node.type in ("call", "identifier"):
            if self.predicates.get(re.sub(r"\s+", "", self.text(node)).removeprefix("::")) is None:
                self.visit_call(node)
            return
        for child in node.named_children:
            self.visit_condition(child)

    def visit(self, node: Any) -> None:
        kind = node.type
        if kind in (
            "comment",
            "string",
            "simple_symbol",
            "integer",
            "float",
            "true",
            "false",
            "nil",
            "constant",
            "self",
        ):
            return
        if kind in ("if", "unless", "elsif"):
            verdict = self.condition(node.child_by_field_name("condition"))
            if kind == "unless" and verdict is not None:
                verdict = not verdict
            if verdict is None:
                self.visit_condition(node.child_by_field_name("condition"))
            consequence = node.child_by_field_name("consequence")
            alternative = node.child_by_field_name("alternative")
            if verdict is not False and consequence is not None:
                self.walk_statements(consequence)
            if verdict is not True and alternative is not None:
                self.visit(alternative)
            return
        if kind in ("if_modifier", "unless_modifier"):
            self.walk_statements_single(node)
            return
        if kind in ("call", "identifier"):
            if (
                kind == "identifier"
                and node.parent is not None
                and node.parent.type
                not in (
                    "body_statement",
                    "then",
                    "else",
                    "do_block",
                    "block",
                    "begin",
                    "parenthesized_statements",
                )
            ):
                return  # a local variable in an expression
            self.visit_call(node)
            return
        if kind in ("method", "singleton_method", "class", "module"):
            return  # definitions run only when called
        for child in node.named_children:
            self.visit(child)

    def walk_statements_single(self, node: Any) -> None:
        class _Single:
            named_children = [node]

        self.walk_statements(_Single())

    def visit_call(self, node: Any) -> None:
        method, receiver, args = self.call_parts(node)
        line = node.start_point[0] + 1
        receiver_text = self.text(receiver)
        block = node.child_by_field_name("block")
        # Private helpers of the migration class: follow them (once per path).
        if receiver is None and method in self.methods:
            if method in self.visiting:
                return
            self.visiting.add(method)
            self.walk_statements(_body(self.methods[method]))
            self.visiting.discard(method)
            self.visit_children(args, block)
            return
        if method in (
            "execute",
            "exec_query",
            "exec_update",
            "exec_delete",
            "exec_insert",
        ) and receiver_text in (
            "",
            "connection",
            "ApplicationRecord.connection",
            "ActiveRecord::Base.connection",
            "self",
        ):
            sql, dynamic = self.sql_text(args[0] if args else None)
            cls, rationale, table = classify_sql(sql, dynamic)
            self.add(f"{receiver_text + '.' if receiver_text else ''}{method}", table, line, cls, rationale)
            return
        if receiver_text == "Rails.cache" and method in ("delete", "write", "fetch", "read", "exist?"):
            self.add(
                f"Rails.cache.{method}",
                None,
                line,
                MigrationClass.NOOP,
                "a single cache key: nothing in the database",
            )
            self.visit_children(args, block)
            return
        if method == "steal" and receiver_text.endswith("BackgroundMigration"):
            only_deletes = block is not None and all(
                self.text(c.child_by_field_name("method")) in ("delete", "delete_all")
                for c in _descendants(block, "call")
                if c.child_by_field_name("method") is not None
            )
            if only_deletes:
                self.add(
                    "Gitlab::BackgroundMigration.steal",
                    None,
                    line,
                    MigrationClass.BACKGROUND,
                    "steal with a block that only deletes queued jobs",
                )
            else:
                self.add(
                    "Gitlab::BackgroundMigration.steal",
                    None,
                    line,
                    MigrationClass.DATA,
                    "runs queued background jobs inline",
                )
            return
        entry = self.catalogue.helpers.get(method)
        if entry is not None:
            table = self.table_for(entry, args, receiver)
            self.add(method, table, line, entry["class"], entry["rationale"])
            if receiver is not None:
                self.visit_receiver(receiver)
            self.visit_children(args, block)
            return
        if method in self.catalogue.neutral:
            if receiver is not None:
                self.visit_receiver(receiver)
            self.visit_children(args, block)
            return
        # Anything else may touch the database in ways a static reading cannot bound.
        what = f"{receiver_text}.{method}" if receiver_text else method
        if (
            receiver is None
            and not args
            and block is None
            and node.type == "identifier"
            and method.islower()
            and "_" not in method
            and len(method) <= 2
        ):
            return  # a short local variable used as a statement
        self.add(what, None, line, MigrationClass.UNKNOWN, "call with an effect the catalogue does not know")
        self.visit_children(args, block)

    def visit_receiver(self, receiver: Any) -> None:
        if receiver.type == "call":
            self.visit_call(receiver)
        elif receiver.type not in ("constant", "scope_resolution", "identifier", "self", "instance_variable"):
            self.visit(receiver)

    def visit_children(self, args: list[Any], block: Any) -> None:
        for arg in args:
            if arg.type in ("block_argument",):
                continue
            for call in [arg] if arg.type == "call" else []:
                self.visit_call(call)
            if arg.type not in ("call",):
                for inner in arg.named_children:
                    if inner.type in ("call", "do_block", "block", "lambda"):
                        self.visit(inner)
        if block is not None:
            body = block.child_by_field_name("body") or _body(block)
            if body is not None:
                self.walk_statements(body)
            else:
                for child in block.named_children:
                    self.visit(child)

    def table_for(self, entry: dict[str, Any], args: list[Any], receiver: Any) -> str | None:
        index = entry.get("table_arg")
        positional = [
            a
            for a in args
            if a.type not in ("pair", "hash", "block_argument", "splat_argument", "hash_splat_argument")
        ]
        if index is not None and index < len(positional):
            return self.literal(positional[index])
        root = receiver
        while root is not None and root.type == "call":
            root = root.child_by_field_name("receiver")
        if root is not None and root.type in ("constant", "scope_resolution"):
            name = self.text(root).split("::")[-1]
            return self.model_tables.get(name)
        return None

    def add(self, helper: str, table: str | None, line: int, cls: MigrationClass, rationale: str) -> None:
        self.operations.append(Operation(helper, table, line, cls, rationale))

    # -- escalation and annotation ------------------------------------------------------------------
    def escalate(self) -> str | None:
        """Index, key, constraint or data work on a large or over-limit table is at least schema_heavy."""
        worst = None
        for index, op in enumerate(self.operations):
            size = self.tables.get(op.table or "")
            if size is None:
                continue
            if worst != "over_limit":
                worst = size
            if op.cls in TABLE_SENSITIVE and op.cls < MigrationClass.SCHEMA_HEAVY:
                self.operations[index] = Operation(
                    op.helper,
                    op.table,
                    op.line,
                    MigrationClass.SCHEMA_HEAVY,
                    f"{op.rationale}; escalated: {op.table} is a {size.replace('_', '-')} table",
                )
                self.reasons.append(
                    f"{op.helper} on {op.table} ({size.replace('_', '-')} table) is treated as schema_heavy"
                )
            elif op.cls in TABLE_SENSITIVE:
                self.reasons.append(f"{op.table} is a {size.replace('_', '-')} table")
        return worst

    def apply_annotation(self, result: ClassificationResult) -> None:
        text = self.data.decode("utf-8", "replace")
        match = _ANNOTATION.search(text)
        if not match:
            return
        try:
            declared = MigrationClass.parse(match.group(1))
        except ValueError as exc:
            result.conflicts.append(f"annotation ignored: {exc}")
            return
        reason = match.group(2) or "no reason given"
        inferred = result.migration_class
        if declared >= inferred:
            result.migration_class = declared
            result.annotated = True
            result.reasons.insert(0, f"annotated {declared.value}: {reason}")
        else:
            result.conflicts.append(
                f"annotation says {declared.value} but the code is {inferred.value}; the stricter class {inferred.value} is used"
            )


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


def _descendants(node: Any, kind: str):
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == kind:
            yield current
        stack.extend(reversed(current.named_children))


def _first_error_line(root: Any) -> int:
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            return node.start_point[0] + 1
        stack.extend(reversed(node.children))
    return 1


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
