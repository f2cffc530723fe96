"""Command line for the audit store:
`python -m include.audit migrate|grant-writer|verify|heads|events|report [--uri URI]`.

The URI comes from `--uri` or the environment (`PDM_AUDIT_URI`, else `AIRFLOW_CONN_PDM_AUDIT` when it is a
URI), so no credential needs to be typed on a command line. The keyed-MAC key comes from `PDM_AUDIT_MAC_KEY`.
`migrate` and `grant-writer` run as the owner role; the writer role (Airflow's connection) can only add rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from include.audit import AuditStore, AuditStoreError, AuditTarget


def _uri(arg: str | None) -> str:
    uri = arg or os.environ.get("PDM_AUDIT_URI") or os.environ.get("AIRFLOW_CONN_PDM_AUDIT", "")
    if not uri or uri.lstrip().startswith("{"):
        raise SystemExit(
            "error: give --uri or set PDM_AUDIT_URI (e.g. postgresql://user@host:5432/pdm_audit)"
        )
    return uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.audit", description=__doc__)
    parser.add_argument("--uri", help="audit database URI (postgresql://… or sqlite:///path)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="create or upgrade the schema (idempotent)")
    grant = commands.add_parser(
        "grant-writer", help="PostgreSQL: let ROLE insert and read only (as the owner)"
    )
    grant.add_argument("role")
    verify = commands.add_parser("verify", help="walk the hash chain and report the first broken link")
    verify.add_argument(
        "--heads", help="JSON file of chain heads published earlier (`heads`): detects truncation"
    )
    verify.add_argument("--require-mac", action="store_true", help="every row must carry a valid keyed MAC")
    commands.add_parser(
        "heads", help="print every stream's newest row as JSON, to publish outside the database"
    )
    events = commands.add_parser("events", help="print events: JSON lines (default, for machines) or a table")
    events.add_argument("--run-id")
    events.add_argument("--dag-id")
    events.add_argument("--environment", "--stream", dest="stream", help="environment (e.g. gprd)")
    events.add_argument("--kind", help="event kind (e.g. outcome, decision, task_failed)")
    events.add_argument("--since", help="only events recorded at or after this date (YYYY-MM-DD)")
    events.add_argument("--format", choices=("jsonl", "table"), default="jsonl")
    report = commands.add_parser("report", help="what ran when, waiting per class, gate blocks, overrides")
    report.add_argument("--since", help="only events recorded at or after this date (YYYY-MM-DD)")
    report.add_argument("--format", choices=("table", "csv", "html"), default="table")
    report.add_argument("--output", help="write to this file instead of standard output")
    args = parser.parse_args(argv)
    key = os.environ.get("PDM_AUDIT_MAC_KEY")
    store = AuditStore(AuditTarget.from_uri(_uri(args.uri)), mac_key=key.encode() if key else None)
    try:
        if args.command == "migrate":
            print(f"audit schema at version {store.migrate()} ({store.target.description})")
        elif args.command == "grant-writer":
            store.grant_writer(args.role)
            print(f"{args.role}: INSERT and SELECT on the audit log, lease rows; nothing else")
        elif args.command == "heads":
            print(json.dumps(store.heads(), sort_keys=True))
        elif args.command == "verify":
            heads = None
            if args.heads:
                with open(args.heads, encoding="utf-8") as handle:
                    heads = json.load(handle)
            chain = store.verify(heads=heads, require_mac=args.require_mac)
            print(chain.message)
            return 0 if chain.ok else 1
        elif args.command == "events":
            found = store.events(
                run_id=args.run_id, dag_id=args.dag_id, stream=args.stream, kind=args.kind, since=args.since
            )
            if args.format == "table":
                from include.audit.events_table import events_table

                print(events_table(found))
            else:
                for event in found:
                    print(json.dumps(event.to_dict(), default=str))
        elif args.command == "report":
            from include.audit.report import build_report

            built = build_report(store.events(since=args.since))
            text = {"table": built.to_text, "csv": built.to_csv, "html": built.to_html}[args.format]()
            if args.output:
                with open(args.output, "w", encoding="utf-8") as handle:
                    handle.write(text)
                print(f"report written to {args.output}")
            else:
                print(text)
    except AuditStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
