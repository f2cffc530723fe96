"""Fixture discovery for the classification tests, and the `# expect:` headers each fixture carries."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
_EXPECT = re.compile(r"^#\s*expect(?:\((?P<target>\w+)\))?:\s*(?P<body>.*)$")
_EXPECT_REASON = re.compile(r"^#\s*expect-reason:\s*(?P<text>.*)$")
_EXPECT_OP = re.compile(r"^#\s*expect-op:\s*(?P<helper>\S+)\s+(?P<table>\S+)\s+(?P<cls>\S+)\s*$")


@dataclass
class Expectation:
    """What a fixture file says about itself in its `# expect...:` comment lines."""

    fields: dict[str, dict[str, str]] = field(default_factory=dict)  # target -> key -> value
    reasons: list[str] = field(default_factory=list)
    operations: list[tuple[str, str | None, str]] = field(default_factory=list)


def read_expectation(path: Path) -> Expectation:
    expectation = Expectation()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if match := _EXPECT.match(line):
            target = match.group("target") or "gitlab_com"
            pairs = dict(part.split("=", 1) for part in match.group("body").split())
            expectation.fields.setdefault(target, {}).update(pairs)
        elif match := _EXPECT_REASON.match(line):
            expectation.reasons.append(match.group("text"))
        elif match := _EXPECT_OP.match(line):
            table = match.group("table")
            expectation.operations.append(
                (match.group("helper").replace("~", " "), None if table == "-" else table, match.group("cls"))
            )
    return expectation


def fixture_files(folder: str = "") -> list[Path]:
    return sorted((FIXTURES / folder).rglob("*.rb"))
