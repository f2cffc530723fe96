"""Classification of GitLab post-deploy migrations by their nature (product.md §3)."""

from include.classification.classes import MigrationClass, most_restrictive

__all__ = ["MigrationClass", "most_restrictive"]
