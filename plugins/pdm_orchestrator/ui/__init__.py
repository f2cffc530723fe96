"""The PDM page and metrics endpoint served by the Airflow API server."""
