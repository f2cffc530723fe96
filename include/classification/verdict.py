"""The verdict: the strictest operation decides the class, data changes on large tables count as
schema_heavy, and the reasons say why (headline first, then escalations, other unknowns, guards)."""

from __future__ import annotations

from include.classification.classes import MigrationClass, most_restrictive
from include.classification.config import TableList
from include.classification.rails import article
from include.classification.result import ClassificationResult, Operation

C = MigrationClass
TABLE_SENSITIVE = (C.DATA, C.SCHEMA_HEAVY)
SIZE_RANK = {None: 0, "large": 1, "over_limit": 2}


def finish(
    result: ClassificationResult,
    operations: list[Operation],
    tables: TableList,
    notes: list[str],
    temporary_indexes: list[str],
    target: str,
) -> None:
    """Set the result's class, table size, operations and reasons from what the walk recorded.

    Data changes on large tables are escalated to schema_heavy; the strictest class wins and its first
    operation is the headline reason; `notes` are the walk's own reasons (guards, skipped code).
    """
    size_of = tables.size_of
    worst_size = None
    escalations = []
    for index, op in enumerate(operations):
        size = size_of(op.table) if op.table else None
        if size is None:
            continue
        if SIZE_RANK[size] > SIZE_RANK[worst_size]:
            worst_size = size
        if op.cls in TABLE_SENSITIVE:
            label = size.replace("_", "-")
            if op.cls is C.DATA:
                operations[index] = Operation(
                    op.helper,
                    op.table,
                    op.line,
                    C.SCHEMA_HEAVY,
                    f"{op.rationale}; escalated: {op.table} is {article(label)} {label} table",
                )
                escalations.append(
                    f"{op.helper} on {op.table} ({label} table, line {op.line}) counts as schema_heavy"
                )
            else:
                escalations.append(
                    f"{op.helper} on {op.table}: {article(label)} {label} table (line {op.line})"
                )
    result.table_size = worst_size
    cls = most_restrictive(op.cls for op in operations)
    result.migration_class = cls
    result.operations = operations
    reasons: list[str] = []
    strongest = next((op for op in operations if op.cls is cls), None)
    if strongest is not None and cls is not C.NOOP:
        where = f" on {strongest.table}" if strongest.table else ""
        reasons.append(
            f"{cls.value}: {strongest.helper}{where} (line {strongest.line}): {strongest.rationale}"
        )
    elif not notes:
        if strongest is not None:
            reasons.append(f"noop: {strongest.helper} (line {strongest.line}): {strongest.rationale}")
        else:
            reasons.append("noop: `up` is empty (or only comments)")
    else:
        reasons.append(f"noop: nothing runs on {target}")
    for name in temporary_indexes:
        reasons.append(f"temporary index {name} is created and dropped inside `up`: cleanup")
    reasons.extend(escalations)
    if cls is C.UNKNOWN:
        unknown = [op for op in operations if op.cls is C.UNKNOWN and op is not strongest]
        for op in unknown[:10]:
            reasons.append(f"unknown: {op.helper} (line {op.line}): {op.rationale}")
        if len(unknown) > 10:
            reasons.append(f"unknown: {len(unknown) - 10} more calls the engine cannot bound")
    reasons.extend(notes)
    result.reasons = reasons
