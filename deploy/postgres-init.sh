#!/usr/bin/env bash
# Runs once when the PostgreSQL volume is created: the audit store gets its own database and two roles.
#   pdm_audit_owner  owns the database and its tables; runs `python -m include.audit migrate` and
#                    `grant-writer` (airflow-init only). Never given to Airflow's tasks.
#   pdm_audit_writer Airflow's `pdm_audit` connection: INSERT and SELECT on the log, the lease rows, nothing
#                    else (it owns nothing, so it cannot drop or disable the append-only triggers).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE pdm_audit_owner LOGIN PASSWORD '${PDM_AUDIT_OWNER_PASSWORD}';
CREATE ROLE pdm_audit_writer LOGIN PASSWORD '${PDM_AUDIT_PASSWORD}';
CREATE DATABASE pdm_audit OWNER pdm_audit_owner;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname pdm_audit <<SQL
REVOKE ALL ON DATABASE pdm_audit FROM PUBLIC;
GRANT CONNECT ON DATABASE pdm_audit TO pdm_audit_writer;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO pdm_audit_owner;
SQL
