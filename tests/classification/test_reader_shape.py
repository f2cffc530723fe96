"""The reader's shape as mypy sees it (state.ReaderState's type-checking declarations) matches the reader."""

from __future__ import annotations

import ast
import inspect

from include.classification import state
from include.classification.engine import MigrationReader


def _declared_methods() -> list[str]:
    """Names of the methods ReaderState declares under `if TYPE_CHECKING:` (absent at run time)."""
    tree = ast.parse(inspect.getsource(state))
    (reader_state,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ReaderState"]
    names = []
    for statement in reader_state.body:
        if isinstance(statement, ast.If) and ast.unparse(statement.test) == "TYPE_CHECKING":
            names += [f.name for f in statement.body if isinstance(f, ast.FunctionDef)]
    return names


def test_every_declared_method_is_defined_by_a_part_of_the_reader():
    # mypy checks each definition against its declaration; a declaration no part defines would pass mypy
    # and fail at run time, so it is caught here.
    names = _declared_methods()
    assert names, "ReaderState declares no methods for the type checker"
    missing = [name for name in names if not callable(getattr(MigrationReader, name, None))]
    assert missing == []


def test_declarations_do_not_exist_at_run_time():
    # The declarations are for mypy only: the reader's calls go straight to the part that defines them.
    assert all(name not in vars(state.ReaderState) for name in _declared_methods())
