"""The explicit annotation a migration author writes: `# pdm: class=<class> reason="<why>"`, and what it
changes in a result (it decides when it is as strict as the code; a lighter one is a conflict)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from include.classification.classes import MigrationClass, most_restrictive
from include.classification.result import ClassificationResult

if TYPE_CHECKING:
    from tree_sitter import Node

_MARK = re.compile(r"^#\s*pdm:\s*(?P<body>.*?)\s*$", re.IGNORECASE)
_PAIR = re.compile(r"""(?P<key>[a-z_]+)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"']+))""", re.I)


@dataclass(frozen=True)
class Annotation:
    """A parsed `# pdm:` comment: the declared class and reason, or why it cannot be used."""

    line: int
    cls: MigrationClass
    reason: str
    error: str | None = None


def parse_annotation(comment: str, line: int) -> Annotation | None:
    """Parse one comment; None when it is not a `# pdm:` annotation at all."""
    match = _MARK.match(comment.strip())
    if not match:
        return None
    body = match.group("body")
    values: dict[str, str] = {}
    consumed = 0
    for pair in _PAIR.finditer(body):
        if body[consumed : pair.start()].strip():
            break
        key = pair.group("key").lower()
        values[key] = next(
            v for v in (pair.group("dq"), pair.group("sq"), pair.group("bare")) if v is not None
        )
        consumed = pair.end()
    leftover = body[consumed:].strip()
    if leftover:
        return Annotation(
            line, MigrationClass.UNKNOWN, "", f"cannot read {leftover[:40]!r} (expected key=value)"
        )
    extra = sorted(set(values) - {"class", "reason"})
    if extra:
        return Annotation(
            line, MigrationClass.UNKNOWN, "", f"unknown key {extra[0]!r} (expected class and reason)"
        )
    if "class" not in values:
        return Annotation(line, MigrationClass.UNKNOWN, "", "no class= given")
    try:
        cls = MigrationClass.parse(values["class"])
    except ValueError as exc:
        return Annotation(line, MigrationClass.UNKNOWN, "", str(exc))
    return Annotation(line, cls, values.get("reason", "").strip())


def find_annotation(comments: Iterable[Node]) -> Annotation | None:
    """The first `# pdm:` annotation among the file's comments (real comments only, not strings).

    The engine passes the comment nodes in (a tree-sitter query): this module never parses Ruby itself.
    """
    for comment in sorted(comments, key=lambda n: n.start_byte):
        text = (comment.text or b"").decode("utf-8", "replace")
        if "pdm:" not in text.lower():
            continue
        for offset, line in enumerate(text.splitlines()):
            annotation = parse_annotation(line, comment.start_point[0] + 1 + offset)
            if annotation is not None:
                return annotation
    return None


def apply_annotation(result: ClassificationResult, annotation: Annotation) -> None:
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
    known = most_restrictive(op.cls for op in result.operations if op.cls is not MigrationClass.UNKNOWN)
    if inferred is MigrationClass.UNKNOWN and declared >= known:
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
