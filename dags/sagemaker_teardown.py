from sagelift.dags.sagemaker_teardown import dag  # noqa: F401 (the Airflow DAG, defined in the sagelift package)
