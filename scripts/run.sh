#!/usr/bin/env bash
# `make run`: the product on this machine — sandbox GitLab, a traffic source scraped by a real Prometheus,
# and `airflow standalone` (SQLite, LocalExecutor) with the PDM DAGs and plugins. Ctrl-C stops it all.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
export PYTHONPATH="$ROOT:$ROOT/plugins"

RUN_DIR="${PDM_RUN_DIR:-$ROOT/.run/local}"
export AIRFLOW_HOME="${PDM_AIRFLOW_HOME:-$ROOT/.airflow}"
AIRFLOW_PORT="${PDM_AIRFLOW_PORT:-8080}"
GITLAB_PORT="${PDM_SANDBOX_GITLAB_PORT:-18929}"
EXPORTER_PORT="${PDM_TRAFFIC_EXPORTER_PORT:-19091}"
PROMETHEUS_PORT="${PDM_PROMETHEUS_PORT:-19090}"
export PDM_POLICY_FILE="${PDM_POLICY_FILE:-$ROOT/config/policy.local.yaml}"
mkdir -p "$RUN_DIR" "$AIRFLOW_HOME"

export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM=4
# SQLite: wait up to a minute for a writer instead of failing with "database is locked" (plugins/pdm_orchestrator/sqlite_wait.py).
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS=pdm_orchestrator.sqlite_wait.CONNECT_ARGS
export AIRFLOW__API__PORT="$AIRFLOW_PORT"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$AIRFLOW_PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$AIRFLOW_PORT/execution/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=20
export AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR=True
export PDM_PIPELINE_POLL_SECONDS="${PDM_PIPELINE_POLL_SECONDS:-5}"

# The sandbox token is generated once per checkout and kept out of git (.run/ is ignored).
TOKEN_FILE="$RUN_DIR/sandbox-gitlab-token"
[ -s "$TOKEN_FILE" ] || python -c "import secrets; print('sandbox-' + secrets.token_hex(16))" > "$TOKEN_FILE"
export SANDBOX_GITLAB_TOKEN="$(cat "$TOKEN_FILE")"
# The bearer token Prometheus uses for /pdm/metrics (kept in a file Prometheus reads).
METRICS_TOKEN_FILE="$RUN_DIR/pdm-metrics-token"
[ -s "$METRICS_TOKEN_FILE" ] || python -c "import secrets; print(secrets.token_hex(24))" > "$METRICS_TOKEN_FILE"
export PDM_METRICS_TOKEN="$(cat "$METRICS_TOKEN_FILE")"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping everything make run started…"
  for pid in "${pids[@]}"; do kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  sleep 2
  for pid in "${pids[@]}"; do kill -KILL "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

start() {  # start NAME CMD...: in its own process group, logging to RUN_DIR/NAME.log
  local name="$1"; shift
  setsid "$@" >"$RUN_DIR/$name.log" 2>&1 &
  pids+=("$!")
}

wait_http() {  # wait_http URL SECONDS NAME [any]: up when it answers 2xx (or anything, with "any")
  local deadline=$((SECONDS + $2)) flags="-fsS"
  [ "${4:-}" = "any" ] && flags="-sS"
  until curl $flags -o /dev/null "$1" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "error: $3 did not come up at $1 (log: $RUN_DIR/$3.log)" >&2; exit 1; fi
    sleep 0.5
  done
}

echo "airflow home: $AIRFLOW_HOME (SQLite)"
airflow db migrate >"$RUN_DIR/db-migrate.log" 2>&1 || { echo "error: airflow db migrate failed, see $RUN_DIR/db-migrate.log" >&2; exit 1; }
# The audit schema is migrated here, apart from the writes (tasks never change the schema).
python -m include.audit --uri "sqlite:///$AIRFLOW_HOME/pdm_audit.db" migrate >>"$RUN_DIR/db-migrate.log" 2>&1 \
  || { echo "error: audit migrate failed, see $RUN_DIR/db-migrate.log" >&2; exit 1; }

start sandbox-gitlab python -m include.sandbox.gitlab_server \
  --scenario "$ROOT/include/sandbox/scenarios/demo.yaml" --host 127.0.0.1 --port "$GITLAB_PORT"
start traffic-exporter python -m include.sandbox.traffic_exporter --host 127.0.0.1 --port "$EXPORTER_PORT" --mode profile
wait_http "http://127.0.0.1:$GITLAB_PORT/api/v4/version" 30 sandbox-gitlab any
wait_http "http://127.0.0.1:$EXPORTER_PORT/metrics" 30 traffic-exporter
if command -v prometheus >/dev/null 2>&1; then
  start prometheus python -m include.sandbox.prometheus_server --port "$PROMETHEUS_PORT" \
    --data-dir "$RUN_DIR/prometheus" --target "127.0.0.1:$EXPORTER_PORT" --weeks-of-history 4 \
    --pdm-metrics "127.0.0.1:$AIRFLOW_PORT" --pdm-metrics-token-file "$METRICS_TOKEN_FILE"
  wait_http "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" 120 prometheus
else
  echo "warning: prometheus is not installed (apt-get install -y prometheus): the traffic gate stays closed" >&2
fi

# Connections: (re)registered on every start, so running twice is harmless.
python - <<PY
import json, os, subprocess
conns = {
    "gitlab_default": {"conn_type": "http", "host": "http://127.0.0.1:$GITLAB_PORT",
                       "password": os.environ["SANDBOX_GITLAB_TOKEN"], "extra": json.dumps({"timeout": 10})},
    "prometheus_default": {"conn_type": "http", "host": "127.0.0.1", "port": "$PROMETHEUS_PORT", "schema": "http"},
    "pdm_audit": {"conn_type": "sqlite", "host": "$AIRFLOW_HOME/pdm_audit.db", "extra": json.dumps({"dialect": "sqlite"})},
}
for conn_id, c in conns.items():
    subprocess.run(["airflow", "connections", "delete", conn_id], capture_output=True)
    args = ["airflow", "connections", "add", conn_id, "--conn-type", c["conn_type"], "--conn-host", c["host"]]
    for key, flag in (("port", "--conn-port"), ("schema", "--conn-schema"), ("password", "--conn-password"), ("extra", "--conn-extra")):
        if c.get(key):
            args += [flag, str(c[key])]
    subprocess.run(args, check=True, capture_output=True)
print("connections registered: " + ", ".join(conns))
PY

# Preflight: can the bot do its job against this GitLab and Prometheus? One line per check; a problem is
# reported (the gates it concerns stay closed) but does not stop the local run.
echo "preflight (python -m pdm_orchestrator.preflight):"
python -m pdm_orchestrator.preflight 2>"$RUN_DIR/preflight.log" | sed 's/^/  /' \
  || echo "warning: preflight found problems (above; details in $RUN_DIR/preflight.log)" >&2

start airflow airflow standalone
echo "waiting for Airflow on http://127.0.0.1:$AIRFLOW_PORT …"
wait_http "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health" 180 airflow
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
# The run note of each PDM run (its outcome in one line) is written through the REST API by this connection.
airflow connections delete pdm_airflow_api >/dev/null 2>&1 || true
airflow connections add pdm_airflow_api --conn-type http --conn-host "http://127.0.0.1:$AIRFLOW_PORT" \
  --conn-login admin --conn-password "$(python -c "import json;print(json.load(open('$PASSWORDS'))['admin'])")" \
  >/dev/null 2>&1 || echo "warning: could not register pdm_airflow_api: PDM runs get no run note" >&2
cat <<MSG

  PDM Orchestrator is up.
  Airflow UI:     http://127.0.0.1:$AIRFLOW_PORT   (user: admin, password in $PASSWORDS:
                  $(python -c "import json;print(json.load(open('$PASSWORDS')).get('admin',''))" 2>/dev/null || echo "see the file"))
  Sandbox GitLab: http://127.0.0.1:$GITLAB_PORT    Prometheus: http://127.0.0.1:$PROMETHEUS_PORT
  Policy:         $PDM_POLICY_FILE
  Logs:           $RUN_DIR/*.log
  Ctrl-C stops everything.

MSG
wait "${pids[-1]}"
