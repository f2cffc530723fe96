"""Classification of GitLab post-deploy migrations by their nature (product.md §3).

The names below are loaded on first use (PEP 562): importing `include.classification.classes` (the policy
does, to name classes) must not load the engine, its rules and catalogue, which declaring a DAG never needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.classification.classes import MigrationClass, most_restrictive
    from include.classification.config import CatalogueError, ClassifierConfig
    from include.classification.engine import classify_path, classify_source
    from include.classification.result import ClassificationResult, Operation

_HOMES = {
    "CatalogueError": "config",
    "ClassificationResult": "result",
    "ClassifierConfig": "config",
    "MigrationClass": "classes",
    "Operation": "result",
    "classify_path": "engine",
    "classify_source": "engine",
    "most_restrictive": "classes",
}

__all__ = [
    "CatalogueError",
    "ClassificationResult",
    "ClassifierConfig",
    "MigrationClass",
    "Operation",
    "classify_path",
    "classify_source",
    "most_restrictive",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
