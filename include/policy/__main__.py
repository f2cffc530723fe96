"""`python -m include.policy check FILE [FILE…]`: validate policy files for merge-request CI.
`python -m include.policy keys`: every key of the policy with its type and default, from the one schema.

Prints `FILE: ok (…)` for a valid file; for an invalid one prints the same `file: key.path: problem` lines the
DAGs show, on standard error, and exits 1.
"""

from __future__ import annotations

import argparse
import sys

from include.policy.errors import PolicyError
from include.policy.loader import load_policy


def check(path: str) -> tuple[bool, str]:
    """(valid, message) for one file: a summary when valid, every problem (one per line) when not."""
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        return False, str(exc)
    return True, (
        f"{path}: ok (environments: {', '.join(policy.environments)}; execution mode: {policy.execution_mode})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.policy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    checker = commands.add_parser("check", help="validate policy files; exit 1 if any is invalid")
    checker.add_argument("files", nargs="+", metavar="FILE")
    commands.add_parser(
        "keys", help="list every policy key with its type and default (include/policy/schema.py)"
    )
    args = parser.parse_args(argv)
    if args.command == "keys":
        from include.policy.schema import reference

        for path, kind, default in reference():
            print(f"{path}\t{kind}\t{default}")
        return 0
    failed = 0
    for path in args.files:
        ok, message = check(path)
        print(message, file=sys.stdout if ok else sys.stderr)
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
