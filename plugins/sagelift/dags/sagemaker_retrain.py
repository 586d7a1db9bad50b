"""
### sagemaker_retrain: one retrain DAG per registered model

Each `<model_name>.json` in the folder named by the Airflow setting `[sagelift] retrain_registry`
registers a model for retraining: its sagemaker_deploy conf, a cron `schedule` and/or a
`training_data_prefix` (an Airflow Asset: post an asset event for it through the REST API when new data
lands). This file generates `sagemaker_retrain_<model_name>` for each, which starts
sagemaker_deploy with the stored conf and waits for it. Adding a retrain is adding a file.
"""

from __future__ import annotations

# The DAG processor imports the airflow.* modules a DAG file names at its top once, in its manager, before
# it forks each parse ([dag_processor] parsing_pre_import_modules): the provider modules the operators
# below use are named here so that no parse imports them again (tests/dags/test_import_deny_list.py).
import airflow.providers.amazon.aws.assets.s3  # the s3:// Assets' handler, with boto3
import airflow.providers.standard.operators.trigger_dagrun  # noqa: F401 (pre-imported, see above)

from sagelift.config import load_retrain_models, retrain_registry
from sagelift.dags.retrain import build_retrain_dag

for _model in load_retrain_models(retrain_registry()):
    globals()[_model.dag_id] = build_retrain_dag(_model)
