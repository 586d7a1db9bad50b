"""sagelift's pipeline steps for Kubeflow Pipelines: Airflow-free step bodies and the AWS role chain.

The compiled pipeline's components import this package and ``sagelift.domain`` in their container
(see include/kfp/README.md for how they get there), so both engines build their requests with the
same pure builders.
"""
