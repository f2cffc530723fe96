"""Classifies the SQL passed to `execute`: DML is data, index/constraint/table building is schema_heavy,
dropping or renaming is cleanup, reads are noop. Unparseable or dynamic SQL is never made lighter."""

from __future__ import annotations

import re

from include.classification.classes import MigrationClass, most_restrictive

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_RULES: list[tuple[re.Pattern[str], MigrationClass, str]] = [
    (re.compile(r"^\s*(DROP|TRUNCATE)\b", re.I), MigrationClass.CLEANUP, "drops or truncates"),
    (
        re.compile(r"^\s*ALTER\s+TABLE\b.*\b(DROP|RENAME)\b", re.I | re.S),
        MigrationClass.CLEANUP,
        "drops or renames in a table",
    ),
    (
        re.compile(r"^\s*ALTER\s+(INDEX|SEQUENCE|TRIGGER|FUNCTION)\b.*\bRENAME\b", re.I | re.S),
        MigrationClass.CLEANUP,
        "renames",
    ),
    (re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\b", re.I), MigrationClass.SCHEMA_HEAVY, "builds an index"),
    (
        re.compile(
            r"^\s*(CREATE|ALTER)\s+(TABLE|TRIGGER|FUNCTION|SEQUENCE|VIEW|MATERIALIZED\s+VIEW|TYPE|EXTENSION|OR\s+REPLACE)\b",
            re.I,
        ),
        MigrationClass.SCHEMA_HEAVY,
        "changes the schema",
    ),
    (
        re.compile(r"^\s*(REINDEX|CLUSTER|VACUUM|ANALYZE|REFRESH)\b", re.I),
        MigrationClass.SCHEMA_HEAVY,
        "maintenance that scans tables",
    ),
    (
        re.compile(r"^\s*(WITH\b.*\b)?(UPDATE|DELETE|INSERT|MERGE|COPY)\b", re.I | re.S),
        MigrationClass.DATA,
        "writes rows",
    ),
    (re.compile(r"^\s*(SELECT|SHOW|EXPLAIN)\b", re.I), MigrationClass.NOOP, "only reads"),
    (
        re.compile(r"^\s*(SET|RESET|LOCK)\b", re.I),
        MigrationClass.NOOP,
        "session setting or lock within the transaction",
    ),
]
_TABLE = re.compile(
    r"\b(?:UPDATE|INTO|FROM|TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?|ON)\s+(?:ONLY\s+)?\"?([a-z_][a-z0-9_]*)\"?",
    re.I,
)


def classify_sql(sql: str, dynamic: bool = False) -> tuple[MigrationClass, str, str | None]:
    """Class, rationale and first table of the SQL; every statement counts, the strictest wins."""
    text = _COMMENT.sub(" ", sql or "").strip()
    if not text:
        return MigrationClass.UNKNOWN, "execute with SQL that cannot be read statically", None
    statements = [s.strip() for s in text.split(";") if s.strip()]
    found: list[tuple[MigrationClass, str]] = []
    for statement in statements:
        for pattern, cls, rationale in _RULES:
            if pattern.search(statement):
                found.append((cls, f"SQL {rationale}"))
                break
        else:
            found.append((MigrationClass.UNKNOWN, f"SQL not recognised: {statement[:40]!r}"))
    cls = most_restrictive(c for c, _ in found)
    rationale = next(r for c, r in found if c is cls)
    if dynamic and cls is MigrationClass.NOOP:
        return MigrationClass.UNKNOWN, "SQL built at run time", None
    match = _TABLE.search(text)
    return (
        cls,
        rationale + (" (part built at run time)" if dynamic else ""),
        match.group(1).lower() if match else None,
    )
