"""PDM Orchestrator domain core: plain Python, no Airflow imports."""
