"""What the classifier reports for one migration: its operations, class, reasons and annotation outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from json import JSONEncoder
from json.encoder import encode_basestring
from typing import Any

from include.classification.classes import MigrationClass

RESULT_KEYS = (
    "path",
    "version",
    "name",
    "class",
    "database",
    "milestone",
    "operations",
    "reasons",
    "annotated",
    "conflicts",
    "table_size",
)


@dataclass(slots=True)
class Operation:
    """One call found in `up` (helper, SQL statement, model write, unknown call) and what it does."""

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Operation:
        return cls(
            helper=str(data["helper"]),
            table=data.get("table"),
            line=int(data.get("line") or 0),
            cls=MigrationClass.parse(data["class"]),
            rationale=str(data.get("rationale", "")),
        )


@dataclass
class ClassificationResult:
    """What one post-deploy migration does at PDM time, and why.

    `migration_class` is the most restrictive class of the operations `up` (or `change`) performs on the
    target, after large-table escalation and the file's annotation. `ddl_transaction` and `lock_retries`
    mirror `disable_ddl_transaction!` / `enable_lock_retries!`; they are not part of `to_dict()`.
    """

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
    ddl_transaction: bool = True
    lock_retries: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with exactly the keys of RESULT_KEYS."""
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
        """Inverse of to_dict(); raises KeyError/ValueError naming what is missing or wrong."""
        missing = [key for key in ("path", "class") if key not in data]
        if missing:
            raise KeyError(f"classification result: missing {', '.join(missing)}")
        return cls(
            path=str(data["path"]),
            version=str(data.get("version") or ""),
            name=str(data.get("name") or ""),
            migration_class=MigrationClass.parse(data["class"]),
            database=str(data.get("database") or "unknown"),
            milestone=data.get("milestone"),
            operations=[Operation.from_dict(o) for o in data.get("operations") or []],
            reasons=list(data.get("reasons") or []),
            annotated=bool(data.get("annotated")),
            conflicts=list(data.get("conflicts") or []),
            table_size=data.get("table_size"),
        )


_ENCODER = JSONEncoder(ensure_ascii=False, check_circular=False)


def json_line(result: ClassificationResult) -> str:
    """`json.dumps(result.to_dict(), ensure_ascii=False)`, byte for byte, without the intermediate dicts.

    The CLI writes one line per migration: the generic encoder walking a fresh dict tree cost as much as
    a sixth of the analysis. Any field of an unexpected type falls back to that encoder.
    """
    try:
        return _fast_line(result)
    except (TypeError, AttributeError):
        return _ENCODER.encode(result.to_dict())


def _fast_line(r: ClassificationResult) -> str:
    text = encode_basestring
    operations = ", ".join(
        [
            f'{{"helper": {text(op.helper)}, "table": {"null" if op.table is None else text(op.table)}, '
            f'"line": {_integer(op.line)}, "class": {text(op.cls.value)}, "rationale": {text(op.rationale)}}}'
            for op in r.operations
        ]
    )
    return (
        f'{{"path": {text(r.path)}, "version": {text(r.version)}, "name": {text(r.name)}, '
        f'"class": {text(r.migration_class.value)}, "database": {text(r.database)}, '
        f'"milestone": {"null" if r.milestone is None else text(r.milestone)}, "operations": [{operations}], '
        f'"reasons": [{", ".join([text(reason) for reason in r.reasons])}], '
        f'"annotated": {_boolean(r.annotated)}, '
        f'"conflicts": [{", ".join([text(conflict) for conflict in r.conflicts])}], '
        f'"table_size": {"null" if r.table_size is None else text(r.table_size)}}}'
    )


def _integer(value: Any) -> str:
    if type(value) is not int:
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return str(value)


def _boolean(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise TypeError(f"expected a bool, got {type(value).__name__}")
