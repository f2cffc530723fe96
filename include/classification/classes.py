"""The migration classes, ordered from least to most restrictive (product.md §3)."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class MigrationClass(enum.Enum):
    """What a post-deploy migration does at PDM time; the order is the scheduling strictness."""

    NOOP = "noop"
    BACKGROUND = "background"
    DATA = "data"
    SCHEMA_HEAVY = "schema_heavy"
    CLEANUP = "cleanup"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: MigrationClass) -> bool:
        if not isinstance(other, MigrationClass):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: MigrationClass) -> bool:
        if not isinstance(other, MigrationClass):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: MigrationClass) -> bool:
        if not isinstance(other, MigrationClass):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: MigrationClass) -> bool:
        if not isinstance(other, MigrationClass):
            return NotImplemented
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: str | MigrationClass) -> MigrationClass:
        """Accept a class name as written in YAML, annotations or the CLI; raise ValueError otherwise."""
        if isinstance(value, MigrationClass):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = ", ".join(c.value for c in cls)
            raise ValueError(f"unknown migration class {value!r} (expected one of: {names})") from None


_RANK = {member: index for index, member in enumerate(MigrationClass)}


def most_restrictive(classes: Iterable[MigrationClass]) -> MigrationClass:
    """The strictest class of a set; an empty set is `noop` (nothing to do)."""
    return max(classes, default=MigrationClass.NOOP, key=_RANK.__getitem__)  # the first of the strictest
