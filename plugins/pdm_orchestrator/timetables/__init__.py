"""PDM Orchestrator Airflow adapters."""
