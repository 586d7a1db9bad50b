from sagelift.dags.sagemaker_deploy import dag  # noqa: F401 (the Airflow DAG, defined in the sagelift package)
