"""recommend_instance against the local AWS (issue 20 item 2), through the core's in-process step
(``steps.recommendation.recommend_here``, what the KFP glue runs): the table's answer sized by the
artifact in S3, and the Inference Recommender job's lifecycle (success with recommendations, failure,
stop) in the emulated account (tests/support/sagemaker_recommender)."""

from __future__ import annotations

from typing import Any

import pytest

from sagelift.domain.plan import Plan, build_plan
from sagelift.steps import jobs, recommendation
from sagelift.steps.errors import StepFailed
from tests.support.botocore_validation import validate_request
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.sagemaker_recommender import script_recommender
from tests.support.scenario import DATA_BUCKET, demo_conf

PAYLOAD = f"s3://{DATA_BUCKET}/churn/payload.tar.gz"
TAGS = [{"Key": "team", "Value": "churn"}]


def _platform(**account: Any) -> dict[str, Any]:
    return {
        "region": REGION,
        "sagemaker": {"check_interval_seconds": 1},
        "accounts": {SCIENTIST_ACCOUNT: {"deployers": {"users": ["admin"]}, **account}},
    }


def _plan(run_id: str, platform: dict[str, Any] | None = None, **conf: Any) -> Plan:
    raw = build_plan(demo_conf(**conf), platform or _platform(), "sagemaker_deploy", run_id)
    return Plan.from_xcom(raw)


def _registered(aws: LocalAws, size: int) -> dict[str, Any]:
    """The run's registered version and its artifact of ``size`` bytes, as register_model leaves them."""
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_object(Bucket=DATA_BUCKET, Key="churn/output/model.tar.gz", Body=b"\0" * size)
    sm.create_model_package_group(ModelPackageGroupName="churn-predictor")
    arn = sm.create_model_package(
        ModelPackageGroupName="churn-predictor",
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": f"s3://{DATA_BUCKET}/churn/output/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    return {"model_package_arn": arn, "model_data_url": f"s3://{DATA_BUCKET}/churn/output/model.tar.gz"}


def _clients(aws: LocalAws) -> Any:
    return lambda service, region=None: aws.client(service)


def test_without_a_job_the_table_answers_and_auto_takes_the_cheapest_fit(local_aws: LocalAws) -> None:
    registered = _registered(local_aws, 64 * 1024)
    said: list[str] = []
    answer = recommendation.recommend_here(
        _clients(local_aws), _plan("rec-1", endpoint_instance_type="auto"), registered, TAGS, said.append
    )
    assert answer["artifact_bytes"] == 64 * 1024
    assert answer["auto"] is True and answer["endpoint_instance_type"] == answer["pick"]
    assert answer["pick"] == answer["fits"][0]["instance_type"]
    assert answer["job"] == {}
    assert any(f"Pick: {answer['pick']}" in line for line in said)
    # nothing was started in the account
    with SageMakerLifecycle().installed(local_aws):
        listed = local_aws.client("sagemaker").list_inference_recommendations_jobs()
    assert listed["InferenceRecommendationsJobs"] == []
    # a fixed type is kept, and the answer still says what "auto" would pick
    fixed = recommendation.recommend_here(_clients(local_aws), _plan("rec-2"), registered, TAGS, said.append)
    assert fixed["auto"] is False and fixed["endpoint_instance_type"] == "ml.m5.large"


def _job_plan(run_id: str, **settings: Any) -> Plan:
    return _plan(
        run_id,
        _platform(inference_recommender=True),
        endpoint_instance_type="auto",
        instance_recommendation={"job": "default", "sample_payload_s3_uri": PAYLOAD, **settings},
    )


def test_a_default_job_runs_over_the_registered_version_and_its_cheapest_fit_is_deployed(
    local_aws: LocalAws,
) -> None:
    registered = _registered(local_aws, 64 * 1024)
    plan = _job_plan("rec-4")
    sm = local_aws.client("sagemaker")
    with SageMakerLifecycle(time_scale=100).installed(local_aws) as life:
        table = recommendation.table_answer(plan, registered, local_aws.client("s3"))
        tested = [f.instance_type for f in table.fits]
        # SageMaker's own answer: the second-cheapest by the table is the cheapest under load
        script_recommender(
            life,
            seconds=200,
            metrics={tested[1]: {"CostPerHour": 0.01, "ModelLatency": 9, "MaxInvocations": 2400}},
        )
        answer = recommendation.recommend_here(_clients(local_aws), plan, registered, TAGS)
    job = sm.describe_inference_recommendations_job(JobName=plan.names.model)
    assert job["Status"] == "COMPLETED" and job["JobType"] == "Default"
    assert job["InputConfig"]["ModelPackageVersionArn"] == registered["model_package_arn"]
    assert job["InputConfig"]["ContainerConfig"]["SupportedInstanceTypes"] == tested
    assert job["RoleArn"] == plan.platform.model_role_arn(SCIENTIST_ACCOUNT)
    request = recommendation.job_request(plan, registered, table, TAGS)
    assert validate_request("sagemaker", "CreateInferenceRecommendationsJob", request) == []
    assert answer["pick"] == tested[1] and answer["endpoint_instance_type"] == tested[1]
    assert answer["job"]["name"] == plan.names.model
    assert len(answer["job"]["recommendations"]) == len(tested)
    assert "Inference Recommender job" in answer["why"]


def test_a_failed_job_fails_the_step_naming_sagemakers_reason(local_aws: LocalAws) -> None:
    registered = _registered(local_aws, 1024)
    plan = _job_plan("rec-5")
    with SageMakerLifecycle(time_scale=100).installed(local_aws) as life:
        script_recommender(
            life, seconds=100, outcome="FAILED", failure_reason="Sample payload is not a tarball"
        )
        with pytest.raises(StepFailed, match="Sample payload is not a tarball"):
            recommendation.recommend_here(_clients(local_aws), plan, registered, TAGS)
    status = local_aws.client("sagemaker").describe_inference_recommendations_job(JobName=plan.names.model)
    assert status["Status"] == "FAILED"


def test_a_stopped_job_is_final_and_a_rerun_adopts_it_instead_of_starting_another(
    local_aws: LocalAws,
) -> None:
    registered = _registered(local_aws, 1024)
    plan = _job_plan("rec-6")
    sm = local_aws.client("sagemaker")
    with SageMakerLifecycle(time_scale=100).installed(local_aws) as life:
        script_recommender(life, seconds=3600, stop_seconds=100)
        table = recommendation.table_answer(plan, registered, local_aws.client("s3"))
        request = recommendation.job_request(plan, registered, table, TAGS)
        assert request is not None
        started = jobs.start_or_adopt(sm, jobs.RECOMMENDATION_JOB, request)
        assert started["Status"] in ("PENDING", "IN_PROGRESS")
        # what cancelling the task does (the trigger's or the operator's on_kill)
        assert jobs.stop_if_running(sm, jobs.RECOMMENDATION_JOB, plan.names.model) is True
        assert sm.describe_inference_recommendations_job(JobName=plan.names.model)["Status"] == "STOPPING"
        # the step follows the run's job (its name is fixed) to its end, which is final
        with pytest.raises(StepFailed, match="STOPPED"):
            recommendation.recommend_here(_clients(local_aws), plan, registered, TAGS)
        # stopping an ended job is refused, as SageMaker does
        assert jobs.stop_if_running(sm, jobs.RECOMMENDATION_JOB, plan.names.model) is False
        listed = sm.list_inference_recommendations_jobs()["InferenceRecommendationsJobs"]
    assert [j["JobName"] for j in listed] == [plan.names.model]


def test_onboarding_grants_exactly_the_recommender_calls_where_the_account_allows_them(
    local_aws: LocalAws,
) -> None:
    """The execution role may make the calls recommend_instance makes (each body valid for botocore), on
    the account's inference recommendations jobs, only where the account allows them; it reads the
    artifact's size under the training output."""
    from sagelift.domain.onboarding import render_policies
    from sagelift.domain.platform import PlatformConfig
    from tests.support.botocore_validation import recording_aws_calls

    def granted(allowed: bool) -> dict[str, list[str]]:
        platform = _platform(inference_recommender=allowed)
        policies = render_policies(
            PlatformConfig.from_dict(
                {**platform, "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master"}
            ),
            SCIENTIST_ACCOUNT,
            runner_principal_arn="arn:aws:iam::111111111111:root",
            data_uris=[f"s3://{DATA_BUCKET}/churn/"],
            output_uris=[f"s3://{DATA_BUCKET}/churn/output/"],
        )
        found: dict[str, list[str]] = {}
        for statement in policies["execution-permissions"]["Statement"]:
            actions, resources = statement["Action"], statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                found.setdefault(action, []).extend([resources] if isinstance(resources, str) else resources)
        return found

    execution = granted(True)
    registered = _registered(local_aws, 1024)
    plan = _job_plan("rec-iam")
    sm = local_aws.client("sagemaker")
    with (
        SageMakerLifecycle(time_scale=1).installed(local_aws) as life,
        recording_aws_calls() as calls,
    ):
        script_recommender(life, seconds=600)
        table = recommendation.table_answer(plan, registered, local_aws.client("s3"))
        request = recommendation.job_request(plan, registered, table, TAGS)
        assert request is not None
        jobs.start_or_adopt(sm, jobs.RECOMMENDATION_JOB, request)
        jobs.stop_if_running(sm, jobs.RECOMMENDATION_JOB, plan.names.model)
    assert all(c.errors == [] for c in calls), [c.errors for c in calls if c.errors]
    made = {f"sagemaker:{c.operation}" for c in calls if "InferenceRecommendations" in c.operation}
    assert made == {a for a in execution if "InferenceRecommendations" in a}
    resource = f"arn:aws:sagemaker:{REGION}:{SCIENTIST_ACCOUNT}:inference-recommendations-job/*"
    assert all(resource in execution[action] for action in made)
    assert resource in execution["sagemaker:AddTags"]
    assert f"arn:aws:s3:::{DATA_BUCKET}/churn/output/*" in execution["s3:GetObject"]  # HeadObject
    assert not [a for a in granted(False) if "InferenceRecommendations" in a]


def test_a_plan_says_the_endpoint_runs_on_the_type_recommend_instance_will_pick(local_aws: LocalAws) -> None:
    from sagelift.steps import plan_changes as planning

    plan = _plan("rec-plan", endpoint_instance_type="auto")
    changes = planning.plan_changes(
        plan,
        lambda service, region=None: local_aws.client(service),
        tags=[],
        planners=(planning.plan_endpoint_config,),
    )
    (config,) = changes.changes
    assert (config.kind, config.action) == ("SageMaker endpoint config", "create")
    assert 'the instance type recommend_instance will pick (endpoint_instance_type "auto")' in config.note
