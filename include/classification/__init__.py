"""Classification of GitLab post-deploy migrations by their nature (product.md §3)."""

from include.classification.classes import MigrationClass, most_restrictive
from include.classification.config import CatalogueError, ClassifierConfig
from include.classification.engine import classify_path, classify_source
from include.classification.result import ClassificationResult, Operation

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
