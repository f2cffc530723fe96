#!/usr/bin/env bash
# Runs once when the PostgreSQL volume is created: the audit store gets its own database and role.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE pdm_audit LOGIN PASSWORD '${PDM_AUDIT_PASSWORD}';
CREATE DATABASE pdm_audit OWNER pdm_audit;
SQL
