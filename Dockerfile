# The PDM Orchestrator image: Airflow 3.3 with the project's pinned dependencies and code.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt /requirements.txt
RUN pip install --no-cache-dir -r /requirements.txt
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root config/ /opt/airflow/config/
ENV PYTHONPATH=/opt/airflow:/opt/airflow/plugins \
    PDM_POLICY_FILE=/opt/airflow/config/policy.yaml
