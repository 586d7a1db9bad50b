"""The Airflow-free core: each pipeline step's workflow, shared by both engines.

Every step of sagemaker_deploy (and of teardown) is written once here, as plain functions over boto3
clients or sessions and the pure builders of ``sagelift.domain``: the role chain's credentials, tag
resolution, the image copy, training start/adopt/stop/outcome, model replacement, endpoint
reconciliation (create or update, Failed recovery, the Updating guard, rollback detection, pruning),
the API Gateway API, the pipeline's volume claim and teardown.

Two adapters call these functions and add only what their engine owns:

- Airflow (``sagelift.operators``): hooks hand the operators sessions from the account's connection;
  the operators call a step, then defer or wait, and turn ``StepFailed`` into a failed task without
  retries and ``StepRetry`` into a retried one;
- Kubeflow Pipelines (``include/kfp/sagelift_kfp``): each component builds the chained session from
  the pod's identity and calls the same step, waiting with boto waiters.

Nothing in this package imports Airflow or kfp (tests/test_architecture.py checks it), so the KFP
component image carries it as it is.
"""
