"""`python -m include.simulation`: replay weeks of production and print the policies' score table.

Exit codes: 0 table printed; 2 bad arguments or input files (the message names the file and key or row).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from include.simulation.inputs import (
    DEFAULT_WORLD,
    InputError,
    WorldSettings,
    load_world_settings,
    traffic_from_prometheus,
)

USAGE_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m include.simulation",
        description="Score PDM scheduling policies side by side on a simulated world (docs/evaluation.md).",
    )
    parser.add_argument("--weeks", type=int, default=12, help="horizon length in weeks (default 12)")
    parser.add_argument("--seed", type=int, default=1, help="random seed; same seed, same world (default 1)")
    parser.add_argument("--policy", type=Path, help="policy file for the orchestrator (default: the world's)")
    parser.add_argument("--world", type=Path, default=DEFAULT_WORLD, help="world settings YAML")
    parser.add_argument("--format", choices=("table", "csv", "html"), default="table")
    parser.add_argument("--output", type=Path, help="write here instead of standard output")
    parser.add_argument("--start", help="first Monday of the horizon, YYYY-MM-DD (default: the world's)")
    parser.add_argument("--traffic", type=Path, help="weekly traffic CSV (day,time,rate)")
    parser.add_argument("--deployments", type=Path, help="deployments CSV (start,duration_min)")
    parser.add_argument("--migrations", type=Path, help="migrations CSV, or a directory of *.rb files")
    parser.add_argument("--incidents", type=Path, help="incidents CSV (opened_at,severity,duration_min)")
    parser.add_argument("--prometheus", help="take the weekly traffic from this Prometheus (range query)")
    parser.add_argument(
        "--prometheus-query", help="PromQL (default: the policy's traffic query for the environment)"
    )
    parser.add_argument("--prometheus-end", help="end of the week to read, ISO-8601 (default: now)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        text = run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def run(args: argparse.Namespace) -> str:
    """Everything between parsed arguments and the rendered text; raises InputError on bad input."""
    from include.simulation.comparison import compare, load_product_policy
    from include.simulation.inputs import read_traffic_csv
    from include.simulation.report import render

    if args.weeks < 1 or args.weeks > 520:
        raise InputError(f"--weeks: expected 1..520, got {args.weeks}")
    settings = load_world_settings(args.world)
    start = None
    if args.start:
        try:
            start = date.fromisoformat(args.start)
        except ValueError:
            raise InputError(f"--start: expected a date YYYY-MM-DD, got {args.start!r}") from None
        if start.weekday() != 0:
            raise InputError(f"--start: {start.isoformat()} is not a Monday")
    for option in ("traffic", "deployments", "migrations", "incidents", "policy"):
        value = getattr(args, option)
        if value is not None and not value.exists():
            raise InputError(f"--{option}: {value} does not exist")
    if args.deployments:
        settings = replace(settings, deployments_file=args.deployments)
    if args.incidents:
        settings = replace(settings, incidents_file=args.incidents)
    if args.migrations:
        if args.migrations.is_dir():
            settings = replace(settings, migrations_directory=args.migrations, migrations_file=None)
        else:
            settings = replace(settings, migrations_file=args.migrations, migrations_directory=None)
    traffic_week = read_traffic_csv(args.traffic) if args.traffic else None
    if args.prometheus:
        query = args.prometheus_query
        if not query:
            policy = load_product_policy(args.policy or settings.policy_path, settings.environment)
            query = policy.gates.traffic.query.replace("{environment}", settings.environment)
        end = datetime.now(UTC)
        if args.prometheus_end:
            from include.simulation.inputs import parse_instant

            parsed = parse_instant(args.prometheus_end)
            if parsed is None:
                raise InputError(
                    f"--prometheus-end: expected an ISO-8601 instant, got {args.prometheus_end!r}"
                )
            end = parsed
        traffic_week = traffic_from_prometheus(args.prometheus, query, end)
    if start is None and (args.migrations or args.deployments or args.incidents):
        start = _first_monday(settings, args)
    comparison = compare(
        settings, args.weeks, args.seed, policy_path=args.policy, start=start, traffic_week=traffic_week
    )
    return render(comparison, args.format)


def _first_monday(settings: WorldSettings, args: argparse.Namespace) -> date | None:
    """With arrivals from files and no --start, begin on the Monday on or before the first one."""
    from datetime import timedelta

    from include.simulation.inputs import (
        read_deployments_csv,
        read_incidents_csv,
        read_migrations_csv,
        read_migrations_directory,
    )

    moments: list[datetime] = []
    if settings.migrations_file:
        moments += [r.merged_at for r in read_migrations_csv(settings.migrations_file)]
    elif settings.migrations_directory:
        moments += [r.merged_at for r in read_migrations_directory(settings.migrations_directory)]
    if settings.deployments_file:
        moments += [t for t, _ in read_deployments_csv(settings.deployments_file)]
    if settings.incidents_file:
        moments += [t for t, _, _ in read_incidents_csv(settings.incidents_file)]
    if not moments:
        return None
    first = min(moments).date()
    return first - timedelta(days=first.weekday())


if __name__ == "__main__":
    raise SystemExit(main())
