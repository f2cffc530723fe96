"""The codebase's shape, checked: layer contracts (import-linter), types (mypy), what declaring DAGs costs."""
