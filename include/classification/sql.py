"""Classifies SQL given to `execute`: DML is data, building schema is schema_heavy, DROP/rename is cleanup.

Statement by statement, by what the statement is (its leading keywords), so function bodies and string
literals cannot fool it. Parts built at run time are a placeholder; a statement whose kind cannot be read
is `unknown` — never lighter than what it could be.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from include.classification.classes import MigrationClass

C = MigrationClass
DYNAMIC = "\x00dynamic\x00"  # stands for a part of the SQL computed at run time

_IDENT = r'(?:"[^"]+"|[A-Za-z_][\w$]*)(?:\.(?:"[^"]+"|[A-Za-z_][\w$]*))?'
_WORD = re.compile(r"[A-Za-z_]+")
_DOLLAR = re.compile(r"\$[A-Za-z_]*\$")
_WRITE = re.compile(r"\b(UPDATE|DELETE\s+FROM|INSERT\s+INTO|MERGE\s+INTO|TRUNCATE)\b", re.I)
_DROP = re.compile(r"\bDROP\s+(TABLE|INDEX|COLUMN|CONSTRAINT|TRIGGER|FUNCTION|VIEW|SEQUENCE)\b", re.I)
_CREATE = re.compile(r"\b(CREATE|ALTER)\s+(UNIQUE\s+)?(INDEX|TABLE|TRIGGER)\b", re.I)
_SIDE_EFFECT_FUNCTIONS = re.compile(
    r"\b(setval|nextval|pg_advisory_lock|set_config|pg_terminate_backend)\s*\(", re.I
)

_TABLE_AFTER = {
    "UPDATE": re.compile(rf"^\s*UPDATE\s+(?:ONLY\s+)?({_IDENT})", re.I),
    "DELETE": re.compile(rf"^\s*DELETE\s+FROM\s+(?:ONLY\s+)?({_IDENT})", re.I),
    "INSERT": re.compile(rf"^\s*INSERT\s+INTO\s+({_IDENT})", re.I),
    "TABLE": re.compile(rf"\bTABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?:ONLY\s+)?({_IDENT})", re.I),
    "ON": re.compile(rf"\bON\s+(?:ONLY\s+|TABLE\s+|COLUMN\s+)?({_IDENT})", re.I),
    "TRUNCATE": re.compile(rf"^\s*TRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?({_IDENT})", re.I),
    "FROM": re.compile(rf"\bFROM\s+(?:ONLY\s+)?({_IDENT})", re.I),
}


@dataclass(frozen=True)
class SqlVerdict:
    """One statement's class, why, the table it touches (when readable) and its first words."""

    cls: MigrationClass
    rationale: str
    table: str | None
    kind: str


_TRICKY = re.compile(r"['\"$]|--|/\*")


def split_statements(sql: str) -> list[str]:
    """Split on `;` outside quotes, dollar-quoted bodies and comments; comments are dropped."""
    if not _TRICKY.search(sql):
        return [part.strip() for part in sql.split(";") if part.strip()]
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            current.append(" ")
            continue
        if ch in ("'", '"'):
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:  # doubled quote inside a literal
                        end += 2
                        continue
                    break
                end += 1
            current.append(sql[i : end + 1])
            i = end + 1
            continue
        if ch == "$":
            match = _DOLLAR.match(sql, i)
            if match:
                tag = match.group(0)
                end = sql.find(tag, match.end())
                end = n if end < 0 else end + len(tag)
                current.append(sql[i:end])
                i = end
                continue
        if ch == ";":
            statement = "".join(current).strip()
            if statement:
                statements.append(statement)
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    statement = "".join(current).strip()
    if statement:
        statements.append(statement)
    return statements


def classify_sql(sql: str | None) -> list[SqlVerdict]:
    """One verdict per statement; SQL that cannot be read at all is a single `unknown` verdict."""
    if sql is None or not sql.strip() or sql.strip() == DYNAMIC:
        return [SqlVerdict(C.UNKNOWN, "SQL built at run time: its kind cannot be read", None, "?")]
    statements = split_statements(sql)
    if not statements:
        return [SqlVerdict(C.NOOP, "SQL with comments only", None, "")]
    return [classify_statement(s) for s in statements]


def _words(statement: str, count: int = 4) -> list[str]:
    return [w.upper() for w in _WORD.findall(statement[:200])[:count]]


def _table(statement: str, key: str) -> str | None:
    match = _TABLE_AFTER[key].search(statement)
    if not match:
        return None
    name = match.group(1).replace('"', "").rsplit(".", 1)[-1]
    return None if DYNAMIC in name or not name else name.lower()


def classify_statement(statement: str) -> SqlVerdict:
    """The class of one SQL statement, by its kind."""
    text = statement.strip()
    if text.startswith(DYNAMIC):
        preview = " ".join(text[:60].replace(DYNAMIC, "#{…}").split())
        return SqlVerdict(
            C.UNKNOWN, f"statement built at run time ({preview!r}): its kind cannot be read", None, "?"
        )
    words = _words(text)
    if not words:
        return SqlVerdict(C.UNKNOWN, f"SQL not recognised: {text[:40]!r}", None, "?")
    first = words[0]
    second = words[1] if len(words) > 1 else ""
    kind = " ".join(words[:2])
    if first == "WITH":
        # A CTE: a write anywhere in it writes.
        if _WRITE.search(text):
            return SqlVerdict(C.DATA, "SQL writes rows (in a WITH query)", _first_write_table(text), "WITH")
        return SqlVerdict(C.NOOP, "SQL only reads", None, "WITH")
    if first in ("DROP", "TRUNCATE"):
        table = _table(text, "TRUNCATE") if first == "TRUNCATE" else _table(text, "TABLE")
        what = (
            "truncates a table" if first == "TRUNCATE" else f"drops a {second.lower() or 'database object'}"
        )
        return SqlVerdict(C.CLEANUP, f"SQL {what}", table, kind)
    if first == "ALTER":
        table = _table(text, "TABLE") if second == "TABLE" else None
        upper = text.upper()
        if re.search(r"\b(DROP|RENAME|DETACH\s+PARTITION|NO\s+INHERIT)\b", upper):
            return SqlVerdict(C.CLEANUP, f"SQL drops, detaches or renames (ALTER {second})", table, kind)
        return SqlVerdict(C.SCHEMA_HEAVY, f"SQL changes the schema (ALTER {second})", table, kind)
    if first == "CREATE":
        rest = " ".join(words[1:4])
        if "INDEX" in words[1:3]:
            return SqlVerdict(C.SCHEMA_HEAVY, "SQL builds an index", _table(text, "ON"), "CREATE INDEX")
        if second == "TRIGGER" or "TRIGGER" in words[1:4]:
            return SqlVerdict(C.SCHEMA_HEAVY, "SQL creates a trigger (lock)", _table(text, "ON"), kind)
        table = _table(text, "TABLE") if "TABLE" in words[1:4] else None
        return SqlVerdict(C.SCHEMA_HEAVY, f"SQL creates {rest.lower() or 'an object'}", table, kind)
    if first in ("COMMENT", "GRANT", "REVOKE", "SECURITY"):
        return SqlVerdict(C.SCHEMA_HEAVY, f"SQL changes the schema ({first})", _table(text, "ON"), first)
    if first in ("REINDEX", "CLUSTER", "VACUUM", "ANALYZE", "REFRESH"):
        table = _table(text, "TABLE") if first != "REFRESH" else None
        return SqlVerdict(C.SCHEMA_HEAVY, f"SQL maintenance that reads whole tables ({first})", table, first)
    if first == "LOCK":
        return SqlVerdict(C.SCHEMA_HEAVY, "SQL takes an explicit table lock", _lock_table(text), "LOCK")
    if first == "UPDATE":
        return SqlVerdict(C.DATA, "SQL updates rows", _table(text, "UPDATE"), "UPDATE")
    if first == "DELETE":
        return SqlVerdict(C.DATA, "SQL deletes rows", _table(text, "DELETE"), "DELETE")
    if first in ("INSERT", "MERGE", "COPY"):
        table = _table(text, "INSERT") if first == "INSERT" else None
        return SqlVerdict(C.DATA, f"SQL writes rows ({first})", table, first)
    if first in ("SELECT", "VALUES", "SHOW", "EXPLAIN", "TABLE"):
        if (
            " INTO " in f" {text.upper()} "
            and first == "SELECT"
            and re.search(r"\bINTO\s+(TABLE\s+)?\w", text, re.I)
        ):
            return SqlVerdict(C.SCHEMA_HEAVY, "SQL SELECT INTO creates a table", None, "SELECT INTO")
        if _SIDE_EFFECT_FUNCTIONS.search(text):
            return SqlVerdict(C.DATA, "SQL calls a function that writes (setval, ...)", None, first)
        return SqlVerdict(C.NOOP, "SQL only reads", None, first)
    if first in ("SET", "RESET", "BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK", "START"):
        return SqlVerdict(C.NOOP, "SQL session or transaction control", None, first)
    if first == "DO":
        return _anonymous_block(text)
    return SqlVerdict(C.UNKNOWN, f"SQL not recognised: {text[:40]!r}", None, first)


def _first_write_table(text: str) -> str | None:
    match = re.search(rf"\b(?:UPDATE|DELETE\s+FROM|INSERT\s+INTO)\s+(?:ONLY\s+)?({_IDENT})", text, re.I)
    return match.group(1).replace('"', "").rsplit(".", 1)[-1].lower() if match else None


def _lock_table(text: str) -> str | None:
    match = re.search(rf"^\s*LOCK\s+(?:TABLE\s+)?(?:ONLY\s+)?({_IDENT})", text, re.I)
    if not match or DYNAMIC in match.group(1):
        return None
    return match.group(1).replace('"', "").rsplit(".", 1)[-1].lower()


def _anonymous_block(text: str) -> SqlVerdict:
    """`DO $$ ... $$`: PL/pgSQL runs inline; judge it by what its body does, at least `data`."""
    if _DROP.search(text) or re.search(r"\bRENAME\b", text, re.I):
        return SqlVerdict(C.CLEANUP, "SQL DO block drops or renames", None, "DO")
    if _CREATE.search(text):
        return SqlVerdict(C.SCHEMA_HEAVY, "SQL DO block changes the schema", None, "DO")
    if _WRITE.search(text):
        return SqlVerdict(C.DATA, "SQL DO block writes rows", _first_write_table(text), "DO")
    return SqlVerdict(C.UNKNOWN, "SQL DO block whose effect cannot be read", None, "DO")
