"""SQLite connection arguments for the embedded local run (`make run`) and the tests' `airflow standalone`.

The scheduler, dag-processor, triggerer, API server and a CLI such as `airflow backfill create` all write to
one SQLite file; Python's default 5 s busy timeout turns a slow writer on a loaded machine into "database is
locked" (an HTTP 500 from the API, a failed CLI). Waiting up to a minute for the lock instead is what a
single-file database needs. Airflow reads this through `[database] sql_alchemy_connect_args` (an import
path); production runs on PostgreSQL and leaves the setting unset.
"""

CONNECT_ARGS: dict[str, object] = {"timeout": 60}
