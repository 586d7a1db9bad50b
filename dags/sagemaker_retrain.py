from sagelift.dags.sagemaker_retrain import *  # noqa: F403 (the Airflow DAGs, defined in the sagelift package)
