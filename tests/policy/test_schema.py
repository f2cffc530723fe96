"""The policy schema is declared once (include/policy/schema.py): the loader, `keys` and the docs follow it."""

from __future__ import annotations

import re
from pathlib import Path

from include.policy import loader, schema
from include.policy.__main__ import main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def _reference_rows(whole: bool = False) -> list[str]:
    """Each row of docs/policy.md's key reference table: its first cell, or the whole row."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Key reference", 1)[1].split("\n## ", 1)[0]
    return [line if whole else line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]


def test_every_schema_key_is_in_the_docs_key_reference():
    rows, whole_rows = _reference_rows(), _reference_rows(whole=True)
    missing = []
    for declared in schema.SECTIONS:
        prefix = declared.path.split(" (")[0]
        for key in declared.keys:
            if not prefix:
                found = any(row.strip().startswith(f"`{key}") for row in rows)
            else:
                short = "`_" + key.rsplit("_", 1)[-1] + "`"
                found = any(
                    f"`{prefix}.{key}" in row
                    or (f"`{prefix}." in row and (f"`.{key}`" in row or short in row))
                    for row in rows
                ) or any(  # a mapping documented on one row: `path` | `{key, key}` | …
                    row.split("|")[1].strip() == f"`{prefix}`" and re.search(rf"\b{key}\b", row)
                    for row in whole_rows
                )
            if not found:
                missing.append(f"{prefix}.{key}" if prefix else key)
    assert missing == [], f"docs/policy.md's key reference lacks {missing}"


def test_every_documented_key_is_in_the_schema():
    declared = {item[0] for item in schema.reference()}
    sections = {s.path.split(" (")[0] for s in schema.SECTIONS}
    unknown = []
    for row in _reference_rows():
        for path in re.findall(r"`([a-z_<>\[\]\.]+)`", row):
            if path.startswith(".") or path.startswith("_"):
                continue
            if path not in declared and path not in sections:
                unknown.append(path)
    assert unknown == [], f"docs/policy.md documents keys the schema lacks: {unknown}"


def test_the_loader_reads_its_sections_keys_from_the_schema():
    assert loader.TRAFFIC_KEYS == schema.keys("gates.traffic")
    assert loader.LOCK_KINDS["holidays"] == ("name", "holidays", "timezone", "description")
    assert schema.field("gates.traffic.threshold").default == 600.0


def test_keys_prints_the_reference(capsys):
    assert main(["keys"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "gates.traffic.baseline_weeks\twhole number 1–52\t4" in lines
    assert "gates.max_wait\tduration > 0\t6h" in lines
