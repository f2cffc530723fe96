"""Parse one DAG file the way Airflow's dag-processor does, in this fresh interpreter, and say what it cost.

The dag-processor has Airflow loaded before it parses (it imports `DagBag` and the task SDK once, and freezes
that heap for the garbage collector); what a DAG file adds is its own parse: this imports `DagBag` first,
freezes the heap as the manager does, notes `sys.modules`, parses the file with
`DagBag(dag_folder=FILE)` and prints one JSON line: wall and CPU seconds, the modules the parse added (count and
names), the DAG ids and the import errors. Used by bench/bench_dag_parse.py and tests/architecture.

Usage: parse_dag.py FILE   (run with the project's PYTHONPATH and an Airflow home)
"""

from __future__ import annotations

import gc
import json
import sys
import time


def main(path: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    # The dag-processor's manager freezes its heap before it forks the parsing processes
    # (DagFileProcessorManager.before_run: `gc.freeze()`), so a garbage collection during a parse scans
    # only what the parse allocated; without it one full collection of Airflow's own objects (about
    # 90 ms here) lands on whichever file happens to allocate past the threshold.
    gc.freeze()
    before = set(sys.modules)
    began, began_cpu = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=path, safe_mode=False)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - began_cpu
    added = sorted(name for name in set(sys.modules) - before if not name.startswith("unusual_prefix_"))
    print(
        json.dumps(
            {
                "file": path,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "modules": added,
                "dags": sorted(bag.dags),
                "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
