"""The migration class's body as Rails loads it: which class is the migration, its declarations
(`restrict_gitlab_migration`, `milestone`, `disable_ddl_transaction!`, `enable_lock_retries!`), its methods,
its constants, and the models and helper classes defined inside it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass
from include.classification.rails import (
    ASSOCIATIONS,
    DECLARATION_STARTS,
    DECLARATIONS,
    MIGRATION_SUPERCLASS,
    PLAIN_MODEL_CALLS,
    SIMPLE_DECLARATION,
    camelize,
    singularize,
    squash,
    tableize,
)
from include.classification.result import ClassificationResult
from include.classification.state import ReaderState
from include.classification.tree import body_of, node_kinds, required_child

if TYPE_CHECKING:
    from tree_sitter import Node

    pass

C = MigrationClass


class DeclarationReader(ReaderState):
    """Part of the migration reader (engine.MigrationReader): declarations."""

    __slots__ = ()

    def find_migration_class(self, root: Node, name: str) -> Node | None:
        """The migration class: the one named after the file, else the first `< ...Migration[...]` class."""
        found = []
        pending = list(root.named_children)
        while pending:
            node = pending.pop(0)
            if node.type == "class":
                superclass = node.child_by_field_name("superclass")
                if superclass is not None and MIGRATION_SUPERCLASS.search(self.text(superclass)):
                    found.append(node)
            elif node.type == "module":
                body = body_of(node)
                if body is not None:
                    pending.extend(body.named_children)
        if len(found) < 2:
            return found[0] if found else None
        for node in found:
            if squash(self.text(node.child_by_field_name("name")).rsplit("::", 1)[-1]) == squash(name):
                return node
        return found[0]

    def collect_constants(self, root: Node) -> None:
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
                    body = body_of(child)
                    if body is not None:
                        pending.append(body)

    def read_class_body(self, klass: Node, result: ClassificationResult) -> str | None:
        """Methods, inner models and declarations of the migration class; returns the entry method."""
        body = body_of(klass)
        if body is None:
            return None
        data = self.data
        kinds = node_kinds()
        method_kind, assignment_kind, call_kind = kinds["method"], kinds["assignment"], kinds["call"]
        for child in body.named_children:
            kind = child.kind_id
            if kind == method_kind:
                self.methods[(required_child(child, "name").text or b"").decode()] = child
            elif kind == assignment_kind:
                self.const_assignments.append(child)  # read on first use of a constant
            elif kind == call_kind or kind == kinds["identifier"]:
                start = child.start_byte
                if data.startswith(DECLARATION_STARTS, start):
                    simple = SIMPLE_DECLARATION.fullmatch(data, start, child.end_byte)
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
        self.resolve_associations()
        for entry in ("up", "change"):
            if entry in self.methods:
                return entry
        return None

    def read_association(self, node: Node) -> None:
        """`has_many :stages, class_name: 'X'` on an inner model: remember the target model it reads."""
        method = self.text(node.child_by_field_name("method"))
        arguments = node.child_by_field_name("arguments")
        args = arguments.named_children if arguments is not None else []
        if not args or args[0].type != "simple_symbol":
            return
        name = self.text(args[0])[1:]
        class_name = self.literal(self.keyword(args, "class_name"))
        if isinstance(class_name, str) and class_name:
            target = class_name.removeprefix("::")
        else:
            target = camelize(
                singularize(name) if method in ("has_many", "has_and_belongs_to_many") else name
            )
        self.associations[name] = target

    def read_internal_id(self, node: Node) -> None:
        """`has_internal_id :iid, scope: :project` (GitLab's AtomicInternalId concern) defines
        `ensure_project_iid!` and `track_project_iid!`: they allocate or record the id in `internal_ids`.
        (From GitLab's app/models/concerns/atomic_internal_id.rb as remembered: unverified here.)"""
        arguments = node.child_by_field_name("arguments")
        args = arguments.named_children if arguments is not None else []
        column = self.literal(args[0]) if args else None
        scope = self.literal(self.keyword(args, "scope"))
        if isinstance(column, str) and isinstance(scope, str):
            for verb in ("ensure", "track"):
                self.generated_writes[f"{verb}_{scope}_{column}!"] = "internal_ids"

    def resolve_associations(self) -> None:
        """Association targets to tables, once every inner model is known (a target may come later in the
        file); an association reads a relation, so calling it is walked like a scope of its target."""
        for name, target in self.associations.items():
            if target is None:
                continue
            short = target.rsplit("::", 1)[-1]
            table = self.models.get(target) or self.models.get(short) or tableize(short)
            self.associations[name] = table
            self.model_methods.setdefault(name, (None, table))

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

    def read_declaration(self, node: Node, result: ClassificationResult) -> None:
        method_node = node if node.type == "identifier" else node.child_by_field_name("method")
        name = (method_node.text or b"") if method_node is not None else b""
        if name not in DECLARATIONS:
            return
        method = name.decode()
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

    def read_model(self, node: Node) -> None:
        """An inner model class: its table (`self.table_name = ...` or Rails' default) and its methods."""
        name = self.text(node.child_by_field_name("name"))
        superclass = self.text(node.child_by_field_name("superclass"))
        body = body_of(node)
        table = None
        for child in body.named_children if body is not None else []:
            if (
                child.type == "assignment"
                and self.text(child.child_by_field_name("left")) == "self.table_name"
            ):
                value = self.literal(child.child_by_field_name("right"))
                table = str(value) if value is not None else None
        if (
            table is None
            and not self.catalogue.model_superclass.search(superclass)
            and "::" not in superclass
        ):
            # Not a model: a helper class of the migration (an old scheduling or job-moving helper kept in
            # the file). Its methods are walked where they are called, like the migration's own.
            for child in body.named_children if body is not None else []:
                if child.type in ("method", "singleton_method"):
                    method_name = self.text(child.child_by_field_name("name"))
                    if method_name != "initialize":
                        self.model_methods.setdefault(method_name, (child, None))
            return
        table = table or tableize(name.rsplit("::", 1)[-1])
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
            elif child.type == "call" and self.text(child.child_by_field_name("method")) in ASSOCIATIONS:
                self.read_association(child)
            elif child.type == "call" and self.text(child.child_by_field_name("method")) == "has_internal_id":
                self.read_internal_id(child)

    def plain_declaration(self, node: Node) -> bool:
        """A model-body call that adds no behaviour: a scope, a serializer, a batching mixin."""
        method = self.text(node.child_by_field_name("method") or node)
        if method not in PLAIN_MODEL_CALLS:
            return False
        if method in ("include", "extend"):
            return not self.catalogue.plain_mixin.sub("", self.text(node.child_by_field_name("arguments")))
        return True
