"""
### sagemaker_retrain: one retrain DAG per registered model

Each `<model_name>.json` in the folder named by the Airflow setting `[sagelift] retrain_registry`
registers a model for retraining: its sagemaker_deploy conf, a cron `schedule` and/or a
`training_data_prefix` (an Airflow Asset: post an asset event for it through the REST API when new data
lands). This file generates `sagemaker_retrain_<model_name>` for each, which starts
sagemaker_deploy with the stored conf and waits for it. Adding a retrain is adding a file.
"""

from __future__ import annotations

from sagelift.config import load_retrain_models, retrain_registry
from sagelift.dags.retrain import build_retrain_dag

for _model in load_retrain_models(retrain_registry()):
    globals()[_model.dag_id] = build_retrain_dag(_model)
