"""The classifier: reads a migration with tree-sitter-ruby and classifies what its `up` does at PDM time.

The most restrictive operation wins; anything the engine cannot bound is `unknown` with the reason, and
one bad file is a result, never an exception.

This module is the entry (classify_path, classify_source) and puts the reader together; each part of the
reading has its own module:
  files.py (checks before parsing), tree.py (tree-sitter, node kinds), rails.py (Rails vocabulary),
  declarations.py (the class body), values.py (constant evaluation, tables), sqltext.py (SQL text),
  guards.py (conditions known on the target), walk.py (statements, blocks, followed methods),
  dispatch.py (which rule judges a call), rules/ (one rule family per module), operations.py (recording),
  verdict.py (class and reasons), annotation.py (`# pdm:` annotations).
"""

from __future__ import annotations

from pathlib import Path

from include.classification.annotation import apply_annotation, find_annotation
from include.classification.classes import MigrationClass
from include.classification.config import ClassifierConfig
from include.classification.declarations import DeclarationReader
from include.classification.dispatch import Dispatcher
from include.classification.files import failed, read_bounded, unloadable
from include.classification.guards import GuardReader
from include.classification.operations import OperationRecorder
from include.classification.rails import squash, version_and_name
from include.classification.result import ClassificationResult
from include.classification.sqltext import SqlTextReader
from include.classification.tree import body_of, captures, first_error_line, get_parser
from include.classification.values import ValueReader
from include.classification.verdict import finish
from include.classification.walk import Walker

__all__ = ["MigrationReader", "classify_path", "classify_source", "version_and_name"]

C = MigrationClass

# -- public API -------------------------------------------------------------------------------------------


def classify_path(path: str | Path, *, config: ClassifierConfig | None = None) -> ClassificationResult:
    """Classify a migration file on disk; an unreadable or oversized file is `unknown` with the reason."""
    config = config or ClassifierConfig()
    path_text = str(path)
    try:
        data = read_bounded(path_text, config.max_bytes)
    except OSError as exc:
        return failed(path_text, f"cannot read the file: {exc.strerror or exc}")
    return classify_source(data, path_text, config=config)


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
        return MigrationReader(data, path, config).classify()
    except RecursionError:
        return failed(path, "the file nests too deeply to analyse")
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop a run; it is the strictest class
        return failed(path, f"could not be analysed ({type(exc).__name__}: {exc})")


class MigrationReader(
    DeclarationReader, ValueReader, SqlTextReader, GuardReader, Walker, Dispatcher, OperationRecorder
):
    """One file's analysis: parse, find the migration class, walk `up`, build the result."""

    __slots__ = ()

    def classify(self) -> ClassificationResult:
        """Check the file, parse it, read the class body, walk `up` (or `change`), then the verdict."""
        data, path = self.data, self.path
        version, name = version_and_name(path)
        unreadable = unloadable(data, self.config.max_bytes)
        if unreadable is not None:
            return failed(path, unreadable)
        tree = get_parser().parse(data)
        root = tree.root_node
        if root.has_error:
            return failed(
                path, f"Ruby syntax error near line {first_error_line(root)}: Rails cannot load the file"
            )
        self.root = root
        klass = self.find_migration_class(root, name)
        if klass is None:
            return failed(
                path, "no migration class (class ... < Gitlab::Database::Migration[...]) in the file"
            )
        class_name = self.text(klass.child_by_field_name("name")).rsplit("::", 1)[-1]
        if name and squash(class_name) != squash(name):
            expected = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
            return failed(path, f"class {class_name} does not match the file name (Rails expects {expected})")
        result = ClassificationResult(path, version, name, C.NOOP, "all")
        entry = self.read_class_body(klass, result)
        self.check_load_time_constants()
        if entry is None:
            self.reasons.append("no `up` or `change` method: Rails runs nothing for this migration")
        else:
            self.stack.append(entry)
            self.walk(body_of(self.methods[entry]))
            self.stack.pop()
        temporary = sorted(set(self.indexes_added) & set(self.indexes_removed))
        finish(result, self.operations, self.tables, self.reasons, temporary, self.config.target)
        if b"pdm:" in data:
            annotation = find_annotation(captures("(comment) @c", root).get("c", []))
            if annotation is not None:
                apply_annotation(result, annotation)
        return result
