from sagelift.dags.sagemaker_deploy_kfp import dag  # noqa: F401 (the Airflow DAG, defined in the sagelift package)
