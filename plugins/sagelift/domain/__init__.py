"""Pure core: parameters, validation, naming, request builders, tag rules, platform configuration.

Nothing here imports airflow, boto3, botocore, kubernetes or kfp (tests/test_architecture.py checks),
so the same code builds identical requests under Airflow and inside Kubeflow Pipelines components.
"""
