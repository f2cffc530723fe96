"""SQLite connection arguments for the test `airflow standalone`: wait for a lock instead of failing.

The scheduler, dag-processor and a CLI such as `airflow backfill create` write to one SQLite file; Python's
default 5 s busy timeout turns a slow writer on a loaded machine into "database is locked". Airflow reads this
through `[database] sql_alchemy_connect_args` (an import path).
"""

CONNECT_ARGS: dict[str, object] = {"timeout": 60}
