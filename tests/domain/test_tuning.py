"""CreateHyperParameterTuningJob's body (issue 17 item 1): the training job's definition carried over
(network, KMS, spot, metrics, overrides), checked against botocore's service model; reading a job back."""

from __future__ import annotations

import pytest

from sagelift.domain.params import parse_params
from sagelift.domain.plan import derive_names
from sagelift.domain.platform import SageMakerSettings
from sagelift.domain.sagemaker import build_training_job_request
from sagelift.domain.security import NetworkSettings
from sagelift.domain.tuning import (
    TUNING_JOB_NAME_MAX,
    build_tuning_job_request,
    derive_tuning_job_name,
    render_tuning_facts,
    render_tuning_progress,
    tuning_facts,
)
from tests.support.botocore_validation import validate_request
from tests.support.scenario import demo_conf

ROLE = "arn:aws:iam::333333333333:role/sagelift-training-execution"
TAGS = [{"Key": "sagelift:model-name", "Value": "churn-predictor"}]
NETWORK = NetworkSettings(
    subnets=("subnet-0123456789abcdef0",),
    security_group_ids=("sg-0123456789abcdef0",),
    volume_kms_key="arn:aws:kms:us-east-1:333333333333:key/11111111-2222-3333-4444-555555555555",
    output_kms_key="arn:aws:kms:us-east-1:333333333333:key/11111111-2222-3333-4444-555555555555",
    inter_container_traffic_encryption=True,
)
TUNING = {
    "strategy": "Bayesian",
    "objective_metric": "validation:auc",
    "objective_direction": "Maximize",
    "parameter_ranges": {
        "depth": {"type": "integer", "min": 3, "max": 9},
        "alpha": {"type": "continuous", "min": 0.001, "max": 1, "scaling": "Logarithmic"},
        "booster": {"type": "categorical", "values": ["gbtree", "dart"]},
    },
    "max_jobs": 8,
    "max_parallel_jobs": 2,
}


def _requests(conf: dict, network: NetworkSettings | None = NETWORK) -> tuple[dict, dict]:
    params = parse_params(conf)
    names = derive_names(params.model_name, "sagemaker_deploy", "manual__2026-11-29T10:00:00+00:00")
    training = build_training_job_request(
        params,
        names,
        region="us-east-1",
        role_arn=ROLE,
        tags=TAGS,
        settings=SageMakerSettings(),
        network=network,
    )
    return training, build_tuning_job_request(params, names, training)


def conf(**kwargs) -> dict:
    training = {
        "use_spot": True,
        "metric_definitions": [{"name": "validation:auc", "regex": "auc=([0-9.]+)"}],
    }
    return demo_conf(training=training, tuning={**TUNING, **kwargs})


def test_the_tuning_job_trains_with_the_training_job_s_definition_and_botocore_accepts_it():
    training, request = _requests(
        {**conf(), "request_overrides": {"CreateTrainingJob": {"Environment": {"LOG_LEVEL": "debug"}}}}
    )
    assert validate_request("sagemaker", "CreateHyperParameterTuningJob", request) == []
    definition = request["TrainingJobDefinition"]
    for field in (
        "RoleArn",
        "InputDataConfig",
        "VpcConfig",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining",
    ):
        assert definition[field] == training[field], field
    assert definition["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "validation:auc", "Regex": "auc=([0-9.]+)"}
    ]
    assert definition["Environment"] == {"LOG_LEVEL": "debug"}  # the allowed override, carried over
    assert definition["StaticHyperParameters"] == training["HyperParameters"]
    name = request["HyperParameterTuningJobName"]
    assert definition["CheckpointConfig"]["S3Uri"].endswith(f"/{name}/checkpoints/")
    config = request["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:auc"}
    assert config["ResourceLimits"] == {"MaxParallelTrainingJobs": 2, "MaxNumberOfTrainingJobs": 8}
    assert config["ParameterRanges"] == {
        "IntegerParameterRanges": [
            {"Name": "depth", "MinValue": "3", "MaxValue": "9", "ScalingType": "Auto"}
        ],
        "ContinuousParameterRanges": [
            {"Name": "alpha", "MinValue": "0.001", "MaxValue": "1", "ScalingType": "Logarithmic"}
        ],
        "CategoricalParameterRanges": [{"Name": "booster", "Values": ["gbtree", "dart"]}],
    }
    assert request["Tags"] == TAGS


@pytest.mark.parametrize(
    "tuning",
    [
        {"strategy": "Random"},
        {"strategy": "Hyperband", "objective_direction": "Minimize"},
        {
            "strategy": "Grid",
            "max_jobs": None,
            "parameter_ranges": {"booster": {"type": "categorical", "values": ["gbtree", "dart", 3]}},
        },
    ],
)
def test_every_strategy_s_request_conforms_to_botocore(tuning):
    _, request = _requests(conf(**tuning), network=None)
    assert validate_request("sagemaker", "CreateHyperParameterTuningJob", request) == []
    assert ("MaxNumberOfTrainingJobs" in request["HyperParameterTuningJobConfig"]["ResourceLimits"]) == (
        tuning["strategy"] != "Grid"
    )


def test_a_builtin_algorithm_is_tuned_with_its_image_and_table_metrics():
    c = demo_conf(
        training_docker_image="",
        model_docker_image="",
        training_algorithm_name="xgboost",
        training_hyperparameters={"num_round": "50"},
        tuning={
            "objective_metric": "validation:auc",
            "parameter_ranges": {"eta": {"type": "continuous", "min": 0.1, "max": 0.5}},
        },
    )
    _, request = _requests(c)
    assert validate_request("sagemaker", "CreateHyperParameterTuningJob", request) == []
    spec = request["TrainingJobDefinition"]["AlgorithmSpecification"]
    assert "sagemaker-xgboost" in spec["TrainingImage"]
    # SageMaker refuses MetricDefinitions for its own algorithms: it reports their metrics itself
    assert "MetricDefinitions" not in spec


def test_the_name_is_fixed_per_run_and_fits_sagemaker_s_32_characters():
    long = derive_names("a-very-long-model-name-for-churn-prediction", "dag", "run-1")
    name = derive_tuning_job_name(long)
    assert len(name) <= TUNING_JOB_NAME_MAX and name.endswith(long.run_key)
    assert name == derive_tuning_job_name(
        derive_names("a-very-long-model-name-for-churn-prediction", "dag", "run-1")
    )
    assert name != derive_tuning_job_name(
        derive_names("a-very-long-model-name-for-churn-prediction", "dag", "run-2")
    )
    assert (
        validate_request(
            "sagemaker", "DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": name}
        )
        == []
    )


def test_a_description_reads_back_as_facts_and_log_lines():
    description = {
        "HyperParameterTuningJobName": "churn-abc",
        "HyperParameterTuningJobStatus": "InProgress",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
        },
        "TrainingJobStatusCounters": {
            "Completed": 3,
            "InProgress": 2,
            "RetryableError": 1,
            "NonRetryableError": 0,
        },
        "BestTrainingJob": {
            "TrainingJobName": "churn-abc-002-1a2b3c4d",
            "TunedHyperParameters": {"max_depth": "7"},
            "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:auc", "Value": 0.91},
        },
    }
    facts = tuning_facts(description)
    assert facts["jobs"] == {"completed": 3, "running": 2, "failed": 1, "stopped": 0}
    assert facts["best"] == {
        "training_job": "churn-abc-002-1a2b3c4d",
        "objective_metric": "validation:auc",
        "objective_value": 0.91,
        "hyperparameters": {"max_depth": "7"},
    }
    assert "3 training jobs completed, 2 running, 1 failed" in render_tuning_progress(facts)
    assert "max_depth=7" in render_tuning_facts(facts)[-1]
    assert tuning_facts({"HyperParameterTuningJobName": "x"})["best"] is None


def test_the_run_summary_shows_the_tuning_job_and_its_best_job() -> None:
    from sagelift.domain.plan import build_plan
    from sagelift.domain.summary import build_run_summary, render_run_summary

    plan = build_plan(conf(), {"region": "us-east-1", "accounts": {"333333333333": {}}}, "dag", "run-1")
    best = {
        "TrainingJobName": "churn-abc-002-1a2b3c4d",
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/out/churn-abc-002-1a2b3c4d/output/model.tar.gz"},
        "FinalMetricDataList": [{"MetricName": "validation:auc", "Value": 0.91}],
    }
    facts = tuning_facts(
        {
            "HyperParameterTuningJobName": "churn-abc",
            "HyperParameterTuningJobStatus": "Completed",
            "HyperParameterTuningJobConfig": {
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:auc"},
            },
            "TrainingJobStatusCounters": {"Completed": 3},
            "BestTrainingJob": {
                "TrainingJobName": best["TrainingJobName"],
                "TunedHyperParameters": {"depth": "7", "booster": "dart"},
                "FinalHyperParameterTuningJobObjectiveMetric": {
                    "MetricName": "validation:auc",
                    "Value": 0.91,
                },
            },
        }
    )
    summary = build_run_summary(
        plan,
        images=None,
        training=None,  # train_model skipped
        model=None,
        endpoint=None,
        api=None,
        tuning={"Tuning": {}, "Training": best, "facts": facts},
    )
    assert summary["tuning"]["best_training_job"] == best["TrainingJobName"]
    assert summary["tuning"]["objective_value"] == 0.91
    assert summary["tuning"]["hyperparameters"] == {"depth": "7", "booster": "dart"}
    assert summary["artifact_s3_path"] == best["ModelArtifacts"]["S3ModelArtifacts"]
    assert summary["training"]["metrics"] == {"validation:auc": 0.91}
    kinds = [r["kind"] for r in summary["resources"]]
    assert kinds.index("tuning job") < kinds.index("training job")
    text = render_run_summary(summary)
    assert "best job churn-abc-002-1a2b3c4d: validation:auc=0.91" in text and "booster=dart, depth=7" in text
