"""Reporters: the same results as an aligned table, JSON, JSON lines or CSV (the engine never prints)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any, TextIO

from include.classification.classes import MigrationClass
from include.classification.result import RESULT_KEYS

FORMATS = ("table", "json", "jsonl", "csv")


def write_report(results: list[dict[str, Any]], out: TextIO, fmt: str) -> None:
    """Write classification results (`ClassificationResult.to_dict()` rows) in one of FORMATS."""
    if fmt == "jsonl":
        out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results))
    elif fmt == "json":
        json.dump(results, out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif fmt == "csv":
        write_csv(results, out)
    elif fmt == "table":
        out.write(render_table(results) + "\n")
    else:
        raise ValueError(f"unknown report format {fmt!r} (expected one of: {', '.join(FORMATS)})")


def write_csv(results: list[dict[str, Any]], out: TextIO) -> None:
    """One row per migration; list fields are JSON so a spreadsheet keeps them in one cell."""
    import pandas as pd  # only the csv report pays for pandas' import

    columns = list(results[0]) if results else list(RESULT_KEYS)
    frame = pd.DataFrame(results, columns=columns)
    for column in ("operations", "reasons", "conflicts"):
        frame[column] = frame[column].map(lambda v: json.dumps(v, ensure_ascii=False))
    frame.to_csv(out, index=False, lineterminator="\n")


def summary(results: Iterable[dict[str, Any]]) -> Counter[str]:
    return Counter(r["class"] for r in results)


def render_table(results: list[dict[str, Any]]) -> str:
    """Aligned columns a release manager can scan, then a per-class summary and any annotation conflicts."""
    header = ("VERSION", "CLASS", "DATABASE", "TABLE SIZE", "NAME", "WHY")
    rows = [header]
    for r in results:
        why = (r["reasons"] or [""])[0]
        rows.append(
            (
                r["version"] or "-",
                r["class"] + ("*" if r["annotated"] else ""),
                r["database"],
                r["table_size"] or "-",
                r["name"] or r["path"],
                why if len(why) <= 100 else why[:99] + "…",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join([*(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])), row[-1]]).rstrip()
        for row in rows
    ]
    counts = summary(results)
    lines.append("")
    lines.append(f"{len(results)} migration{'s' if len(results) != 1 else ''}")
    for cls in MigrationClass:
        if counts[cls.value]:
            lines.append(f"  {cls.value:<13}{counts[cls.value]:>6}")
    if any(r["annotated"] for r in results):
        lines.append("  (* class decided by a `# pdm:` annotation)")
    conflicts = [f"  {r['path']}: {c}" for r in results for c in r["conflicts"]]
    if conflicts:
        lines += ["", "Annotation conflicts:", *conflicts]
    return "\n".join(lines)
