"""Classification of GitLab post-deploy migrations by their nature (product.md §3)."""

from include.classification.classes import MigrationClass, most_restrictive
from include.classification.engine import (
    ClassificationResult,
    ClassifierConfig,
    Operation,
    classify_path,
    classify_source,
)

__all__ = [
    "ClassificationResult",
    "ClassifierConfig",
    "MigrationClass",
    "Operation",
    "classify_path",
    "classify_source",
    "most_restrictive",
]
