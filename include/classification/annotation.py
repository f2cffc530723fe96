"""The explicit annotation a migration author writes: `# pdm: class=<class> reason="<why>"`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from include.classification.classes import MigrationClass

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


def find_annotation(data: bytes, root: Any) -> Annotation | None:
    """The first `# pdm:` annotation among the file's comments (real comments only, not strings)."""
    from include.classification.engine import _captures

    comments = _captures("(comment) @c", root).get("c", [])
    for comment in sorted(comments, key=lambda n: n.start_byte):
        text = comment.text.decode("utf-8", "replace")
        if "pdm:" not in text.lower():
            continue
        for offset, line in enumerate(text.splitlines()):
            annotation = parse_annotation(line, comment.start_point[0] + 1 + offset)
            if annotation is not None:
                return annotation
    return None
