"""The production compose file, checked statically against what the product needs to run on Celery."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-worker": "celery worker",
    "airflow-triggerer": "triggerer",
}


def test_every_component_is_there():
    assert {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES} <= set(SERVICES)


@pytest.mark.parametrize(("service", "command"), AIRFLOW_SERVICES.items())
def test_airflow_services_command_health_and_order(service, command):
    spec = SERVICES[service]
    assert spec["command"] == command
    assert spec["healthcheck"]["test"], f"{service} has no health check"
    depends = spec["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["airflow-init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_airflow_environment(service):
    env = SERVICES[service]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    for conn in ("AIRFLOW_CONN_GITLAB_DEFAULT", "AIRFLOW_CONN_PROMETHEUS_DEFAULT", "AIRFLOW_CONN_PDM_AUDIT"):
        assert conn in env, f"{service} lacks {conn}"
    # The audit store is its own database, not Airflow's metadata database.
    assert env["AIRFLOW_CONN_PDM_AUDIT"].endswith("/pdm_audit")
    assert "/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["PDM_POLICY_FILE"].startswith("/opt/airflow/config/")


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_project_code_is_mounted(service):
    mounts = {v.split(":")[1] for v in SERVICES[service]["volumes"] if ":" in v}
    assert {
        "/opt/airflow/dags",
        "/opt/airflow/plugins",
        "/opt/airflow/include",
        "/opt/airflow/config",
    } <= mounts


def test_init_migrates_metadata_and_audit_and_validates_policy():
    script = "\n".join(SERVICES["airflow-init"]["command"])
    assert "airflow db migrate" in script
    assert "include.audit" in script and "migrate" in script
    assert "load_policy" in script


def test_audit_database_is_created_with_its_own_role():
    init = (ROOT / "deploy" / "postgres-init.sh").read_text()
    assert "CREATE DATABASE pdm_audit" in init and "CREATE ROLE pdm_audit_writer" in init


def test_secrets_only_from_env_file():
    text = (ROOT / "docker-compose.yaml").read_text()
    referenced = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)(?::-[^}]*)?\}", text))
    example = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert referenced <= example, f"not documented in .env.example: {sorted(referenced - example)}"
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert not re.search(r"(glpat-|PASSWORD:\s*[A-Za-z0-9])", text)


def test_demo_profile_services():
    for name in ("sandbox-gitlab", "traffic-exporter", "prometheus"):
        assert SERVICES[name]["profiles"] == ["demo"]


def test_dockerfile_installs_pinned_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "apache/airflow:3.3.2" in dockerfile and "requirements.txt" in dockerfile


def test_docker_compose_config_when_an_engine_exists(tmp_path):
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine on this machine: the static checks above stand in")
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    result = subprocess.run(
        [docker, "compose", "--env-file", str(env), "-f", str(ROOT / "docker-compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
