"""
### sagemaker_retrain: one retrain DAG per registered model in include/retrain/

Each `include/retrain/<model_name>.json` registers a model for retraining: its sagemaker_deploy conf, a
cron `schedule` and/or a `training_data_prefix` (an Airflow Asset: post an asset event for it through the
REST API when new data lands). This file generates `sagemaker_retrain_<model_name>` for each, which starts
sagemaker_deploy with the stored conf and waits for it. Adding a retrain is adding a file.
"""

from __future__ import annotations

from sagelift.config import REGISTRY, load_retrain_models
from sagelift.dags.retrain import build_retrain_dag

for _model in load_retrain_models(REGISTRY):
    globals()[_model.dag_id] = build_retrain_dag(_model)
